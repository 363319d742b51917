"""MinIO built from its Go module, run as a local process."""
