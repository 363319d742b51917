"""End-of-day clearing: positions, average cost, P&L, fees and cash per member (pure).

A day opens with the previous day's closing state (positions, average cost,
cash), never with starting capital again; only a member's first day opens
with its capital. Fills are applied in trading order with the average-cost
method: buys (and short sales, when allowed) move the average, closing trades
realise P&L against it. What remains open is marked at the day's closing
price. Money is integer in 1/10,000 of the currency (price units x quantity);
the cost basis is kept as an exact fraction so no rounding accumulates over
days, and amounts are rounded half-even only when reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Literal

Side = Literal["buy", "sell"]


class ClearingError(ValueError):
    """Input that cannot be cleared (a short sale when shorts are not allowed, ...)."""


@dataclass(frozen=True)
class Fill:
    member: str
    symbol: str
    side: Side
    qty: int
    price: int
    ts: int
    trade_id: int


@dataclass(frozen=True)
class FeeSchedule:
    """Per fill: ``bps`` of its notional plus a fixed amount (both in money units).

    Each fill's fee is charged in whole money units (rounded half to even), as
    a clearing house bills it, so a member's fees are exactly the sum of its
    per-symbol fees and its cash stays a whole amount.
    """

    bps: Fraction = Fraction(0)
    per_fill: int = 0

    def fee(self, notional: int) -> int:
        return round(notional * self.bps / 10_000) + self.per_fill


@dataclass(frozen=True)
class Holding:
    """One member's position in one symbol: quantity (negative = short) and its cost."""

    qty: int = 0
    cost: Fraction = Fraction(0)  # signed: what the open quantity cost (shorts: proceeds, < 0)

    @property
    def avg_cost(self) -> Fraction | None:
        return self.cost / self.qty if self.qty else None


@dataclass(frozen=True)
class MemberState:
    """A member's state at a day's close, which is the next day's opening state."""

    cash: Fraction
    holdings: Mapping[str, Holding] = field(default_factory=dict)


@dataclass(frozen=True)
class PositionRow:
    member: str
    symbol: str
    opening_qty: int
    closing_qty: int
    bought: int
    sold: int
    avg_cost: float | None
    settlement_price: int | None
    realized_pnl: int
    unrealized_pnl: int
    fees: int


@dataclass(frozen=True)
class MemberRow:
    member: str
    opening_cash: int
    closing_cash: int
    bought_notional: int
    sold_notional: int
    fees: int
    realized_pnl: int
    unrealized_pnl: int
    holdings_value: int
    net_worth: int
    securities_traded: int
    obligation_met: bool


def _apply(
    holding: Holding, side: Side, qty: int, price: int, allow_short: bool, who: str
) -> tuple[Holding, Fraction]:
    """The holding after a fill, and the P&L it realised."""
    signed = qty if side == "buy" else -qty
    if holding.qty == 0 or (holding.qty > 0) == (signed > 0):  # opening or adding
        new = Holding(holding.qty + signed, holding.cost + signed * price)
        if new.qty < 0 and not allow_short:
            raise ClearingError(f"{who}: a sale of {qty} would go short (shorts not allowed)")
        return new, Fraction(0)
    closing = min(abs(signed), abs(holding.qty))
    avg = holding.cost / holding.qty
    # long: sell above cost gains; short: buy below the sale price gains
    realized = (price - avg) * closing if holding.qty > 0 else (avg - price) * closing
    remaining = holding.qty + (closing if holding.qty < 0 else -closing)
    held = Holding(remaining, avg * remaining)
    rest = abs(signed) - closing
    if rest == 0:
        return held, realized
    if not allow_short and signed < 0:
        raise ClearingError(f"{who}: a sale of {qty} would go short (shorts not allowed)")
    open_qty = rest if signed > 0 else -rest
    flipped = Holding(open_qty, Fraction(open_qty * price))
    return flipped, realized


