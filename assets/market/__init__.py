"""Market: the core daily statistics per symbol (OHLCV, VWAP, spreads)."""
