"""Install, start, check and stop the stack's services as local processes (no Docker)."""
