"""The data-quality rules name what violates them."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lake.quality import (
    bar_continuity_violations,
    bar_coverage,
    late_trades,
    negative_positions,
    settlement_differences,
    vwap_outside_range,
)
from streaming.bars import bars_batch
from streaming.events import Trade, encode

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


SEC = 1_000_000_000
OPEN = 2_000_000 * 900 * SEC  # aligned to every interval
CLOSE = OPEN + 3_600 * SEC


def _trades(*rows: tuple[str, int, float, int, int]) -> pa.Table:
    """(symbol, trade_id, seconds after the open, price, qty) -> a raw.trades-like table."""
    return pa.Table.from_pylist([
        {"trade_id": i, "symbol": s, "price": p, "qty": q, "ts": OPEN + round(t * SEC)}
        for s, i, t, p, q in rows
    ])  # fmt: skip


# ids are per-symbol sequences; A's ids 2 and 3 share a ts, so trade_id orders them
TRADES = _trades(
    ("A", 1, 1.2, 100, 5), ("A", 2, 1.7, 103, 1), ("A", 3, 1.7, 99, 2), ("A", 4, 70.0, 101, 3),
    ("B", 1, 1.5, 50, 10),
)  # fmt: skip


def _bars(trades: pa.Table = TRADES) -> pa.Table:
    """The bar builder's own bars of ``trades`` (the batch path equals the streaming one)."""
    bars, late = bars_batch(trades.sort_by([("ts", "ascending")]))
    assert len(late) == 0
    return bars


