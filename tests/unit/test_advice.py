"""Following recommendations: the pre-trade checks in their order, sizing, and its invariants."""

from __future__ import annotations

import itertools
from dataclasses import replace

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streaming.advice import (
    DEFAULT_TIERS,
    MINUTE_NS,
    AdviceConfig,
    crossing,
    evaluate,
    sector_exposure,
)
from streaming.events import BookTop, ExecutionReport, Recommendation
from streaming.members import Members
from streaming.portfolio import Account, MarketView, OpenOrder
from streaming.refdata import RefDataError, Security, load_members

pytestmark = pytest.mark.unit

EUR = 10_000  # price units per currency unit
OPEN = 1_000_000 * MINUTE_NS
CLOSE = OPEN + 390 * MINUTE_NS
IN_WINDOW = OPEN + 60 * MINUTE_NS
CFG = AdviceConfig()

SECURITIES = {
    s.symbol: s
    for s in (
        Security("AAA", tick=100, lot=1, reference_price=100 * EUR, sector="Tech"),
        Security("BBB", tick=100, lot=1, reference_price=50 * EUR, sector="Tech"),
        Security("CCC", tick=100, lot=10, reference_price=20 * EUR, sector="Energy"),
        Security("DDD", tick=500, lot=1, reference_price=400 * EUR, sector="Health"),
        Security("EEE", tick=100, lot=1, reference_price=10 * EUR, sector="Retail"),
        Security("FFF", tick=100, lot=1, reference_price=30 * EUR, sector="Utilities"),
    )
}


def _market(unquoted: tuple[str, ...] = ()) -> MarketView:
    """Every security quoted one tick either side of its reference price (bar ``unquoted``)."""
    market = MarketView(SECURITIES.values())
    for sec in SECURITIES.values():
        if sec.symbol not in unquoted:
            bid, ask = sec.reference_price - sec.tick, sec.reference_price + sec.tick
            market.on_top(BookTop(sec.symbol, 0, bid, 1000, ask, 1000))
    return market


def _fill(symbol: str, side: str, qty: int, price: int, oid: int = 1) -> ExecutionReport:
    return ExecutionReport(
        1, oid, "USR09", symbol, side, "trade", "filled", None, None, price, qty, price, 0, qty,
        1, 0,
    )  # fmt: skip


def _account(cash_eur: int = 100_000, market: MarketView | None = None) -> Account:
    acct = Account("USR09", cash_eur * EUR, cash_eur * EUR)
    acct.start_value = acct.net_worth((market or _market()).marks())
    return acct


def _rec(symbol: str = "AAA", action: str = "buy", confidence: float = 0.8, **kw) -> Recommendation:
    fields = {"mode": "paper_eligible", "ts": OPEN - MINUTE_NS, **kw}
    return Recommendation(f"rec-{symbol}-{action}", symbol, action, confidence, **fields)


def _evaluate(rec, acct, market, now=IN_WINDOW, tier="moderate", acted=frozenset(), cfg=CFG):
    return evaluate(rec, acct, market, SECURITIES, now, OPEN, CLOSE, tier, acted, cfg)


# --- the checks, one by one and in their order ------------------------------------------------

CHECKS = (
    "circuit_breaker",
    "outside_trading_window",
    "below_confidence_gate",
    "duplicate",
    "declining_position",
    "max_open_positions",
    "no_quote",
)


def _state(*failing: str):
    """A buy of AAA that fails exactly the named checks (and passes every other one)."""
    market = _market(unquoted=("AAA",) if "no_quote" in failing else ())
    acct = _account(market=market)
    acted: set[tuple[str, str]] = set()
    now, confidence = IN_WINDOW, 0.8
    if "declining_position" in failing:  # hold AAA bought 10% above its mark
        acct.apply(_fill("AAA", "buy", 10, 110 * EUR))
        acct.start_value = acct.net_worth(market.marks())
    if "max_open_positions" in failing:  # five advice positions open (moderate allows five)
        for i, symbol in enumerate(("BBB", "CCC", "DDD", "EEE", "FFF"), start=10):
            acct.apply(_fill(symbol, "buy", SECURITIES[symbol].lot, market.last[symbol], i))
            acted.add((symbol, "buy"))
        acct.start_value = acct.net_worth(market.marks())
    if "duplicate" in failing:
        acted.add(("AAA", "buy"))
    if "below_confidence_gate" in failing:
        confidence = 0.55  # moderate gate: 0.60
    if "outside_trading_window" in failing:
        now = OPEN + 2 * MINUTE_NS
    if "circuit_breaker" in failing:  # a little over 3% of the start-of-day net worth lost
        acct.cash -= acct.start_value * 3 // 100 + EUR
    return _rec("AAA", "buy", confidence), acct, market, now, acted


