"""Dagster assets, one module per domain; ``intelligence/`` holds its pure modules too."""
