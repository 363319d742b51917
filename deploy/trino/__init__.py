"""Trino (one node, coordinator and worker) from Maven Central."""
