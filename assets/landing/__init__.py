"""Landing: the simulated (or live) session of a day and its raw tables."""