@pytest.mark.parametrize("check", CHECKS)
def test_each_check_alone_gives_its_reason(check):
    rec, acct, market, now, acted = _state(check)
    decision = _evaluate(rec, acct, market, now, acted=acted)
    assert (decision.outcome, decision.reason) == ("skip", check)


def test_the_state_without_failures_acts():
    rec, acct, market, now, acted = _state()
    assert _evaluate(rec, acct, market, now, acted=acted).outcome == "act"


@pytest.mark.parametrize("first,second", list(itertools.combinations(CHECKS, 2)))
def test_when_two_checks_fail_the_first_in_order_is_reported(first, second):
    rec, acct, market, now, acted = _state(first, second)
    assert _evaluate(rec, acct, market, now, acted=acted).reason == first


def test_all_checks_failing_reports_the_circuit_breaker():
    rec, acct, market, now, acted = _state(*CHECKS)
    assert _evaluate(rec, acct, market, now, acted=acted).reason == "circuit_breaker"


def test_recommendation_gates_come_before_the_account_checks():
    rec, acct, market, now, acted = _state(*CHECKS)
    hold = msgspec.structs.replace(rec, action="hold", mode="informational")
    assert _evaluate(hold, acct, market, now, acted=acted).reason == "no_action"
    info = msgspec.structs.replace(rec, mode="informational")
    assert _evaluate(info, acct, market, now, acted=acted).reason == "informational"
    unknown = msgspec.structs.replace(rec, symbol="ZZZ")
    assert _evaluate(unknown, acct, market, now, acted=acted).reason == "not_tradable"


def test_trading_window_excludes_the_first_and_last_minutes():
    market = _market()
    acct = _account(market=market)
    rec = _rec()
    opens, closes = OPEN + CFG.open_delay_ns, CLOSE - CFG.close_buffer_ns
    assert _evaluate(rec, acct, market, opens - 1).reason == "outside_trading_window"
    assert _evaluate(rec, acct, market, opens).outcome == "act"
    assert _evaluate(rec, acct, market, closes - 1).outcome == "act"
    assert _evaluate(rec, acct, market, closes).reason == "outside_trading_window"


def test_confidence_gate_depends_on_the_tier():
    market = _market()
    rec = _rec(confidence=0.7)
    assert _evaluate(rec, _account(market=market), market, tier="conservative").reason == (
        "below_confidence_gate"
    )
    assert _evaluate(rec, _account(market=market), market, tier="moderate").outcome == "act"
    low = _rec(confidence=0.5)
    assert _evaluate(low, _account(market=market), market, tier="aggressive").outcome == "act"


def test_a_loss_just_under_the_limit_keeps_trading():
    market = _market()
    acct = _account(market=market)
    acct.cash -= acct.start_value * 3 // 100 - 1
    assert _evaluate(_rec(), acct, market).outcome == "act"


def test_duplicate_is_per_symbol_and_action():
    market = _market()
    acct = _account(market=market)
    acct.apply(_fill("AAA", "buy", 10, 100 * EUR))
    acted = {("AAA", "buy")}
    assert _evaluate(_rec(), acct, market, acted=acted).reason == "duplicate"
    assert _evaluate(_rec(action="sell"), acct, market, acted=acted).outcome == "act"


def test_positions_count_only_advice_buys_still_held_or_bid_for():
    market = _market()
    acct = _account(market=market)
    acted = {(s, "buy") for s in ("BBB", "CCC", "DDD", "EEE", "FFF")}
    # only two are held or bid for: the other three were sold or never filled
    acct.apply(_fill("BBB", "buy", 1, 50 * EUR, 1))
    acct.open_orders[2] = OpenOrder("CCC", "buy", 20 * EUR, 10, 0)
    assert _evaluate(_rec(), acct, market, acted=acted).outcome == "act"
    # a symbol the member already holds on advice is not a new position
    acct.apply(_fill("DDD", "buy", 1, 400 * EUR, 3))
    acct.apply(_fill("EEE", "buy", 1, 10 * EUR, 4))
    acct.apply(_fill("FFF", "buy", 1, 30 * EUR, 5))
    assert _evaluate(_rec(), acct, market, acted=acted).reason == "max_open_positions"
    assert _evaluate(_rec("BBB"), acct, market, acted=acted - {("BBB", "buy")}).outcome == "act"


def test_sell_without_a_free_holding_is_nothing_to_sell_after_no_quote():
    market = _market(unquoted=("AAA",))
    acct = _account(market=market)
    assert _evaluate(_rec(action="sell"), acct, market).reason == "no_quote"
    assert _evaluate(_rec(action="sell"), acct, _market()).reason == "nothing_to_sell"
    acct.apply(_fill("AAA", "buy", 5, 100 * EUR))
    acct.open_orders[9] = OpenOrder("AAA", "sell", 101 * EUR, 5, 0)  # all of it offered already
    assert _evaluate(_rec(action="sell"), acct, _market()).reason == "nothing_to_sell"


