"""Dagster assets, one module per domain (arrive with the orchestration issue)."""
