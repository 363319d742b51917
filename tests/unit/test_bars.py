"""Bars: hand-computed cases for the builder, and streaming == batch on random streams."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.bench.bars_bench import bench_bars
from streaming.bars import (
    INTERVALS,
    BarBuilder,
    _bars_batch,
    bars_batch,
    bars_from_events,
)
from streaming.events import Bar, DeadLetter, Event, Trade, decode_as
from streaming.schema import arrow_schema, to_table

pytestmark = pytest.mark.unit

T0 = 1_704_205_800_000_000_000  # 2024-01-02 14:30:00 UTC, aligned to every interval
S = 1_000_000_000
M = 60 * S
MS = 1_000_000
ORDER = list(INTERVALS)


def trade(tid: int, ts: int, price: int = 100, qty: int = 1, symbol: str = "AAA") -> Trade:
    return Trade(tid, symbol, price, qty, "buy", 2 * tid, 2 * tid + 1, "M1", "M2", ts)


def run(
    trades: list[Trade], grace_ns: int = 0, flush: bool = True
) -> tuple[BarBuilder, list[Event]]:
    builder = BarBuilder(grace_ns)
    out: list[Event] = []
    for t in trades:
        builder.on_trade(t, out)
    if flush:
        builder.flush(out)
    return builder, out


def bars(out: list[Event], interval: str | None = None) -> list[Bar]:
    return [e for e in out if type(e) is Bar and interval in (None, e.interval)]


def key(b: Bar) -> tuple[int, int, str]:
    return (ORDER.index(b.interval), b.start, b.symbol)


def table(trades: list[Trade]) -> pa.Table:
    return to_table(trades, Trade)


# -- hand-computed ----------------------------------------------------------------------


def test_intervals() -> None:
    assert INTERVALS == {"1s": S, "1m": M, "3m": 3 * M, "5m": 5 * M, "15m": 15 * M}


def test_one_second_bar_ohlcv_vwap() -> None:
    trades = [
        trade(1, T0 + 100 * MS, 100, 10),
        trade(2, T0 + 300 * MS, 105, 5),
        trade(3, T0 + 200 * MS, 95, 20),  # out of order inside the window
        trade(4, T0 + 300 * MS, 101, 1),  # same ts as #2, arrives later: it is the close
    ]
    _, out = run(trades)
    (bar,) = bars(out, "1s")
    turnover = 100 * 10 + 105 * 5 + 95 * 20 + 101 * 1
    assert bar == Bar("AAA", "1s", T0, T0 + S, 100, 105, 95, 101, 36, turnover, turnover / 36, 4)
    assert turnover == 3526
    # every higher bar of a single second is the same numbers over a longer window
    for name, size in list(INTERVALS.items())[1:]:
        (higher,) = bars(out, name)
        assert higher == Bar("AAA", name, T0, T0 + size, 100, 105, 95, 101, 36, 3526, 3526 / 36, 4)  # type: ignore[arg-type]


def test_open_is_earliest_arrival_among_equal_timestamps() -> None:
    trades = [trade(1, T0 + 5 * MS, 110), trade(2, T0 + 5 * MS, 90), trade(3, T0 + 9 * MS, 100)]
    _, out = run(trades)
    (bar,) = bars(out, "1s")
    assert (bar.open, bar.close, bar.high, bar.low) == (110, 100, 110, 90)


def test_minute_from_seconds() -> None:
    trades = [
        trade(1, T0 + 0 * S + 1, 100, 2),
        trade(2, T0 + 0 * S + 2, 102, 1),
        trade(3, T0 + 1 * S, 98, 3),
        trade(4, T0 + 59 * S + 999 * MS, 101, 4),
        trade(5, T0 + 60 * S, 200, 1),  # next minute
    ]
    _, out = run(trades)
    seconds = bars(out, "1s")
    assert [(b.start - T0) // S for b in seconds] == [0, 1, 59, 60]
    assert [b.trades for b in seconds] == [2, 1, 1, 1]
    first, second = bars(out, "1m")
    t = 100 * 2 + 102 + 98 * 3 + 101 * 4
    assert first == Bar("AAA", "1m", T0, T0 + M, 100, 102, 98, 101, 10, t, t / 10, 4)
    assert second == Bar("AAA", "1m", T0 + M, T0 + 2 * M, 200, 200, 200, 200, 1, 200, 200.0, 1)


def test_three_five_fifteen_minutes_from_minutes() -> None:
    minutes = [0, 2, 3, 4, 5, 14, 15]
    trades = [trade(i, T0 + m * M + S, 100 + m, 1) for i, m in enumerate(minutes)]
    _, out = run(trades)
    assert [(b.start - T0) // M for b in bars(out, "1m")] == minutes

    def summary(name: str) -> list[tuple[int, int, int, int, int, int, int]]:
        return [
            ((b.start - T0) // M, (b.end - T0) // M, b.open, b.close, b.high, b.low, b.volume)
            for b in bars(out, name)
        ]

    assert summary("3m") == [
        (0, 3, 100, 102, 102, 100, 2),
        (3, 6, 103, 105, 105, 103, 3),
        (12, 15, 114, 114, 114, 114, 1),
        (15, 18, 115, 115, 115, 115, 1),
    ]
    assert summary("5m") == [
        (0, 5, 100, 104, 104, 100, 4),
        (5, 10, 105, 105, 105, 105, 1),
        (10, 15, 114, 114, 114, 114, 1),
        (15, 20, 115, 115, 115, 115, 1),
    ]
    assert summary("15m") == [(0, 15, 100, 114, 114, 100, 6), (15, 30, 115, 115, 115, 115, 1)]
    (first_15m, _) = bars(out, "15m")
    assert first_15m.turnover == sum(100 + m for m in minutes[:-1])
    assert first_15m.trades == 6


def test_empty_windows_produce_no_bars() -> None:
    _, out = run([trade(1, T0 + 100 * MS), trade(2, T0 + 5 * S + 100 * MS)])
    assert [(b.start - T0) // S for b in bars(out, "1s")] == [0, 5]
    assert len(bars(out, "1m")) == 1
    assert len(bars(out)) == 2 + 4
    _, nothing = run([])
    assert nothing == []


def test_closing_order_and_watermark() -> None:
    trades = [
        trade(1, T0 + 59 * S, 10, symbol="BBB"),
        trade(2, T0 + 59 * S + 1, 20, symbol="AAA"),
        trade(3, T0 + 58 * S, 30, symbol="CCC"),  # out of order, window still open (grace)
    ]
    builder, out = run(trades, grace_ns=2 * S, flush=False)
    assert out == []
    assert builder.watermark == T0 + 59 * S + 1
    builder.on_trade(trade(4, T0 + 61 * S, 40, symbol="AAA"), out)  # 58s closes: end 59 + 2
    assert [(b.interval, b.symbol) for b in bars(out)] == [("1s", "CCC")]
    out.clear()
    builder.advance(T0 + 62 * S, out)  # closes 59s (both symbols) and the first minute
    assert [(b.interval, (b.start - T0) // S, b.symbol) for b in bars(out)] == [
        ("1s", 59, "AAA"),
        ("1s", 59, "BBB"),
        ("1m", 0, "AAA"),
        ("1m", 0, "BBB"),
        ("1m", 0, "CCC"),
    ]
    out.clear()
    builder.advance(T0, out)  # the watermark never goes back
    assert out == [] and builder.watermark == T0 + 62 * S


def test_silent_symbol_closes_on_advance() -> None:
    builder, out = run([trade(1, T0 + 500 * MS, 7, 3)], grace_ns=100 * MS, flush=False)
    builder.advance(T0 + S + 99 * MS, out)
    assert out == []  # end + grace not reached yet
    builder.advance(T0 + S + 100 * MS, out)
    assert [(b.interval, b.close) for b in bars(out)] == [("1s", 7)]
    builder.advance(T0 + 15 * M + 100 * MS, out)
    assert [b.interval for b in bars(out)] == ORDER


def test_silent_symbol_closes_on_other_symbols_trades() -> None:
    trades = [trade(1, T0 + 100 * MS, symbol="AAA"), trade(2, T0 + 200 * MS, symbol="BBB")]
    trades += [trade(3, T0 + 3 * S, symbol="BBB")]
    _, out = run(trades, flush=False)
    assert [(b.symbol, b.start) for b in bars(out)] == [("AAA", T0), ("BBB", T0)]


def test_out_of_order_within_grace_is_folded() -> None:
    trades = [trade(1, T0 + 1200 * MS, 100, 1), trade(2, T0 + 900 * MS, 90, 2)]
    builder, out = run(trades, grace_ns=500 * MS)
    assert builder.late_trades == 0
    assert not [e for e in out if type(e) is DeadLetter]
    first, second = bars(out, "1s")
    assert (first.start, first.open, first.volume) == (T0, 90, 2)
    assert (second.start, second.open, second.volume) == (T0 + S, 100, 1)
    (minute,) = bars(out, "1m")
    assert (minute.open, minute.close, minute.volume, minute.trades) == (90, 100, 3, 2)


@pytest.mark.parametrize("grace_ns", [0, 200 * MS])
def test_late_trade_is_reported_not_folded(grace_ns: int) -> None:
    early = trade(1, T0 + 500 * MS, 100, 1)
    closer = trade(2, T0 + S + grace_ns + 5 * MS, 101, 1)  # closes [T0, T0 + 1s)
    late = trade(3, T0 + 700 * MS, 999, 50)
    builder, out = run([early, closer], grace_ns, flush=False)
    assert [b.start for b in bars(out)] == [T0]
    before = list(out)
    builder.on_trade(late, out)
    assert builder.late_trades == 1
    (dead,) = out[len(before) :]
    assert type(dead) is DeadLetter
    assert dead.reason.startswith("late_trade")
    assert f"[{T0}, {T0 + S})" in dead.reason and str(closer.ts) in dead.reason
    assert (dead.source_topic, dead.ts) == ("trades", late.ts)
    assert decode_as(dead.payload, Trade) == late
    builder.flush(out)
    assert all(b.high < 999 for b in bars(out))
    assert sum(b.volume for b in bars(out, "1m")) == 2
    batch, late_ids = bars_batch(table([early, closer, late]), grace_ns)
    assert late_ids.to_pylist() == [3]
    assert batch.equals(bars_from_events(bars(out)))


def test_late_in_an_empty_closed_window() -> None:
    builder, out = run([trade(1, T0 + 1200 * MS), trade(2, T0 + 900 * MS)])
    assert builder.late_trades == 1
    assert [type(e).__name__ for e in out][:1] == ["DeadLetter"]
    assert [b.start for b in bars(out, "1s")] == [T0 + S]


def test_flush_emits_open_bars_in_order() -> None:
    trades = [trade(1, T0 + 2 * S, symbol="BBB"), trade(2, T0 + S, symbol="AAA")]
    builder, out = run(trades, grace_ns=10 * S, flush=False)
    assert out == []
    builder.flush(out)
    assert [(b.interval, b.symbol) for b in bars(out)] == [
        ("1s", "AAA"),
        ("1s", "BBB"),
        *((name, sym) for name in ORDER[1:] for sym in ("AAA", "BBB")),
    ]
    again: list[Event] = []
    builder.flush(again)
    assert again == []
    # flushed windows are final: a straggler for one is late, not a second bar
    builder.on_trade(trade(3, T0 + 2 * S + 1, symbol="BBB"), again)
    builder.flush(again)
    assert bars(again) == [] and builder.late_trades == 1
    assert [type(e).__name__ for e in again] == ["DeadLetter"]
    # a trade after the last flushed 15m window starts new bars
    builder.on_trade(trade(4, T0 + 15 * 60 * S + 10 * S + 1, symbol="BBB"), again)
    builder.flush(again)
    assert [(b.interval, b.volume) for b in bars(again)] == [(name, 1) for name in ORDER]


def test_grace_must_be_non_negative() -> None:
    with pytest.raises(ValueError):
        BarBuilder(-1)
    with pytest.raises(ValueError):
        bars_batch(table([]), -1)


def test_batch_schema_and_empty_input() -> None:
    result, late = bars_batch(table([]))
    assert result.schema == arrow_schema(Bar)
    assert result.num_rows == 0 and len(late) == 0
    result, _ = bars_batch(table([trade(1, T0)]))
    assert result.schema == arrow_schema(Bar)
    assert result.column("interval").to_pylist() == ORDER


def test_batch_accepts_dictionary_symbols_and_chunks() -> None:
    trades = [trade(i, T0 + i * 700 * MS, 100 + i, 1, "BA"[i % 2]) for i in range(10)]
    plain, _ = bars_batch(table(trades))
    t = table(trades)
    chunked = pa.concat_tables([t.slice(0, 4), t.slice(4)])
    dictionary = t.set_column(1, "symbol", t.column("symbol").dictionary_encode())
    assert bars_batch(chunked)[0].equals(plain)
    assert bars_batch(dictionary)[0].equals(plain)
    codes = pa.array(
        [0 if tr.symbol == "B" else 1 + i % 2 for i, tr in enumerate(trades)], pa.int32()
    )
    repeated = pa.DictionaryArray.from_arrays(codes, pa.array(["B", "A", "A"]))  # "A" twice
    assert bars_batch(t.set_column(1, "symbol", repeated))[0].equals(plain)


def test_batch_turnover_overflow_is_refused() -> None:
    huge = [trade(1, T0, 1 << 40, 1 << 23), trade(2, T0 + 1, 1 << 40, 1 << 23)]
    with pytest.raises(OverflowError):
        bars_batch(table(huge))


def test_vwap_is_python_int_division_beyond_float_precision() -> None:
    big = [trade(1, T0, (1 << 53) + 1, 3), trade(2, T0 + 1, 3, 1)]
    _, out = run(big)
    result, _ = bars_batch(table(big))
    assert result.equals(bars_from_events(bars(out)))
    assert result.column("vwap")[0].as_py() == ((1 << 53) * 3 + 3 + 3) / 4


# -- streaming == batch -----------------------------------------------------------------

SYMBOLS = ["AA", "AAPL", "MSFT", "b"]


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Trade], int]:
    grace = draw(st.sampled_from([0, 1, 250 * MS, S, 2500 * MS, 70 * S, 10**20]))
    n = draw(st.integers(0, 40))
    max_step = draw(st.sampled_from([300 * MS, 2 * S, 90 * S, 20 * M]))  # the stream's pace
    ts = T0 + draw(st.integers(-3 * S, 3 * S))
    trades = []
    for i in range(n):
        if draw(st.integers(0, 5)):
            step = draw(st.integers(0, max_step))
        else:  # same ts, onto the next second boundary, or a minute on
            step = draw(st.sampled_from([0, S - ts % S, 59 * S]))
        ts += step
        jitter = draw(st.one_of(st.just(0), st.just(0), st.integers(0, 4 * S)))
        price = draw(st.integers(1, 10_000))
        qty = draw(st.integers(1, 500))
        trades.append(trade(i + 1, ts - jitter, price, qty, draw(st.sampled_from(SYMBOLS))))
    return trades, grace


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_streaming_equals_batch(case: tuple[list[Trade], int]) -> None:
    trades, grace = case
    builder = BarBuilder(grace)
    out: list[Event] = []
    emitted = 0
    for t in trades:
        builder.on_trade(t, out)
        new = bars(out[emitted:])
        emitted = len(out)
        # each closing pass: closed windows only, 1s first, then by interval, start, symbol
        assert new == sorted(new, key=key)
        assert all(b.end + grace <= builder.watermark for b in new)
    builder.flush(out)
    streamed = bars(out)
    late_ids = [decode_as(e.payload, Trade).trade_id for e in out if type(e) is DeadLetter]
    assert builder.late_trades == len(late_ids)
    assert len({key(b) for b in streamed}) == len(streamed)

    expected = bars_from_events(streamed)
    for dense in (None, True, False):
        result, late = _bars_batch(table(trades), grace, dense)
        assert result.schema == arrow_schema(Bar)
        assert result.to_pylist() == expected.to_pylist()
        assert late.to_pylist() == late_ids

    on_time = [t for t in trades if t.trade_id not in set(late_ids)]
    for name in INTERVALS:
        level = bars(streamed, name)
        assert sum(b.volume for b in level) == sum(t.qty for t in on_time)
        assert sum(b.trades for b in level) == len(on_time)
        assert sum(b.turnover for b in level) == sum(t.price * t.qty for t in on_time)
    for b in streamed:
        assert b.low <= b.open <= b.high and b.low <= b.close <= b.high
        assert b.low <= b.vwap <= b.high
        assert b.start % INTERVALS[b.interval] == 0 and b.end == b.start + INTERVALS[b.interval]


def test_bench_runs_small() -> None:
    result = bench_bars(n=5_000, symbols=3)
    assert set(result) == {"trades", "streaming_trades_per_s", "batch_trades_per_s", "bars"}
    assert result["trades"] == 5_000 and result["bars"] > 0
    assert result["streaming_trades_per_s"] > 0 and result["batch_trades_per_s"] > 0
