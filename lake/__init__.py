"""The lake: table contracts, storage, catalog, idempotent writers and query engines."""
