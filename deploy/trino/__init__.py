"""Trino (one node, coordinator and worker) from Maven Central, run as a local process: SQL
on the lake for queries and dashboards."""
