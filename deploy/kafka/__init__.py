"""Apache Kafka from Maven Central, run as a local process: the live core's event log."""
