"""The data-quality rules name what violates them."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lake.quality import negative_positions, settlement_differences, vwap_outside_range

pytestmark = pytest.mark.unit


def test_vwap_outside_the_days_range_is_named():
    market = pa.Table.from_pylist([
        {"symbol": "SAP", "trades": 3, "low": 100, "high": 110, "vwap": 105.0},
        {"symbol": "IBM", "trades": 2, "low": 100, "high": 110, "vwap": 111.0},
        {"symbol": "KO", "trades": 0, "low": None, "high": None, "vwap": None},
    ])  # fmt: skip
    (problem,) = vwap_outside_range(market)
    assert problem.startswith("IBM")


def test_short_positions_are_named():
    positions = pa.Table.from_pylist([
        {"member": "A", "symbol": "SAP", "closing_qty": 5},
        {"member": "B", "symbol": "SAP", "closing_qty": -2},
    ])  # fmt: skip
    assert negative_positions(positions) == ["B SAP: -2"]


def test_settlement_must_equal_the_cleared_members_trades():
    trades = pa.Table.from_pylist([
        {"price": 10, "qty": 2, "buy_member": "A", "sell_member": "LP"},
        {"price": 20, "qty": 1, "buy_member": "LP", "sell_member": "A"},
    ])  # fmt: skip
    members = pa.Table.from_pylist([{"bought_notional": 20, "sold_notional": 20}])
    assert settlement_differences(members, trades, {"A"}) == {}
    wrong = pa.Table.from_pylist([{"bought_notional": 21, "sold_notional": 20}])
    assert settlement_differences(wrong, trades, {"A"}) == {"bought": {"settled": 21, "traded": 20}}
