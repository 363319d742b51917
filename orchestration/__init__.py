"""Settings, logging, the CLI and (later) the Dagster definitions."""
