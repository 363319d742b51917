"""The top of the house: the ``marketlake`` CLI, the Dagster Definitions, schedules and
sensors, backfills, the demo, the sidecar processes and their supervisor, the UI's
login gate, and the benchmarks (``bench/``). Nothing below imports it."""
