"""MinIO built from its Go module, run as a local process: the lake's S3 store."""