def _kinds(violations: list[dict]) -> list[tuple[str, str, int, str]]:
    return [(v["symbol"], v["interval"], (v["start"] - OPEN) // SEC, v["kind"]) for v in violations]


def _replace(bars: pa.Table, where: dict, **values: int) -> pa.Table:
    rows = bars.to_pylist()
    for r in rows:
        if all(r[k] == v for k, v in where.items()):
            r.update(values)
    return pa.Table.from_pylist(rows, schema=bars.schema)


def test_the_builders_bars_are_continuous():
    bars = _bars()
    assert bars.num_rows == 3 + 2 + 1 + 1 + 1 + 4  # 1s: A x2, B; 1m: A x2, B; then A, B
    assert bar_continuity_violations(TRADES, bars, OPEN, CLOSE) == []
    # trade order: the close of A's first second is trade 3 (same ts as 2, larger id)
    assert bar_continuity_violations(TRADES.take([4, 3, 2, 1, 0]), bars, OPEN, CLOSE) == []


def test_a_window_with_trades_but_no_bar_is_missing():
    bars = _bars()
    bars = bars.filter(pc.invert(pc.and_(pc.equal(bars["symbol"], "B"),
                                         pc.equal(bars["interval"], "1s"))))  # fmt: skip
    assert _kinds(bar_continuity_violations(TRADES, bars, OPEN, CLOSE)) == [
        ("B", "1s", 1, "missing")
    ]  # fmt: skip


def test_string_columns_of_either_width_compare():
    # pyiceberg reads large_string from one file system and string from another
    wide = pa.schema([f.with_type(pa.large_string()) if pa.types.is_string(f.type) else f
                      for f in TRADES.schema])  # fmt: skip
    assert bar_continuity_violations(TRADES.cast(wide), _bars(), OPEN, CLOSE) == []


def test_a_bar_without_trades_is_an_orphan():
    extra = _replace(_bars().slice(0, 1), {}, start=OPEN + 5 * SEC, end=OPEN + 6 * SEC)
    bars = pa.concat_tables([_bars(), extra])
    assert _kinds(bar_continuity_violations(TRADES, bars, OPEN, CLOSE)) == [
        ("A", "1s", 5, "orphan")
    ]


def test_two_bars_for_one_window_are_a_duplicate():
    bars = _bars()
    bars = pa.concat_tables([bars, bars.filter(pc.equal(bars["interval"], "5m"))])
    assert _kinds(bar_continuity_violations(TRADES, bars, OPEN, CLOSE)) == [
        ("A", "5m", 0, "duplicate"), ("B", "5m", 0, "duplicate"),
    ]  # fmt: skip


def test_a_bar_whose_volume_or_prices_differ_from_its_trades_is_named():
    bars = _replace(_bars(), {"symbol": "A", "interval": "1m", "start": OPEN}, volume=7)
    bars = _replace(bars, {"symbol": "A", "interval": "1s", "start": OPEN + SEC}, close=103)
    found = bar_continuity_violations(TRADES, bars, OPEN, CLOSE)
    assert _kinds(found) == [("A", "1s", 1, "ohlc"), ("A", "1m", 0, "volume")]
    assert found[0]["detail"] == "close bar 103 trades 99"
    assert found[1]["detail"] == "bar 7, trades 8"


def test_bars_outside_the_session_are_named():
    trades = pa.concat_tables([TRADES, _trades(("B", 2, 3_600.5, 51, 1))])  # after the close
    found = _kinds(bar_continuity_violations(trades, _bars(trades), OPEN, CLOSE))
    # the 1s, 1m, 3m, 5m and 15m windows of the trade all start at or after the close
    assert found == [("B", i, 3_600, "outside_session") for i in ("1s", "1m", "3m", "5m", "15m")]
    early = bar_continuity_violations(TRADES, _bars(), OPEN + 120 * SEC, CLOSE)
    assert {(v["symbol"], v["interval"]) for v in early} == {("A", "1s"), ("B", "1s"), ("A", "1m"),
                                                             ("B", "1m")}  # fmt: skip
    assert {v["kind"] for v in early} == {"outside_session"}


def test_misaligned_bars_and_unknown_intervals_are_named():
    bars = _replace(_bars(), {"symbol": "B", "interval": "3m"}, end=OPEN + 60 * SEC)
    bars = pa.concat_tables([bars, _replace(bars.slice(0, 1), {}, interval="2m")])
    assert _kinds(bar_continuity_violations(TRADES, bars, OPEN, CLOSE)) == [
        ("B", "3m", 0, "misaligned"), ("A", "2m", 1, "unknown_interval"),
    ]  # fmt: skip


def test_late_trades_reported_on_the_dlq_are_not_expected_in_bars():
    late = Trade(4, "A", 101, 3, "buy", 7, 8, "USR01", "LP01", OPEN + 70 * SEC)
    dlq = pa.Table.from_pylist([
        {"reason": "late_trade: 1s window closed", "payload": encode(late)},
        {"reason": "price_band", "payload": b"{}"},
    ])  # fmt: skip
    assert late_trades(dlq) == [("A", 4)]
    without = _bars(TRADES.filter(pc.not_equal(TRADES["ts"], OPEN + 70 * SEC)))
    assert _kinds(bar_continuity_violations(TRADES, without, OPEN, CLOSE)) == [
        ("A", "1s", 70, "missing"), ("A", "1m", 60, "missing"),
        *[("A", i, 0, kind) for i in ("3m", "5m", "15m") for kind in ("ohlc", "volume")],
    ]  # fmt: skip
    assert bar_continuity_violations(TRADES, without, OPEN, CLOSE, late_trades(dlq)) == []
    # trade ids repeat across symbols: B's trade 4 would still be expected
    assert bar_continuity_violations(TRADES, without, OPEN, CLOSE, [("B", 4)]) != []


def test_coverage_is_the_share_of_session_windows_with_a_bar():
    coverage = bar_coverage(_bars(), OPEN, CLOSE, ["A", "B", "C"])
    assert coverage["15m"] == pytest.approx(2 / (4 * 3))  # A and B in the first of 4 windows
    assert coverage["1m"] == pytest.approx(3 / (60 * 3))
    assert coverage["1s"] == pytest.approx(3 / (3_600 * 3))
