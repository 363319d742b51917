"""Runnable pipelines that wire the pure domain to a transport."""
