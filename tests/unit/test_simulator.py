"""The market simulator: seeded, regime-driven, three levels a side, biased takers."""

from __future__ import annotations

from collections import Counter

import pytest

from streaming.events import CancelOrder, NewOrder
from streaming.indicators import Indicators
from streaming.simulator import REGIMES, MarketSimulator, SimulatorConfig

pytestmark = pytest.mark.unit


def _run(sim: MarketSimulator, symbol: str, cycles: int) -> list[list]:
    return [sim.cycle(symbol, i * 1_000_000) for i in range(cycles)]


def test_same_seed_same_flow_other_seed_other_flow(securities):
    a = _run(MarketSimulator(securities, 5), "AAPL", 300)
    b = _run(MarketSimulator(securities, 5), "AAPL", 300)
    c = _run(MarketSimulator(securities, 6), "AAPL", 300)
    assert a == b
    assert a != c


def test_symbols_do_not_disturb_each_other(securities):
    alone = _run(MarketSimulator(securities, 5), "MSFT", 100)
    sim = MarketSimulator(securities, 5)
    mixed = []
    for i in range(100):
        sim.cycle("AAPL", i * 1_000_000)
        mixed.append(sim.cycle("MSFT", i * 1_000_000))
    strip = [
        [(type(r), getattr(r, "side", None), getattr(r, "price", None)) for r in c] for c in alone
    ]
    assert strip == [
        [(type(r), getattr(r, "side", None), getattr(r, "price", None)) for r in c] for c in mixed
    ]


def test_first_cycle_quotes_three_levels_per_side(securities):
    sim = MarketSimulator(securities, 1)
    reqs = sim.cycle("AAPL", 0)
    maker = [r for r in reqs if isinstance(r, NewOrder) and r.member == "LP01"]
    bids = sorted(r.price for r in maker if r.side == "buy")
    asks = sorted(r.price for r in maker if r.side == "sell")
    assert len(bids) == 3 and len(asks) == 3
    assert max(bids) < min(asks)
    tick = next(s.tick for s in securities if s.symbol == "AAPL")
    assert all(p % tick == 0 for p in bids + asks)


def test_regimes_rotate_every_15_to_50_cycles_and_all_occur(securities):
    sim = MarketSimulator(securities, 3)
    seen, runs, current, length = Counter(), [], None, 0
    for i in range(4000):
        sim.cycle("AAPL", i)
        r = sim.regime("AAPL")
        seen[r] += 1
        if r == current:
            length += 1
        else:
            if current is not None:
                runs.append(length)
            current, length = r, 1
    assert set(seen) == set(REGIMES)
    assert min(runs[1:]) >= 15  # the first run may start part-way
    assert Counter(runs).most_common(1)[0][0] <= 50


def test_trend_passive_side_is_thicker(securities):
    sim = MarketSimulator(securities, 11, SimulatorConfig())
    depth = {"trending_up": [0, 0], "trending_down": [0, 0]}
    for i in range(3000):
        reqs = sim.cycle("MSFT", i)
        regime = sim.regime("MSFT")
        if regime in depth:
            for r in reqs:
                if isinstance(r, NewOrder) and r.member == "LP01":
                    depth[regime][0 if r.side == "buy" else 1] += r.qty
    up_bids, up_asks = depth["trending_up"]
    down_bids, down_asks = depth["trending_down"]
    assert up_bids > 1.5 * up_asks
    assert down_asks > 1.5 * down_bids


def test_taker_share_is_between_20_and_35_percent(securities):
    sim = MarketSimulator(securities, 8)
    cycles = 5000
    takers = sum(
        any(isinstance(r, NewOrder) and r.member == "LP02" for r in sim.cycle("NVDA", i))
        for i in range(cycles)
    )
    assert 0.18 <= takers / cycles <= 0.37


def test_far_from_start_price_reverts(securities):
    sim = MarketSimulator(securities, 2)
    st = sim._state["JPM"]
    st.fair = st.start * 1.30
    for i in range(600):
        sim.cycle("JPM", i)
    assert abs(sim.fair_value("JPM") / st.start - 1) < 0.15


def test_quote_refresh_cancels_only_its_own_stale_quotes(securities):
    sim = MarketSimulator(securities, 4)
    live: set[int] = set()
    for i in range(200):
        for r in sim.cycle("KO", i):
            if isinstance(r, CancelOrder):
                assert r.order_id in live and r.member == "LP01"
                live.discard(r.order_id)
            elif r.member == "LP01":
                live.add(r.order_id)
    assert 0 < len(live) <= 6


def test_indicators_follow_the_textbook_direction():
    up, down = Indicators(), Indicators()
    for i in range(60):
        up.update(100 + i)
        down.update(100 - i * 0.5)
    assert up.rsi > 95 and down.rsi < 5
    assert up.macd_histogram >= 0 or up.bollinger_position > 0
    assert up.bollinger_position > 0 > down.bollinger_position
    flat = Indicators()
    for _ in range(30):
        flat.update(50.0)
    assert flat.rsi == 50.0 and flat.bollinger_position == 0.0 and flat.macd_histogram == 0.0
