"""Measurement, kept apart from what it measures: the benchmarks ``marketlake bench``
runs (matcher, bars, Kafka, lake, pipeline, intelligence), their workloads, and the
LOBSTER reality check of the matcher against real NASDAQ order books."""
