"""PostgreSQL from the Debian packages (apt), run as a local process."""
