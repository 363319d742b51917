"""PostgreSQL from the Debian packages (apt), run as a local process: the Iceberg SQL
catalog's database (and Dagster's)."""
