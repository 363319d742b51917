"""The live exchange core: pure domain (events, book, matcher, bars, simulator, members, session) plus transports and services."""
