"""The intelligence pipeline as Dagster assets: the glue between ``intelligence`` and the lake.

``intelligence_assets`` reads each stage's inputs back from the lake, builds
the stages' typed configs from the platform Settings, calls the pure stage
functions of the ``intelligence`` package and publishes the day's partition.
"""
