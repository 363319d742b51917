"""A seeded market: liquidity providers quoting around a drifting fair value, plus takers.

Per symbol, a fair value moves under one of five regimes (trending up or
down, mean-revert, volatile, calm) that rotate every 15-50 cycles; beyond 15%
from the session's start price the choice is biased toward mean reversion.
Each cycle the liquidity provider refreshes three passive levels per side
(thicker on the trend's passive side: bids in an uptrend, asks in a
downtrend), and in 20-35% of cycles a taker sends an aggressive order whose
side is biased by RSI(14), the Bollinger position and the MACD histogram.

Pure: time and the seed come in, order requests go out; execution reports for
its own orders come back through ``on_execution`` so it knows what is live.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from streaming.events import CancelOrder, ExecutionReport, NewOrder, OrderRequest, Side
from streaming.indicators import Indicators
from streaming.refdata import Security

RegimeName = Literal["trending_up", "trending_down", "mean_revert", "volatile", "calm"]


@dataclass(frozen=True)
class Regime:
    drift_bp: float  # expected move per cycle, basis points
    vol_bp: float  # standard deviation per cycle, basis points
    aggressive: float  # probability of a taker order per cycle
    half_spread_ticks: int
    reversion: float = 0.0  # pull toward the start price per cycle


REGIMES: dict[RegimeName, Regime] = {
    "trending_up": Regime(3.0, 8.0, 0.30, 2),
    "trending_down": Regime(-3.0, 8.0, 0.30, 2),
    "mean_revert": Regime(0.0, 6.0, 0.25, 2, reversion=0.06),
    "volatile": Regime(0.0, 20.0, 0.35, 3),
    "calm": Regime(0.0, 3.0, 0.20, 1),
}


@dataclass(frozen=True)
class SimulatorConfig:
    cycle_ms: int = 15_000
    levels: int = 3
    level_step_ticks: int = 2
    base_lots: int = 20  # passive size per level, in lots (times 1..4)
    thick_factor: int = 2  # on the trend's passive side
    max_deviation: float = 0.15  # beyond this from the start price, favour mean reversion
    regime_cycles: tuple[int, int] = (15, 50)
    maker: str = "LP01"
    taker: str = "LP02"
    id_base: int = 10**12


@dataclass
class _SymbolState:
    security: Security
    rng: random.Random
    start: float
    fair: float
    regime: RegimeName
    cycles_left: int
    indicators: Indicators = field(default_factory=Indicators)
    quotes: dict[int, tuple[Side, int]] = field(default_factory=dict)  # live maker orders


class MarketSimulator:
    """Generates the market's order flow for each symbol's cycle."""

    def __init__(
        self,
        securities: Sequence[Security],
        seed: int,
        config: SimulatorConfig | None = None,
        start_prices: dict[str, int] | None = None,
    ) -> None:
        self.config = config or SimulatorConfig()
        self._next_id = self.config.id_base
        self.symbols = [s.symbol for s in securities]
        self._state: dict[str, _SymbolState] = {}
        for sec in securities:
            rng = random.Random(f"{seed}/{sec.symbol}")
            start = float((start_prices or {}).get(sec.symbol, sec.reference_price))
            regime: RegimeName = rng.choice(list(REGIMES))
            self._state[sec.symbol] = _SymbolState(
                sec, rng, start, start, regime, rng.randint(*self.config.regime_cycles)
            )

    # -- schedule ------------------------------------------------------------------
    def schedule(self, open_ns: int, close_ns: int) -> Iterator[tuple[int, str]]:
        """(ts, symbol) of every cycle in the session, symbols staggered within a cycle."""
        cycle = self.config.cycle_ms * 1_000_000
        n = len(self.symbols)
        t = open_ns
        while t < close_ns:
            for i, sym in enumerate(self.symbols):
                ts = t + i * cycle // n
                if ts < close_ns:
                    yield ts, sym
            t += cycle

    def regime(self, symbol: str) -> RegimeName:
        return self._state[symbol].regime

    def fair_value(self, symbol: str) -> float:
        return self._state[symbol].fair

    # -- one cycle -------------------------------------------------------------------
    def cycle(self, symbol: str, ts: int) -> list[OrderRequest]:
        """The maker's quote refresh and maybe a taker order, timestamps from ``ts`` on."""
        st = self._state[symbol]
        cfg = self.config
        rng = st.rng
        self._rotate_regime(st)
        reg = REGIMES[st.regime]
        deviation = st.fair / st.start - 1.0
        ret_bp = reg.drift_bp + rng.gauss(0.0, reg.vol_bp)
        ret = ret_bp / 10_000 + reg.reversion * (-deviation)
        if abs(deviation) > cfg.max_deviation:
            ret -= 0.02 * deviation  # always pull back from the edge
        st.fair = max(st.fair * (1.0 + ret), float(st.security.tick))
        st.indicators.update(st.fair)

        sec = st.security
        tick, lot = sec.tick, sec.lot
        mid = round(st.fair / tick) * tick
        hs = reg.half_spread_ticks
        desired: dict[tuple[Side, int], int] = {}
        for k in range(cfg.levels):
            off = (hs + k * cfg.level_step_ticks) * tick
            bid_lots = cfg.base_lots * rng.randint(1, 4)
            ask_lots = cfg.base_lots * rng.randint(1, 4)
            if st.regime == "trending_up":
                bid_lots *= cfg.thick_factor
            elif st.regime == "trending_down":
                ask_lots *= cfg.thick_factor
            if mid - off > 0:
                desired[("buy", mid - off)] = bid_lots * lot
            desired[("sell", mid + off)] = ask_lots * lot

        out: list[OrderRequest] = []
        seq = 0
        keep: set[tuple[Side, int]] = set()
        for oid, (side, price) in sorted(st.quotes.items()):
            if (side, price) in desired and (side, price) not in keep:
                keep.add((side, price))
                continue
            out.append(CancelOrder(oid, cfg.maker, symbol, ts + seq))
            del st.quotes[oid]  # forgotten now: never cancelled twice, whatever the lag
            seq += 1
        for (side, price), qty in desired.items():
            if (side, price) in keep:
                continue
            oid = self._new_id()
            out.append(NewOrder(oid, cfg.maker, symbol, side, qty, price, "limit", "day", ts + seq))
            st.quotes[oid] = (side, price)
            seq += 1

        if rng.random() < reg.aggressive:
            out.append(self._taker_order(st, mid, hs, ts + seq))
        return out

    def _rotate_regime(self, st: _SymbolState) -> None:
        st.cycles_left -= 1
        if st.cycles_left > 0:
            return
        rng = st.rng
        if abs(st.fair / st.start - 1.0) > self.config.max_deviation and rng.random() < 0.8:
            st.regime = "mean_revert"
        else:
            st.regime = rng.choice(list(REGIMES))
        st.cycles_left = rng.randint(*self.config.regime_cycles)

    def _taker_order(self, st: _SymbolState, mid: int, hs: int, ts: int) -> NewOrder:
        rng = st.rng
        ind = st.indicators
        score = {"trending_up": 1.0, "trending_down": -1.0}.get(st.regime, 0.0)
        if ind.rsi < 30:
            score += 1.0
        elif ind.rsi > 70:
            score -= 1.0
        bb = ind.bollinger_position
        if bb < -1.0:
            score += 1.0
        elif bb > 1.0:
            score -= 1.0
        macd = ind.macd_histogram
        score += 0.5 if macd > 0 else -0.5 if macd < 0 else 0.0
        p_buy = min(0.85, max(0.15, 0.5 + 0.12 * score))
        side: Side = "buy" if rng.random() < p_buy else "sell"
        lot, tick = st.security.lot, st.security.tick
        qty = lot * self.config.base_lots * rng.randint(1, 3) // 2 or lot
        oid = self._new_id()
        if rng.random() < 0.5:
            return NewOrder(
                oid, self.config.taker, st.security.symbol, side, qty, None, "market", "ioc", ts
            )
        sign = 1 if side == "buy" else -1
        price = mid + sign * (hs + 2) * tick
        return NewOrder(
            oid, self.config.taker, st.security.symbol, side, qty, price, "limit", "ioc", ts
        )

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- feedback ------------------------------------------------------------------------
    def on_execution(self, report: ExecutionReport) -> None:
        """Forget maker orders that filled completely, expired or were rejected."""
        if report.member == self.config.maker and report.leaves_qty == 0:
            self._state[report.symbol].quotes.pop(report.order_id, None)
