"""Client order entry: client ids to exchange ids and back, against the real matcher."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streaming.events import GATEWAY_ID_BASE, ExecutionReport
from streaming.gateways.order_entry import EntryRejected, OrderEntry, Update
from streaming.matcher import Matcher
from streaming.refdata import load_securities

pytestmark = pytest.mark.unit

SEC = {s.symbol: s for s in load_securities()}
AAPL = SEC["AAPL"]
P, T = AAPL.reference_price, AAPL.tick
MEMBERS = ("USR01", "USR02", "USR03")


class Venue:
    """The matcher and one gateway's order entry, as the gateway sees the pair."""

    def __init__(self) -> None:
        self.matcher = Matcher([AAPL, SEC["KO"]], MEMBERS, status="open")
        self.entry = OrderEntry()
        self.ts = 0
        self.updates: list[Update] = []
        self.reports: list[ExecutionReport] = []

    def send(self, request: Any) -> list[Update]:
        updates = []
        for event in self.matcher.submit(request):
            if isinstance(event, ExecutionReport):
                self.reports.append(event)
                update = self.entry.on_report(event)
                assert update is not None  # every report is about an order of ours
                updates.append(update)
        self.updates += updates
        return updates

    def new(self, member, cl, side, qty, price=None, kind="limit", tif="day", symbol="AAPL"):
        self.ts += 1
        return self.send(self.entry.new(member, cl, symbol, side, qty, price, kind, tif, self.ts))

    def cancel(self, member, cl, orig):
        self.ts += 1
        return self.send(self.entry.cancel(member, cl, orig, self.ts))

    def amend(self, member, cl, orig, qty, price=None):
        self.ts += 1
        return self.send(self.entry.amend(member, cl, orig, qty, price, self.ts))


def test_a_fill_a_replace_chain_and_a_cancel_by_the_first_id():
    v = Venue()
    (ack,) = v.new("USR01", "b-1", "buy", 10, P)
    assert (ack.cl_ord_id, ack.order.status, ack.order.order_id) == (
        "b-1",
        "new",
        GATEWAY_ID_BASE + 1,
    )
    (replaced,) = v.amend("USR01", "b-2", "b-1", 8, P + T)
    assert (replaced.cl_ord_id, replaced.orig_cl_ord_id, replaced.order.cl_ord_ids) == (
        "b-2", "b-1", ["b-1", "b-2"])  # fmt: skip
    assert (replaced.order.qty, replaced.order.price, replaced.order.leaves_qty) == (8, P + T, 8)
    sell = v.new("USR02", "s-1", "sell", 3, P + T)
    assert [u.order.member for u in sell] == ["USR02", "USR02", "USR01"]  # ack, fill, fill
    buy = v.entry.order("USR01", "b-2")
    assert (buy.status, buy.cum_qty, buy.leaves_qty, buy.avg_px) == (
        "partially_filled",
        3,
        5,
        P + T,
    )
    # the chain's first id still names the order (FIX allows any id of the chain)
    (canceled,) = v.cancel("USR01", "b-3", "b-1")
    assert (canceled.cl_ord_id, canceled.orig_cl_ord_id, canceled.order.status) == (
        "b-3", "b-1", "canceled")  # fmt: skip
    assert v.entry.order("USR01", "b-3") is buy  # the cancel's id names it too
    assert v.entry.orders("USR01", open_only=True) == []


def test_ids_are_per_member_once_a_day_and_nobody_finds_anothers_order():
    v = Venue()
    v.new("USR01", "x", "buy", 1, P)
    v.new("USR02", "x", "buy", 1, P)  # another member may use the same id
    for bad in (lambda: v.new("USR01", "x", "buy", 1, P),
                lambda: v.cancel("USR01", "x", "x")):  # fmt: skip
        with pytest.raises(EntryRejected) as info:
            bad()
        assert info.value.reason == "duplicate_cl_ord_id"
    with pytest.raises(EntryRejected) as info:
        v.cancel("USR03", "c", "x")  # USR03 has no order "x": it cannot see the others'
    assert info.value.reason == "unknown_order"
    for bad_id in ("", " padded", "a" * 65, "tab\there"):
        with pytest.raises(EntryRejected) as info:
            v.new("USR01", bad_id, "buy", 1, P)
        assert info.value.reason == "invalid_cl_ord_id"
    # a refused id is still used: an answer can never name two requests
    v.new("USR01", "filled", "sell", 1, P)  # trades with USR02's "x" at once
    with pytest.raises(EntryRejected) as info:
        v.cancel("USR01", "late", "filled")
    assert info.value.reason == "order_not_open"


def test_a_refused_replace_is_an_answer_to_the_replace_and_leaves_the_order():
    v = Venue()
    v.new("USR01", "a", "buy", 10, P)
    (refused,) = v.amend("USR01", "a2", "a", 10, P)  # no change: the matcher refuses it
    assert refused.refused is not None and refused.refused.kind == "amend"
    assert (refused.cl_ord_id, refused.orig_cl_ord_id, refused.report.reason) == (
        "a2", "a", "amend_no_change")  # fmt: skip
    order = v.entry.order("USR01", "a")
    assert (order.status, order.cl_ord_ids, order.qty) == ("new", ["a"], 10)
    with pytest.raises(EntryRejected):
        v.entry.order("USR01", "a2")  # a refused replace names nothing


