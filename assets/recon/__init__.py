"""Reconciliation: the day's breaks between executions, trades, positions and cash."""
