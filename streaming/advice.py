"""Following recommendations: a member's pre-trade checks and the size of its advice orders.

A member that follows recommendations (``strategy = advice`` in members.csv)
runs every recommendation it receives through :func:`evaluate`, which either
skips it with the reason of the first check that failed or acts with a side,
a quantity and a limit price. The checks run in a fixed order, so a
recommendation that fails several of them is always reported with the same
reason:

0. the recommendation itself: ``no_action`` (hold / watch), ``informational``
   (its mode forbids trading on it), ``not_tradable`` (not listed here);
1. ``circuit_breaker``: the member has lost ``daily_loss_limit`` of its
   start-of-day net worth (marked at last trade prices);
2. ``outside_trading_window``: the first ``open_delay_ns`` or the last
   ``close_buffer_ns`` of the session, when books are thin or about to close;
3. ``below_confidence_gate``: confidence under the member's risk tier's gate;
4. ``duplicate``: the member already acted on this symbol and action today;
5. ``declining_position`` (buys): the member holds the symbol at a loss of
   more than ``max_decline`` of its average cost (no averaging down);
6. ``max_open_positions`` (buys): the buy would open one more advice position
   than the tier allows (positions bought on advice and still held or bid for);
7. then pricing and sizing: ``no_quote`` (no opposite side to trade against),
   ``nothing_to_sell`` (no free holding: never short), ``size_zero`` (the
   caps leave less than one lot).

Sizing a buy: net worth x the tier's base fraction x the confidence, limited
by the room left under the sector cap (the sector's held value at marks plus
open buy orders counted), by the absolute cap per order and by free cash,
then rounded *down* to the lot. A sell exits the free holding, limited by the
absolute cap. The limit price crosses the touch by ``cross_bps`` (at least a tick) so
the order is marketable but bounded, and stays on the tick grid. An act's
reason names the limit that bound its size.

Pure and deterministic: the clock, the account and the market are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Literal

from streaming.events import PRICE_SCALE, Recommendation, Side
from streaming.portfolio import Account, MarketView
from streaming.refdata import RiskTier, Security

MINUTE_NS = 60 * 1_000_000_000

SkipReason = Literal[
    "no_action",
    "informational",
    "not_tradable",
    "circuit_breaker",
    "outside_trading_window",
    "below_confidence_gate",
    "duplicate",
    "declining_position",
    "max_open_positions",
    "no_quote",
    "nothing_to_sell",
    "size_zero",
]
ActReason = Literal["tier_target", "sector_cap", "absolute_cap", "free_cash", "position"]


@dataclass(frozen=True)
class TierRules:
    """What a risk tier allows: the confidence gate, position size and position count."""

    min_confidence: float
    base_fraction: float  # of net worth per position, before scaling by confidence
    max_open_positions: int


DEFAULT_TIERS: Mapping[RiskTier, TierRules] = {
    "conservative": TierRules(min_confidence=0.75, base_fraction=0.02, max_open_positions=3),
    "moderate": TierRules(min_confidence=0.60, base_fraction=0.05, max_open_positions=5),
    "aggressive": TierRules(min_confidence=0.45, base_fraction=0.10, max_open_positions=8),
}


@dataclass(frozen=True)
class AdviceConfig:
    """Limits shared by every follower; the tiers set what differs between them."""

    tiers: Mapping[RiskTier, TierRules] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    daily_loss_limit: float = 0.03  # share of start-of-day net worth
    open_delay_ns: int = 5 * MINUTE_NS
    close_buffer_ns: int = 10 * MINUTE_NS
    sector_cap: float = 0.25  # share of net worth in one sector
    max_order_value: int = 10_000 * PRICE_SCALE  # price units x shares (10,000 currency)
    max_decline: float = 0.05  # loss on a holding beyond which it is not added to
    cross_bps: int = 10  # how far past the touch the limit goes (basis points, >= one tick)


@dataclass(frozen=True)
class Decision:
    """The outcome of one evaluation: ``act`` with an order, or ``skip`` with the reason."""

    outcome: Literal["act", "skip"]
    reason: str
    side: Side | None = None
    qty: int = 0
    price: int | None = None

    @property
    def acts(self) -> bool:
        return self.outcome == "act"


def skip(reason: SkipReason) -> Decision:
    return Decision("skip", reason)


def window_opens(open_ns: int, config: AdviceConfig) -> int:
    """When advice orders may start: the open plus the opening delay."""
    return open_ns + config.open_delay_ns


def advice_positions(account: Account, acted: Set[tuple[str, str]]) -> set[str]:
    """Symbols bought on advice today that the member still holds or still bids for."""
    bidding = {o.symbol for o in account.open_orders.values() if o.side == "buy"}
    return {
        symbol
        for symbol, action in acted
        if action == "buy" and (symbol in bidding or held(account, symbol) > 0)
    }


def held(account: Account, symbol: str) -> int:
    """Shares of ``symbol`` the member holds (open sell orders included)."""
    pos = account.positions.get(symbol)
    return pos.qty if pos is not None else 0


def declining(account: Account, marks: Mapping[str, int], symbol: str, max_decline: float) -> bool:
    """Is ``symbol`` held with its mark more than ``max_decline`` under the average cost?"""
    pos = account.positions.get(symbol)
    mark = marks.get(symbol)
    if pos is None or pos.qty <= 0 or mark is None:
        return False
    return mark < pos.avg_cost * (1.0 - max_decline)


def sector_exposure(
    account: Account, market: MarketView, securities: Mapping[str, Security], sector_of: str
) -> int:
    """Value held in a sector at marks, plus what open buy orders in it would add."""

    def key(symbol: str) -> str:
        sec = securities.get(symbol)
        return sec.sector if sec is not None and sec.sector else symbol

    marks = market.marks()
    held = sum(
        p.qty * marks.get(s, 0)
        for s, p in account.positions.items()
        if p.qty and key(s) == sector_of
    )
    bids = sum(
        o.price * o.leaves
        for o in account.open_orders.values()
        if o.side == "buy" and key(o.symbol) == sector_of
    )
    return held + bids


def evaluate(
    rec: Recommendation,
    account: Account,
    market: MarketView,
    securities: Mapping[str, Security],
    now: int,
    open_ns: int,
    close_ns: int,
    tier: RiskTier,
    acted: Set[tuple[str, str]],
    config: AdviceConfig | None = None,
) -> Decision:
    """Run the pre-trade checks in order, then size and price the order.

    ``acted`` holds the (symbol, action) pairs the member has already acted
    on today; ``now`` is the event time of the decision.
    """
    cfg = config or AdviceConfig()
    rules = cfg.tiers[tier]
    if rec.action not in ("buy", "sell"):
        return skip("no_action")
    if rec.mode == "informational":
        return skip("informational")
    sec = securities.get(rec.symbol)
    if sec is None:
        return skip("not_tradable")
    marks = market.marks()
    worth = account.net_worth(marks)
    if account.start_value > 0 and worth <= account.start_value * (1.0 - cfg.daily_loss_limit):
        return skip("circuit_breaker")
    if now < window_opens(open_ns, cfg) or now >= close_ns - cfg.close_buffer_ns:
        return skip("outside_trading_window")
    if rec.confidence < rules.min_confidence:
        return skip("below_confidence_gate")
    if (rec.symbol, rec.action) in acted:
        return skip("duplicate")
    if rec.action == "buy":
        if declining(account, marks, rec.symbol, cfg.max_decline):
            return skip("declining_position")
        opened = advice_positions(account, acted)
        if rec.symbol not in opened and len(opened) >= rules.max_open_positions:
            return skip("max_open_positions")
        return _size_buy(rec, account, market, securities, sec, worth, rules, cfg)
    return _size_sell(rec, account, market, sec, cfg)


def _size_buy(
    rec: Recommendation,
    account: Account,
    market: MarketView,
    securities: Mapping[str, Security],
    sec: Security,
    worth: int,
    rules: TierRules,
    cfg: AdviceConfig,
) -> Decision:
    ask = market.ask.get(rec.symbol)
    if ask is None:
        return skip("no_quote")
    price = ask + crossing(ask, sec.tick, cfg.cross_bps)
    sector = sec.sector or sec.symbol
    room = int(worth * cfg.sector_cap) - sector_exposure(account, market, securities, sector)
    limits: list[tuple[ActReason, int]] = [
        ("tier_target", int(worth * rules.base_fraction * min(1.0, max(0.0, rec.confidence)))),
        ("sector_cap", room),
        ("absolute_cap", cfg.max_order_value),
        ("free_cash", account.free_cash()),
    ]
    reason, value = min(limits, key=lambda lim: lim[1])  # first of equals wins
    qty = lot_floor(max(0, value) // price, sec.lot)
    if qty <= 0:
        return skip("size_zero")
    return Decision("act", reason, "buy", qty, price)


def _size_sell(
    rec: Recommendation, account: Account, market: MarketView, sec: Security, cfg: AdviceConfig
) -> Decision:
    bid = market.bid.get(rec.symbol)
    if bid is None:
        return skip("no_quote")
    free = account.free_qty(rec.symbol)
    if free <= 0:
        return skip("nothing_to_sell")
    price = max(sec.tick, bid - crossing(bid, sec.tick, cfg.cross_bps))
    capped = cfg.max_order_value // price
    reason: ActReason = "absolute_cap" if capped < free else "position"
    qty = lot_floor(min(free, capped), sec.lot)
    if qty <= 0:
        return skip("size_zero")
    return Decision("act", reason, "sell", qty, price)


def crossing(touch: int, tick: int, bps: int) -> int:
    """How far past the touch a marketable limit goes: ``bps`` of it in whole ticks, >= 1 tick.

    The simulator requotes within the cycle the member decides in, so the
    touch it saw may have moved by the time the order arrives; a few basis
    points keep the order marketable without making it a market order.
    """
    return max(1, touch * bps // (10_000 * tick)) * tick


def lot_floor(qty: int, lot: int) -> int:
    """``qty`` rounded down to a whole number of lots."""
    return (qty // lot) * lot