# --- sizing -------------------------------------------------------------------------------------


def test_buy_size_is_net_worth_times_tier_base_times_confidence_rounded_down():
    market = _market()
    decision = _evaluate(_rec("AAA", confidence=0.8), _account(market=market), market)
    # ask 100.01; crossing 10 bps: 1_000_100 * 10 // (10_000 * 100) = 10 ticks -> 100.11
    assert decision.price == 100 * EUR + 100 + 10 * 100
    # 100,000 x 0.05 (moderate) x 0.8 = 4,000 EUR -> 4,000 / 100.11 = 39.96 -> 39 shares
    assert (decision.outcome, decision.reason, decision.side, decision.qty) == (
        "act", "tier_target", "buy", 39,
    )  # fmt: skip


def test_buy_size_by_tier():
    market = _market()
    sizes = {
        tier: _evaluate(_rec("AAA", confidence=0.9), _account(market=market), market, tier=tier).qty
        for tier in DEFAULT_TIERS
    }
    # 100,000 x {0.02, 0.05, 0.10} x 0.9 = 1,800 / 4,500 / 9,000 EUR at 100.11
    assert sizes == {"conservative": 17, "moderate": 44, "aggressive": 89}


def test_sector_cap_counts_current_exposure_and_open_bids():
    market = _market()
    acct = _account(market=market)
    acct.apply(_fill("BBB", "buy", 400, 50 * EUR, 1))  # 20,000 EUR in Tech
    acct.open_orders[2] = OpenOrder("AAA", "buy", 100 * EUR, 30, 0)  # 3,000 EUR bid in Tech
    assert sector_exposure(acct, market, SECURITIES, "Tech") == 23_000 * EUR
    decision = _evaluate(_rec("AAA", confidence=1.0), acct, market, tier="aggressive")
    # net worth 100,000; cap 25% = 25,000; room 2,000 EUR < target 10,000 -> 2,000 / 100.11 = 19
    assert (decision.reason, decision.qty) == ("sector_cap", 19)
    assert _evaluate(_rec("DDD", confidence=1.0), acct, market, tier="aggressive").reason != (
        "sector_cap"
    )


def test_absolute_cap_and_free_cash_limit_the_size():
    market = _market()
    cfg = replace(CFG, max_order_value=3_000 * EUR)
    capped = _evaluate(_rec("AAA", confidence=1.0), _account(market=market), market, cfg=cfg)
    assert (capped.reason, capped.qty) == ("absolute_cap", 29)  # 3,000 / 100.11
    acct = _account(market=market)
    acct.open_orders[1] = OpenOrder("EEE", "buy", 10 * EUR, 9_880, 0)  # 98,800 EUR reserved
    poor = _evaluate(_rec("AAA", confidence=1.0), acct, market)
    assert (poor.reason, poor.qty) == ("free_cash", 11)  # 1,200 / 100.11


def test_lot_rounding_is_down_and_below_one_lot_is_size_zero():
    market = _market()
    # CCC: lot 10 at 20.01 + 2 ticks (10 bps of 20.01 = 2 ticks) = 20.03;
    # 100,000 x 0.02 x 0.8 = 1,600 EUR -> 79.88 shares -> 70
    decision = _evaluate(_rec("CCC", confidence=0.8), _account(market=market), market,
                         tier="conservative")  # fmt: skip
    assert (decision.price, decision.qty) == (20 * EUR + 300, 70)
    tiny = replace(CFG, max_order_value=150 * EUR)  # 7.5 shares: not one lot of 10
    assert _evaluate(_rec("CCC"), _account(market=market), market, cfg=tiny).reason == "size_zero"


def test_sell_exits_the_free_holding_up_to_the_absolute_cap():
    market = _market()
    acct = _account(market=market)
    acct.apply(_fill("CCC", "buy", 370, 20 * EUR))
    acct.open_orders[5] = OpenOrder("CCC", "sell", 21 * EUR, 100, 0)
    decision = _evaluate(_rec("CCC", "sell"), acct, market)
    # bid 19.99 - 1 tick (10 bps of 19.99 is under 2 ticks) = 19.98; free 270 shares,
    # 5,394.60 EUR: under the 10,000 cap
    assert (decision.side, decision.price, decision.qty, decision.reason) == (
        "sell", 20 * EUR - 200, 270, "position",
    )  # fmt: skip
    cfg = replace(CFG, max_order_value=2_000 * EUR)
    capped = _evaluate(_rec("CCC", "sell"), acct, market, cfg=cfg)
    assert (capped.qty, capped.reason) == (100, "absolute_cap")  # 100.1 shares -> 100


