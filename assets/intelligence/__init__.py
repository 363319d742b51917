"""Market intelligence: extraction of sentiment, impact and catalysts from text.

The modules here are pure logic (no Dagster, no I/O beyond the package's own
word lists), so the Dagster assets stay thin and tests call them directly.
Import the submodules you need; this package imports nothing on its own.
"""