@dataclass
class _Traded:
    """What one member did in one symbol during the day."""

    bought: int = 0
    sold: int = 0
    buy_notional: int = 0
    sell_notional: int = 0
    realized: Fraction = Fraction(0)
    fees: Fraction = Fraction(0)


def _money(x: Fraction) -> int:
    return round(x)  # half to even, only when reported


def settle_day(
    opening: Mapping[str, MemberState],
    fills: Iterable[Fill],
    closing_prices: Mapping[str, int],
    fees: FeeSchedule = FeeSchedule(),
    allow_short: bool = False,
    obligation: int = 20,
) -> tuple[list[PositionRow], list[MemberRow], dict[str, MemberState]]:
    """Clear one day: per member and symbol rows, per member rows, and the closing state.

    ``opening`` holds every member (its capital as cash on its first day);
    ``fills`` are the day's fills in any order (they are applied by time,
    then trade id); a symbol without a closing price keeps its average cost
    as its mark.
    """
    ordered = sorted(fills, key=lambda f: (f.ts, f.trade_id, f.member, f.side))
    unknown = sorted({f.member for f in ordered} - set(opening))
    if unknown:
        raise ClearingError(f"fills of members without an opening state: {', '.join(unknown)}")
    holdings = {m: dict(s.holdings) for m, s in opening.items()}
    cash = {m: s.cash for m, s in opening.items()}
    stats: dict[tuple[str, str], _Traded] = {}
    for f in ordered:
        if f.qty <= 0 or f.price <= 0:
            raise ClearingError(f"fill {f.trade_id} of {f.member}: quantity and price must be > 0")
        row = stats.setdefault((f.member, f.symbol), _Traded())
        held = holdings[f.member].get(f.symbol, Holding())
        new, realized = _apply(held, f.side, f.qty, f.price, allow_short, f"{f.member} {f.symbol}")
        holdings[f.member][f.symbol] = new
        notional = f.qty * f.price
        fee = fees.fee(notional)
        row.realized += realized
        row.fees += fee
        if f.side == "buy":
            row.bought += f.qty
            row.buy_notional += notional
            cash[f.member] -= notional + fee
        else:
            row.sold += f.qty
            row.sell_notional += notional
            cash[f.member] += notional - fee

    positions: list[PositionRow] = []
    members: list[MemberRow] = []
    closing: dict[str, MemberState] = {}
    for member in sorted(opening):
        opened = opening[member].holdings
        symbols = sorted(set(opened) | {s for m, s in stats if m == member})
        total = _Traded()
        unrealized_total = value = Fraction(0)
        traded = 0
        for symbol in symbols:
            held = holdings[member].get(symbol, Holding())
            day = stats.get((member, symbol))
            mark = closing_prices.get(symbol)
            mark_value = Fraction(mark) if mark is not None else (held.avg_cost or Fraction(0))
            unrealized = held.qty * mark_value - held.cost
            unrealized_total += unrealized
            value += held.qty * mark_value
            if day is not None:
                traded += 1
                total.realized += day.realized
                total.fees += day.fees
                total.buy_notional += day.buy_notional
                total.sell_notional += day.sell_notional
            opening_qty = opened.get(symbol, Holding()).qty
            if held.qty == 0 and day is None and opening_qty == 0:
                continue
            day = day or _Traded()
            avg = held.avg_cost
            positions.append(PositionRow(
                member, symbol, opening_qty, held.qty, day.bought, day.sold,
                float(avg) if avg is not None else None, mark,
                _money(day.realized), _money(unrealized), _money(day.fees),
            ))  # fmt: skip
        kept = {s: h for s, h in holdings[member].items() if h.qty != 0}
        closing[member] = replace(opening[member], cash=cash[member], holdings=kept)
        members.append(MemberRow(
            member, _money(opening[member].cash), _money(cash[member]), total.buy_notional,
            total.sell_notional, _money(total.fees), _money(total.realized),
            _money(unrealized_total), _money(value), _money(cash[member] + value),
            traded, traded >= obligation,
        ))  # fmt: skip
    return positions, members, closing
