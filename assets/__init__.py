"""Dagster glue, one folder per domain (landing, market, clearing, recon, dbt, reports,
intelligence), each with its assets and checks; ``platform/`` holds the resources and
partitions they share. Logic lives in the packages below (lake, intelligence,
dashboards, streaming): an asset reads, calls, publishes."""
