"""The FIX 4.4 gateway: QuickFIX on both ends, a real venue and matcher between them.

The acceptor runs in process over the day's SQLite log, with the real matcher
consuming it in a thread (as the exchange runs it); each client is a QuickFIX
initiator with its own sequence store, as a member's program would be.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streaming.accounts import AccountStore
from streaming.gateways.fix_acceptor import FixAcceptor, acceptor_config
from streaming.gateways.fix_client import FixClient, all_values, new_order, parse
from streaming.gateways.gateway import Gateway
from streaming.gateways.venue import Opening, Venue
from streaming.login import SessionCodec
from streaming.portfolio import Position
from streaming.refdata import load_members, load_securities
from streaming.transport.sqlite import SqliteEventLog
from tests.support import free_port, open_day_with_matcher

pytestmark = pytest.mark.integration

PASSWORD = {"alice": "buys-AAPL-over-fix", "bob": "sells-AAPL-over-fix", "olga": "operates-it-all"}


@dataclass
class Exchange:
    tmp: Path
    port: int
    gateway: Gateway
    acceptor: FixAcceptor
    log: SqliteEventLog
    config: Path

    def client(self, member: str, name: str, password: str | None = None) -> FixClient:
        return FixClient(self.tmp, self.port, member, name, password or PASSWORD[name])

    def restart_acceptor(self) -> None:
        self.acceptor.stop()
        self.acceptor = FixAcceptor(self.gateway, self.config)
        self.acceptor.start()


@pytest.fixture
def exchange(tmp_path) -> Iterator[Exchange]:
    securities = load_securities()
    members = [m.member_id for m in load_members()]
    path = tmp_path / "day.sqlite"
    with open_day_with_matcher(path) as log:
        accounts = AccountStore(tmp_path / "accounts.sqlite")
        accounts.add("alice", "trader", PASSWORD["alice"], member="USR01")
        accounts.add("bob", "trader", PASSWORD["bob"], member="USR02")
        accounts.add("olga", "operator", PASSWORD["olga"])
        gateway = Gateway(accounts, SessionCodec(b"k" * 32, purpose="api"))
        clock = itertools.count(10)
        capital = {m.member_id: m.capital for m in load_members()}
        opening = {"USR02": Opening(capital["USR02"], {"AAPL": Position(1_000, 1_000 * 1_900_000)})}
        gateway.switch(Venue("2026-11-20", SqliteEventLog(path), lambda: next(clock), securities,
                             capital, reader=SqliteEventLog(path), opening=opening))  # fmt: skip
        port = free_port()
        config = acceptor_config(tmp_path / "fix" / "acceptor.cfg", tmp_path / "fix" / "store",
                                 port, "MLX", members, heartbeat_s=5)  # fmt: skip
        acceptor = FixAcceptor(gateway, config)
        acceptor.start()
        ex = Exchange(tmp_path, port, gateway, acceptor, log, config)
        yield ex
        ex.acceptor.stop()
        gateway.switch(None)


def _er(raw: str) -> dict[int, str]:
    msg = parse(raw)
    assert msg[35] == "8", raw
    return msg


def test_logon_needs_a_trader_of_that_member_with_its_password(exchange):
    wrong = exchange.client("USR01", "alice", "not-alices-password")
    wrong.start(wait=None)
    assert wrong.logged_out.wait(15) and not wrong.logged_on.is_set()
    wrong.stop()
    text = [m.get(58, "") for m in wrong.drain_admin() if m.get(35) == "5"]
    assert any("wrong username or password" in t for t in text), text
    not_hers = exchange.client("USR02", "alice")  # alice trades for USR01, not USR02
    not_hers.start(wait=None)
    assert not_hers.logged_out.wait(15) and not not_hers.logged_on.is_set()
    not_hers.stop()
    operator = exchange.client("USR01", "olga")  # an operator does not trade
    operator.start(wait=None)
    assert operator.logged_out.wait(15) and not operator.logged_on.is_set()
    operator.stop()
    alice = exchange.client("USR01", "alice").start()
    assert alice.logged_on.is_set()
    alice.stop()
    # the password is in no file the gateway wrote
    for f in (exchange.tmp / "fix").rglob("*"):
        if f.is_file():
            assert PASSWORD["alice"].encode() not in f.read_bytes(), f


def test_orders_trade_replace_cancel_and_refusals_each_get_their_fix_answer(exchange):
    alice = exchange.client("USR01", "alice").start()
    bob = exchange.client("USR02", "bob").start()
    try:
        # a resting sell from bob (who holds 1,000 AAPL from the previous close)
        bob.send("D", *new_order("b-1", "AAPL", "2", 300, "195.40"))
        ack = _er(bob.next())
        assert (ack[11], ack[150], ack[39], ack[151], ack[14]) == ("b-1", "0", "0", "300", "0")
        # alice buys 100 of it at market: a fill for each side with the right quantities
        alice.send("D", *new_order("a-1", "AAPL", "1", 100, None, tif="3"))
        a_new, a_fill = _er(alice.next()), _er(alice.next())
        assert (a_new[150], a_new[39]) == ("0", "0")
        assert (a_fill[150], a_fill[39], a_fill[32], a_fill[31]) == ("F", "2", "100", "195.4")
        assert (a_fill[14], a_fill[151], a_fill[6]) == ("100", "0", "195.4")
        b_fill = _er(bob.next())
        assert (b_fill[11], b_fill[150], b_fill[39], b_fill[14], b_fill[151]) == (
            "b-1",
            "F",
            "1",
            "100",
            "200",
        )
        # bob replaces: new total 250 (150 left) at 195.50; the chain answers to b-2
        bob.send("G", (11, "b-2"), (41, "b-1"), (55, "AAPL"), (54, "2"), (38, "250"),
                 (40, "2"), (44, "195.50"), (60, "20261120-15:00:00.000"))  # fmt: skip
        rep = _er(bob.next())
        assert (rep[11], rep[41], rep[150], rep[39], rep[151], rep[44]) == (
            "b-2",
            "b-1",
            "5",
            "1",
            "150",
            "195.5",
        )
        # cancel by the first id of the chain
        bob.send("F", (11, "b-3"), (41, "b-1"), (55, "AAPL"), (54, "2"),
                 (60, "20261120-15:00:00.000"))  # fmt: skip
        gone = _er(bob.next())
        assert (gone[11], gone[150], gone[39], gone[151], gone[14]) == ("b-3", "4", "4", "0", "100")
        # a second cancel of the same order: OrderCancelReject, too late
        bob.send("F", (11, "b-4"), (41, "b-2"), (55, "AAPL"), (54, "2"),
                 (60, "20261120-15:00:00.000"))  # fmt: skip
        late = parse(bob.next())
        assert (late[35], late[11], late[434], late[102], late[39]) == ("9", "b-4", "1", "0", "4")
        # alice cannot touch bob's order: to her it does not exist
        alice.send("F", (11, "a-2"), (41, "b-1"), (55, "AAPL"), (54, "2"),
                   (60, "20261120-15:00:00.000"))  # fmt: skip
        unknown = parse(alice.next())
        assert (unknown[35], unknown[102]) == ("9", "1")
        # a duplicate ClOrdID is rejected, the first order untouched
        alice.send("D", *new_order("a-1", "AAPL", "1", 5, "190.00"))
        dup = _er(alice.next())
        assert (dup[150], dup[39], dup[103]) == ("8", "8", "6") and "duplicate" in dup[58]
        # the matcher's refusals carry its reason: off tick, unknown symbol
        alice.send("D", *new_order("a-3", "AAPL", "1", 5, "190.001"))
        tick = _er(alice.next())
        assert tick[150] == "8" and "tick" in tick[58], tick
        alice.send("D", *new_order("a-4", "NOPE", "1", 5, "1.00"))
        nope = _er(alice.next())
        assert (nope[150], nope[103]) == ("8", "1"), nope
        # alice holds no MSFT and may not sell it; bob's cash does not stretch to a million shares
        alice.send("D", *new_order("a-5", "MSFT", "2", 5, "400.00"))
        short = _er(alice.next())
        assert (short[150], short[103]) == ("8", "3") and "insufficient_position" in short[58]
        # fractional shares are no quantity
        alice.send("D", *new_order("a-6", "AAPL", "1", 1, "190.00")[:3], (38, "1.5"), (40, "2"),
                   (44, "190.00"), (60, "20261120-15:00:00.000"))  # fmt: skip
        frac = _er(alice.next())
        assert frac[150] == "8" and "invalid_qty" in frac[58]
        _every_report_matches_the_matchers(exchange.log, alice.history + bob.history)
    finally:
        alice.stop()
        bob.stop()
    # only real orders reached the log: b-1 (+ its replace and cancel x2), a-1, a-3, a-4
    kinds = [type(o).__name__ for o in _orders(exchange.log)]
    assert kinds.count("NewOrder") == 4 and kinds.count("AmendOrder") == 1


def _every_report_matches_the_matchers(log: SqliteEventLog, received: list[str]) -> None:
    """Each ExecutionReport sent for a matcher report says what that report says."""
    from streaming.events import ExecutionReport, decode
    from streaming.gateways.fix_messages import EXEC_TYPES
    from streaming.gateways.wire import format_price

    time.sleep(0.3)
    reports = {}
    for p in sorted(log.end_offsets("executions")):
        for r in log.read("executions", p):
            er = decode(r.value)
            assert isinstance(er, ExecutionReport)
            reports[(er.symbol, er.exec_id, er.order_id)] = er
    checked = 0
    for raw in received:
        msg = parse(raw)
        if msg[35] != "8" or msg[37] == "NONE":
            continue  # a refusal by the gateway itself: no matcher report
        _, symbol, exec_id, order_id, _ = msg[17].split(":")
        er = reports[(symbol, int(exec_id), int(order_id))]
        assert (msg[55], msg[37], msg[150]) == (er.symbol, str(er.order_id),
                                                 EXEC_TYPES[er.exec_type]), (msg, er)  # fmt: skip
        assert (int(msg[14]), int(msg[151])) == (er.cum_qty, er.leaves_qty), (msg, er)
        if er.exec_type == "trade":
            assert (int(msg[32]), msg[31]) == (er.last_qty, format_price(er.last_price or 0))
        if er.exec_type == "rejected":
            assert er.reason and er.reason in msg[58], (msg, er)
        checked += 1
    assert checked >= 8, checked


def _orders(log: SqliteEventLog) -> list[object]:
    from streaming.events import decode

    return [decode(r.value) for p in sorted(log.end_offsets("orders"))
            for r in log.read("orders", p)]  # fmt: skip


def test_market_data_snapshot_then_incremental_levels_and_trades(exchange):
    alice = exchange.client("USR01", "alice").start()
    bob = exchange.client("USR02", "bob").start()
    try:
        bob.send("D", *new_order("b-1", "AAPL", "2", 300, "195.40"))
        _er(bob.next())
        alice.send("D", *new_order("a-1", "AAPL", "1", 50, "195.00"))
        _er(alice.next())
        time.sleep(0.3)  # the venue has read the book top
        alice.send("V", (262, "md-1"), (263, "1"), (264, "5"),
                   groups=[(267, 269, [[(269, "0")], [(269, "1")], [(269, "2")]]),
                           (146, 55, [[(55, "AAPL")]])])  # fmt: skip
        snap = alice.next(where=lambda m: m[35] == "W")
        assert parse(snap)[262] == "md-1" and parse(snap)[55] == "AAPL"
        entries = list(zip(all_values(snap, 269), all_values(snap, 270), all_values(snap, 271),
                           strict=True))  # fmt: skip
        assert ("0", "195", "50") in entries and ("1", "195.4", "300") in entries, entries
        # a trade: the tape entry and the book's change come as incremental refreshes
        alice.send("D", *new_order("a-2", "AAPL", "1", 100, "195.40"))
        seen: list[tuple[str, str, str, str]] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (
            ("0", "2", "195.4", "100") in seen and ("1", "1", "195.4", "200") in seen
        ):
            raw = alice.next(where=lambda m: m[35] == "X")
            seen += list(zip(all_values(raw, 279), all_values(raw, 269), all_values(raw, 270),
                             all_values(raw, 271), strict=True))  # fmt: skip
        assert ("0", "2", "195.4", "100") in seen, seen  # the trade
        assert ("1", "1", "195.4", "200") in seen, seen  # the offer, 100 fewer
        alice.send("V", (262, "md-2"), (263, "0"), (264, "0"),
                   groups=[(267, 269, [[(269, "0")]]), (146, 55, [[(55, "ZZZZ")]])])  # fmt: skip
        rej = parse(alice.next(where=lambda m: m[35] == "Y"))
        assert (rej[262], rej[281]) == ("md-2", "0")
    finally:
        alice.stop()
        bob.stop()


def test_a_reconnecting_member_gets_what_it_missed_and_sequences_survive_a_restart(exchange):
    alice = exchange.client("USR01", "alice").start()
    alice.send("D", *new_order("a-1", "AAPL", "1", 100, "195.00"))
    assert _er(alice.next())[150] == "0"
    alice.stop()  # alice's program goes away with an order resting
    bob = exchange.client("USR02", "bob").start()
    bob.send("D", *new_order("b-1", "AAPL", "2", 100, "195.00"))
    assert _er(bob.next())[150] == "0"
    assert _er(bob.next())[150] == "F"
    bob.stop()
    exchange.restart_acceptor()  # the gateway restarts too: its sequence store is on disk
    back = exchange.client("USR01", "alice").start()  # same store: it asks for the gap
    try:
        fill = _er(back.next(where=lambda m: m.get(35) == "8" and m.get(150) == "F"))
        assert (fill[11], fill[39], fill[14]) == ("a-1", "2", "100")
        # sent while alice was away, stored under its number, resent when she asked for the gap
        assert fill.get(43) == "Y", fill
        assert int(fill[34]) > 2  # nothing was reset: the numbers ran on across the restart
        back.send("D", *new_order("a-2", "AAPL", "1", 1, "190.00"))
        assert _er(back.next())[11] == "a-2"  # and the session goes on
    finally:
        back.stop()
