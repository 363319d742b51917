"""Batch computations over a landed day, pure functions of Arrow tables: daily market
statistics, clearing and settlement, reconciliation. Assets call them and publish
what they return."""
