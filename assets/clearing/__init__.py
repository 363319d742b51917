"""Clearing: positions, cash and settlement obligations per member and day."""
