"""Reconciliation finds each kind of break, and nothing when the records agree."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lake.batch.reconciliation import REASONS, reconcile

pytestmark = pytest.mark.unit


def _trades(rows):
    keys = ("trade_id", "symbol", "price", "qty", "buy_member", "sell_member")
    return pa.table({k: [r[i] for r in rows] for i, k in enumerate(keys)})


def _fills(rows):
    keys = ("member", "symbol", "side", "exec_type", "last_qty", "last_price")
    return pa.table({k: [r[i] for r in rows] for i, k in enumerate(keys)})


def _clearing(rows):
    keys = ("member", "symbol", "bought", "sold")
    return pa.table({k: [r[i] for r in rows] for i, k in enumerate(keys)})


TRADES = [(1, "SAP", 100, 5, "A", "B"), (2, "SAP", 101, 3, "B", "A")]
FILLS = [
    ("A", "SAP", "buy", "trade", 5, 100), ("B", "SAP", "sell", "trade", 5, 100),
    ("B", "SAP", "buy", "trade", 3, 101), ("A", "SAP", "sell", "trade", 3, 101),
    ("A", "SAP", "buy", "new", 0, None),
]  # fmt: skip
CLEARING = [("A", "SAP", 5, 3), ("B", "SAP", 3, 5)]


def _reasons(breaks):
    return {(r["member"], r["side"], r["reason"]) for r in breaks.to_pylist()}


def test_agreeing_records_have_no_breaks():
    assert reconcile(_trades(TRADES), _fills(FILLS), _clearing(CLEARING)).num_rows == 0


def test_each_kind_of_break_is_named():
    fills = list(FILLS)
    fills[0] = ("A", "SAP", "buy", "trade", 4, 100)  # A's buy fill is short by one
    fills[2] = ("B", "SAP", "buy", "trade", 3, 102)  # B's buy at the wrong price
    fills.remove(("B", "SAP", "sell", "trade", 5, 100))  # B's sell fill is missing
    fills.append(("C", "SAP", "buy", "trade", 1, 100))  # C has a fill but no trade
    clearing = [("A", "SAP", 5, 2), ("B", "SAP", 3, 0)]  # A's sells cleared as 2
    breaks = reconcile(_trades(TRADES), _fills(fills), _clearing(clearing))
    assert _reasons(breaks) == {
        ("A", "buy", "quantity"),
        ("B", "sell", "missing_fills"),
        ("C", "buy", "unmatched_fills"),
        ("B", "buy", "notional"),
        ("A", "sell", "clearing_quantity"),
    }
    assert {r["reason"] for r in breaks.to_pylist()} <= set(REASONS)


def test_members_outside_clearing_are_not_clearing_breaks():
    # the liquidity accounts trade but are not cleared
    breaks = reconcile(_trades(TRADES), _fills(FILLS), _clearing([("A", "SAP", 5, 3)]))
    assert breaks.num_rows == 0
