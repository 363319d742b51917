"""Clearing against cases computed by hand (money in 1/10,000 units: price x quantity)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from lake.batch.settlement import ClearingError, FeeSchedule, Fill, Holding, MemberState, settle_day

pytestmark = pytest.mark.unit

CAPITAL = 1_000_000_000  # 100,000.0000


def _fill(member, side, qty, price, ts, symbol="SAP", trade_id=None):
    return Fill(member, symbol, side, qty, price, ts, trade_id if trade_id is not None else ts)


def _one(positions, member="A", symbol="SAP"):
    (row,) = [p for p in positions if p.member == member and p.symbol == symbol]
    return row


def test_partial_fills_build_one_average_cost():
    # 30 @ 100.0000 then 70 @ 110.0000: avg = (3,000,000 + 7,700,000) / 100 = 107,000
    fills = [_fill("A", "buy", 30, 1_000_000, 1), _fill("A", "buy", 70, 1_100_000, 2)]
    positions, members, closing = settle_day(
        {"A": MemberState(Fraction(CAPITAL))}, fills, {"SAP": 1_200_000}
    )
    row = _one(positions)
    assert (row.opening_qty, row.closing_qty, row.bought, row.sold) == (0, 100, 100, 0)
    assert row.avg_cost == 1_070_000
    assert row.realized_pnl == 0
    assert row.unrealized_pnl == 100 * (1_200_000 - 1_070_000)  # 13,000,000 = 1,300.00
    (m,) = members
    assert m.closing_cash == CAPITAL - 107_000_000
    assert m.holdings_value == 120_000_000
    assert m.net_worth == CAPITAL + 13_000_000
    assert closing["A"].holdings["SAP"] == Holding(100, Fraction(107_000_000))


def test_round_trip_within_the_day_realises_everything():
    fills = [
        _fill("A", "buy", 50, 1_000_000, 1),
        _fill("A", "sell", 20, 1_050_000, 2),  # +20 x 50,000 = 1,000,000
        _fill("A", "sell", 30, 990_000, 3),  # -30 x 10,000 = -300,000
    ]
    positions, members, closing = settle_day(
        {"A": MemberState(Fraction(CAPITAL))}, fills, {"SAP": 2_000_000}
    )
    row = _one(positions)
    assert row.closing_qty == 0 and row.avg_cost is None
    assert row.realized_pnl == 700_000 and row.unrealized_pnl == 0
    assert members[0].closing_cash == CAPITAL + 700_000
    assert "SAP" not in closing["A"].holdings


def test_positions_and_cash_carry_over_to_the_next_day():
    day1 = [_fill("A", "buy", 10, 1_000_000, 1)]
    _, m1, close1 = settle_day({"A": MemberState(Fraction(CAPITAL))}, day1, {"SAP": 1_100_000})
    assert m1[0].unrealized_pnl == 1_000_000
    # day 2 opens with day 1's close: 10 @ 100.0000, cash = capital - 10,000,000
    day2 = [_fill("A", "sell", 4, 1_200_000, 10)]
    positions, m2, _ = settle_day(close1, day2, {"SAP": 1_150_000})
    row = _one(positions)
    assert (row.opening_qty, row.closing_qty) == (10, 6)
    assert row.realized_pnl == 4 * 200_000  # against the carried cost, not day 2's open
    assert row.unrealized_pnl == 6 * 150_000
    assert m2[0].opening_cash == CAPITAL - 10_000_000  # not the starting capital again
    assert m2[0].closing_cash == CAPITAL - 10_000_000 + 4_800_000


def test_a_held_position_without_trades_is_still_reported_and_marked():
    opening = {"A": MemberState(Fraction(0), {"SAP": Holding(5, Fraction(5_000_000))})}
    positions, members, _ = settle_day(opening, [], {"SAP": 900_000})
    row = _one(positions)
    assert (row.opening_qty, row.closing_qty, row.bought, row.sold) == (5, 5, 0, 0)
    assert row.unrealized_pnl == 5 * (900_000 - 1_000_000)
    assert members[0].securities_traded == 0 and not members[0].obligation_met


def test_shorts_refused_by_default_allowed_by_configuration():
    fills = [_fill("A", "buy", 5, 1_000_000, 1), _fill("A", "sell", 8, 1_100_000, 2)]
    with pytest.raises(ClearingError, match="short"):
        settle_day({"A": MemberState(Fraction(CAPITAL))}, fills, {"SAP": 1_000_000})
    positions, _, closing = settle_day(
        {"A": MemberState(Fraction(CAPITAL))}, fills, {"SAP": 1_000_000}, allow_short=True
    )
    row = _one(positions)
    assert row.closing_qty == -3
    assert row.realized_pnl == 5 * 100_000  # the long part closed at a profit
    assert row.avg_cost == 1_100_000  # the short opened at the sale price
    assert row.unrealized_pnl == 3 * (1_100_000 - 1_000_000)  # short gains as price falls
    # covering the short the next day realises against its sale price
    cover, _, _ = settle_day(closing, [_fill("A", "buy", 3, 1_050_000, 5)], {"SAP": 1_050_000},
                             allow_short=True)  # fmt: skip
    assert _one(cover).realized_pnl == 3 * 50_000 and _one(cover).closing_qty == 0


def test_fees_reduce_cash_and_are_reported():
    fees = FeeSchedule(bps=Fraction(1), per_fill=500)  # 1 bp of notional + 0.05 per fill
    fills = [_fill("A", "buy", 100, 1_000_000, 1), _fill("A", "sell", 100, 1_000_000, 2)]
    positions, members, _ = settle_day({"A": MemberState(Fraction(CAPITAL))}, fills, {}, fees)
    per_fill = 100 * 1_000_000 // 10_000 + 500  # 10,500
    assert _one(positions).fees == 2 * per_fill
    assert members[0].fees == 2 * per_fill
    assert members[0].closing_cash == CAPITAL - 2 * per_fill


def test_fees_are_charged_per_fill_in_whole_units_and_add_up():
    fees = FeeSchedule(bps=Fraction(1, 2))  # 0.5 bp: fractions of a unit on these notionals
    fills = [_fill("A", "buy", 3, 1_000_001, 1), _fill("A", "buy", 5, 999_999, 2),
             _fill("A", "buy", 7, 1_234_567, 3, symbol="ABC")]  # fmt: skip
    positions, members, closing = settle_day({"A": MemberState(Fraction(CAPITAL))}, fills, {},
                                             fees)  # fmt: skip
    charged = [round(Fraction(f.qty * f.price, 20_000)) for f in fills]  # half to even
    assert charged == [150, 250, 432]
    assert members[0].fees == sum(p.fees for p in positions) == sum(charged)
    assert closing["A"].cash.denominator == 1  # cash stays a whole amount
    assert members[0].closing_cash == (
        CAPITAL - 3 * 1_000_001 - 5 * 999_999 - 7 * 1_234_567 - sum(charged)
    )


def test_obligation_counts_securities_traded():
    fills = [_fill("A", "buy", 1, 1_000_000, i, symbol=f"S{i:02d}") for i in range(20)]
    fills += [_fill("B", "buy", 1, 1_000_000, 100 + i, symbol=f"S{i:02d}") for i in range(19)]
    opening = {m: MemberState(Fraction(CAPITAL)) for m in ("A", "B")}
    _, members, _ = settle_day(opening, fills, {})
    assert {m.member: (m.securities_traded, m.obligation_met) for m in members} == {
        "A": (20, True),
        "B": (19, False),
    }


def test_fills_apply_in_time_order_whatever_order_they_come_in():
    fills = [_fill("A", "sell", 10, 1_100_000, 2), _fill("A", "buy", 10, 1_000_000, 1)]
    positions, _, _ = settle_day({"A": MemberState(Fraction(CAPITAL))}, fills, {})
    assert _one(positions).realized_pnl == 1_000_000


def test_unknown_members_and_bad_fills_are_refused():
    with pytest.raises(ClearingError, match="Z"):
        settle_day({"A": MemberState(Fraction(0))}, [_fill("Z", "buy", 1, 1, 1)], {})
    with pytest.raises(ClearingError, match="> 0"):
        settle_day({"A": MemberState(Fraction(0))}, [_fill("A", "buy", 0, 1, 1)], {})
