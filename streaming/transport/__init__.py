"""Event transports: one interface, an embedded SQLite log now and Kafka in the stack."""