def test_a_rejected_new_order_and_an_expiring_ioc():
    v = Venue()
    (rej,) = v.new("USR01", "r", "buy", 1, P + 1)  # off tick
    assert (rej.order.status, rej.order.reason, rej.order.leaves_qty) == (
        "rejected",
        "tick_size",
        0,
    )
    v.new("USR02", "s", "sell", 2, P)
    updates = v.new("USR01", "i", "buy", 5, None, "market", "ioc")
    order = updates[-1].order
    assert (order.status, order.cum_qty, order.leaves_qty, order.reason) == (
        "expired", 2, 0, "unfilled_remainder")  # fmt: skip


@st.composite
def flows(draw: st.DrawFn) -> list[tuple[str, ...]]:
    steps = []
    for i in range(draw(st.integers(1, 60))):
        member = draw(st.sampled_from(MEMBERS))
        kind = draw(st.sampled_from(("new", "new", "new", "cancel", "amend")))
        side = draw(st.sampled_from(("buy", "sell")))
        steps.append((kind, member, f"c{i}", draw(st.integers(0, i)), side,
                      draw(st.integers(1, 5)), draw(st.integers(-2, 2))))  # fmt: skip
    return steps


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows())
def test_every_client_order_agrees_with_the_matchers_reports(flow):
    v = Venue()
    issued: list[tuple[str, str]] = []
    for kind, member, cl, target, side, qty, offset in flow:
        try:
            if kind == "new" or not issued:
                v.new(member, cl, side, qty, P + offset * T)
                issued.append((member, cl))
            else:
                owner, orig = issued[target % len(issued)]
                if kind == "cancel":
                    v.cancel(owner, cl, orig)
                else:
                    v.amend(owner, cl, orig, qty, P + offset * T)
        except EntryRejected as exc:
            assert exc.reason == "order_not_open"  # the only refusal this flow can meet
    # every order's view equals what the matcher's reports say about its exchange id
    for member in MEMBERS:
        for order in v.entry.orders(member):
            mine = [
                r for r in v.reports if (r.symbol, r.order_id) == (order.symbol, order.order_id)
            ]
            assert all(r.member == member for r in mine)
            fills = [r for r in mine if r.exec_type == "trade"]
            assert order.cum_qty == sum(r.last_qty for r in fills)
            assert order.notional == sum(r.last_qty * r.last_price for r in fills)
            last = [r for r in mine if r.exec_type != "rejected" or r.request == "new"][-1]
            assert order.leaves_qty == (0 if not order.open else last.leaves_qty)
            assert order.open == (order.leaves_qty > 0 or order.status == "pending_new")
            assert len(set(order.cl_ord_ids)) == len(order.cl_ord_ids)
    # and nothing is left pending: the matcher answers every request at once
    assert all(not q for q in v.entry._pending.values())


def test_replay_rebuilds_the_same_view_and_continues_the_ids():
    v = Venue()
    sent: list[tuple[Any, str, str | None]] = []

    def record(request, cl, orig=None):
        sent.append((request, cl, orig))
        return v.send(request)

    record(v.entry.new("USR01", "a", "AAPL", "buy", 5, P, "limit", "day", 1), "a")
    record(v.entry.amend("USR01", "a2", "a", 4, None, 2), "a2", "a")
    record(v.entry.new("USR02", "b", "AAPL", "sell", 3, P, "limit", "day", 3), "b")
    record(v.entry.cancel("USR01", "a3", "a2", 4), "a3", "a2")
    again = OrderEntry()
    again.replay(sent, v.reports)
    for member in ("USR01", "USR02"):
        assert [vars(o) for o in again.orders(member)] == [vars(o) for o in v.entry.orders(member)]
    assert again.next_id == v.entry.next_id
    assert again.new("USR01", "n", "AAPL", "buy", 1, P, "limit", "day", 9).order_id == (
        v.entry.next_id + 1)  # fmt: skip


@pytest.mark.unit
def test_check_funds_counts_what_open_orders_already_commit() -> None:
    from streaming.gateways.order_entry import check_funds
    from streaming.portfolio import Account, OpenOrder, Position

    acct = Account("USR01", 1_000_000, 1_000_000, positions={"AAPL": Position(10, 100)})
    check_funds(acct, "AAPL", "sell", 10, 1)
    acct.open_orders[1] = OpenOrder("AAPL", "sell", 1, 7, 0)
    with pytest.raises(EntryRejected, match="3 are") as sold:
        check_funds(acct, "AAPL", "sell", 4, 1)
    assert sold.value.reason == "insufficient_position"
    check_funds(acct, "AAPL", "sell", 10, 1, released=7)  # replacing the order that holds 7
    check_funds(acct, "AAPL", "sell", 50, 1, allow_short=True)
    check_funds(acct, "AAPL", "buy", 100, 10_000)  # 100 x 1.00 = the whole cash
    acct.open_orders[2] = OpenOrder("AAPL", "buy", 10_000, 1, 0)
    with pytest.raises(EntryRejected) as bought:
        check_funds(acct, "AAPL", "buy", 100, 10_000)
    assert bought.value.reason == "insufficient_cash"
