"""Apache Kafka from Maven Central."""