def test_crossing_is_basis_points_in_whole_ticks_and_at_least_one():
    assert crossing(100 * EUR, 100, 10) == 1_000
    assert crossing(2 * EUR, 100, 10) == 100  # 0.002 is under a tick: one tick
    assert crossing(120 * EUR, 500, 10) == 1_000  # 0.12 -> two whole ticks of 0.05


def test_evaluate_is_deterministic_and_does_not_touch_the_account():
    market = _market()
    acct = _account(market=market)
    before = (acct.cash, dict(acct.open_orders), dict(acct.positions))
    first = _evaluate(_rec(), acct, market)
    assert _evaluate(_rec(), acct, market) == first
    assert (acct.cash, dict(acct.open_orders), dict(acct.positions)) == before


# --- properties ---------------------------------------------------------------------------------


@st.composite
def _scenarios(draw):
    market = _market()
    acct = _account(draw(st.integers(0, 300_000)), market)
    for i, symbol in enumerate(sorted(SECURITIES)):
        sec = SECURITIES[symbol]
        lots = draw(st.integers(0, 50))
        if lots:
            price = draw(st.integers(sec.reference_price // 2 // sec.tick,
                                     sec.reference_price * 2 // sec.tick)) * sec.tick  # fmt: skip
            acct.apply(_fill(symbol, "buy", lots * sec.lot, price, i))
            acct.cash = max(acct.cash, 0)
    for j in range(draw(st.integers(0, 3))):
        symbol = draw(st.sampled_from(sorted(SECURITIES)))
        sec = SECURITIES[symbol]
        if draw(st.booleans()):
            acct.open_orders[100 + j] = OpenOrder(symbol, "buy", sec.reference_price, sec.lot, 0)
        elif acct.free_qty(symbol) >= sec.lot:
            acct.open_orders[100 + j] = OpenOrder(symbol, "sell", sec.reference_price, sec.lot, 0)
    acct.start_value = acct.net_worth(market.marks())
    rec = _rec(
        draw(st.sampled_from(sorted(SECURITIES))),
        draw(st.sampled_from(["buy", "sell"])),
        draw(st.floats(0.0, 1.0)),
    )
    cfg = replace(CFG, max_order_value=draw(st.integers(0, 20_000)) * EUR,
                  sector_cap=draw(st.floats(0.0, 1.0)))  # fmt: skip
    tier = draw(st.sampled_from(sorted(DEFAULT_TIERS)))
    return rec, acct, market, tier, cfg


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_scenarios())
def test_sizes_respect_lots_caps_cash_and_holdings(scenario):
    rec, acct, market, tier, cfg = scenario
    decision = _evaluate(rec, acct, market, tier=tier, cfg=cfg)
    if not decision.acts:
        assert decision.qty == 0 and decision.side is None
        return
    sec = SECURITIES[rec.symbol]
    assert decision.qty > 0 and decision.qty % sec.lot == 0
    assert decision.price is not None and decision.price % sec.tick == 0
    notional = decision.qty * decision.price
    assert notional <= cfg.max_order_value
    if decision.side == "buy":
        worth = acct.net_worth(market.marks())
        assert decision.price > market.ask[rec.symbol]  # marketable
        assert notional <= acct.free_cash()
        assert notional <= worth * DEFAULT_TIERS[tier].base_fraction * rec.confidence
        exposure = sector_exposure(acct, market, SECURITIES, sec.sector)
        assert exposure + notional <= worth * cfg.sector_cap
    else:
        assert decision.price < market.bid[rec.symbol]
        assert decision.qty <= acct.free_qty(rec.symbol)


# --- who follows: members.csv -------------------------------------------------------------------


def test_strategy_and_risk_tier_columns_are_optional_and_validated(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("member_id,name,kind,capital,currency\nU1,One,clearing,1000,EUR\n")
    (member,) = load_members(old)
    assert (member.strategy, member.risk_tier) == ("rules", "moderate")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "member_id,name,kind,capital,currency,strategy,risk_tier\n"
        "U1,One,clearing,1000,EUR,advice,reckless\n"
    )
    with pytest.raises(RefDataError, match=r"bad.csv row 2 risk_tier: 'reckless'"):
        load_members(bad)


def test_three_shipped_members_follow_recommendations_one_per_tier():
    followers = {m.member_id: m.risk_tier for m in load_members() if m.strategy == "advice"}
    assert followers == {"USR08": "conservative", "USR09": "moderate", "USR10": "aggressive"}
    members = Members(load_members(), list(SECURITIES.values()), seed=1)
    assert members.tiers == followers
