"""A gateway's side of one trading day's log: it writes requests and follows the answers.

The gateways (the HTTP API today) are writers of ``orders`` and ``control``
beside the simulator and the members. A request is written stamped with the
exchange clock, and the caller waits for the matcher's first report on it,
which a follower thread reads from ``executions`` (every partition) and feeds
to :class:`~streaming.gateways.order_entry.OrderEntry`. The follower also
reads ``control``, so the gateway knows each symbol's session state. The log
stays the truth: nothing here decides whether an order trades.

Requests reach the log through one writer thread that takes whatever has
queued up as one batch (one transaction on SQLite or Kafka): with many orders
in flight, per-order commits and the write lock they fight the matcher for
were what limited order entry. A request is in the journal (flushed) before
the caller hears it was accepted; on restart, journaled requests the log does
not have are written then, in journal order, so an accepted request is never
lost to a crash between the journal and the log.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from streaming.events import (
    GATEWAY_ID_BASE,
    AmendOrder,
    Bar,
    BookTop,
    CancelOrder,
    ControlAction,
    ExecutionReport,
    NewOrder,
    OrderRequest,
    OrderType,
    SessionControl,
    Side,
    TimeInForce,
    Trade,
    encode,
)
from streaming.gateways.order_entry import ClientOrder, OrderEntry, Update, check_funds
from streaming.gateways.streams import StreamHub
from streaming.portfolio import Account, MarketView, OpenOrder, Position
from streaming.refdata import Security
from streaming.session import SessionError, transition
from streaming.topics import BAR_TOPICS
from streaming.transport.base import EventLog, Output, Tail, broadcast

log = logging.getLogger("marketlake.gateway.venue")
_REPORT = msgspec.json.Decoder(ExecutionReport)
_CONTROL = msgspec.json.Decoder(SessionControl)
_TOP = msgspec.json.Decoder(BookTop)
_TRADE = msgspec.json.Decoder(Trade)
_BAR = msgspec.json.Decoder(Bar)
KEEP_TRADES = 1_000  # per symbol: the recent tape
KEEP_BARS = 500  # per symbol and interval (a whole day of 1-minute bars)
FOLLOWED = ("control", "executions", "trades", "bbo", *BAR_TOPICS)


@dataclass(frozen=True)
class Opening:
    """A member's state at the open: the previous close as clearing settled it."""

    cash: int
    holdings: dict[str, Position] = field(default_factory=dict)


class _JournalLine(msgspec.Struct, array_like=True):
    """One request as the gateway sent it, with what only the gateway knows of it."""

    request: NewOrder | CancelOrder | AmendOrder
    cl_ord_id: str
    orig: str | None
    origin: str
    commit: int  # the price a new order reserves at (its limit, or the far touch)


_JOURNAL = msgspec.json.Decoder(_JournalLine)
_REQUEST = msgspec.json.Decoder(NewOrder | CancelOrder | AmendOrder)


class NoAnswer(TimeoutError):
    """The matcher did not answer in time (is the exchange running this day?)."""


@dataclass
class MarketState:
    """Each symbol's session state as the control topic says (``*``: the market-wide one)."""

    status: dict[str, str] = field(default_factory=lambda: {"*": "closed"})
    actions: int = 0

    def apply(self, ctl: SessionControl, symbols: list[str]) -> None:
        """Follow one control event by the matcher's own rule (``session.transition``)."""
        self.actions += 1
        if ctl.action in ("kill", "reference"):
            return
        current = {"*": self.status["*"]} | {
            s: self.status.get(s, self.status["*"]) for s in symbols
        }
        with contextlib.suppress(SessionError, KeyError):  # refused by the matcher too: unchanged
            self.status.update(transition(current, ctl.action, ctl.symbol))


class Venue:
    """One day's log for a gateway: write requests, wait for their answers, follow the day."""

    def __init__(
        self,
        day: str,
        log: EventLog,
        clock: Callable[[], int],
        securities: Sequence[Security],
        capital: dict[str, int] | None = None,
        entry: OrderEntry | None = None,
        poll_s: float = 0.002,
        reader: EventLog | None = None,
        opening: dict[str, Opening] | None = None,
        allow_short: bool = False,
        journal: Path | None = None,
    ) -> None:
        self.day = day
        self.log = log
        # the follower reads on a connection of its own: a SQLite connection cannot write
        # while one of its cursors is reading, and a Kafka reader should not wait on writes
        self.reader = reader or log
        self.clock = clock
        self.securities = {s.symbol: s for s in securities}
        self.symbols = list(self.securities)
        self.entry = entry or OrderEntry()
        self.market = MarketState()
        self.view = MarketView(securities)
        self.books: dict[str, BookTop] = {}
        self.tape: dict[str, deque[Trade]] = {}
        self.bars: dict[tuple[str, str], deque[Bar]] = {}
        self._capital = capital or {}
        self.accounts: dict[str, Account] = {}  # per member: the day's fills, cash and P&L
        # per member: its opening state and the gateway's own orders on it (the pre-trade
        # check's view; the simulated members keep to what they bought themselves, so the
        # two together never sell what clearing does not hold)
        self._opening = opening or {}
        self._risk: dict[str, Account] = {}
        self.allow_short = allow_short
        self._poll = poll_s
        self._lock = threading.RLock()
        self._listeners: list[Callable[[Update], None]] = []
        self._market_listeners: list[Callable[[BookTop | Trade], None]] = []
        # the answers callers wait for, one future each (a notify of every waiter per report
        # woke them all to find it was not theirs)
        self._awaiting: dict[tuple[str, str], Future[Update]] = {}
        self.stream = StreamHub()  # the day's numbered events for the gateways' subscribers
        self._positions: dict[tuple[str, int], int] = {}  # the follower's, per topic/partition
        self._journal = None
        self.recovered_updates: list[Update] = []  # what the reports meant, for the gateways
        if journal is not None:  # a gateway restarted during the day picks up where it was
            journal.parent.mkdir(parents=True, exist_ok=True)
            self._recover(journal)
            self._journal = journal.open("ab")
        self._queue: list[Output] = []  # requests for the log, in the order they came
        self._queued = threading.Condition()
        self._writing = 0  # outputs taken by the writer and not yet committed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"venue-{day}", daemon=True)
        self._thread.start()
        self._writer = threading.Thread(target=self._write_batches, name=f"venue-{day}-writer",
                                        daemon=True)  # fmt: skip
        self._writer.start()

    # -- requests ------------------------------------------------------------------------------
    def submit(
        self,
        member: str,
        cl_ord_id: str,
        symbol: str,
        side: Side,
        qty: int,
        price: int | None,
        order_type: OrderType,
        tif: TimeInForce,
        wait: bool = True,
        origin: str = "api",
    ) -> Future[Update] | None:
        """Enter a new order: journaled and queued for the log when this returns, with a
        future of the matcher's first answer (ack or reject; ``result`` waits for it).

        ``wait=False``: no future; the answer reaches the listeners only (the FIX
        gateway's way: its reports are asynchronous anyway).
        """
        with self._lock:
            risk = self._risk_account(member)
            commit = self._price_for(symbol, side, price)
            if symbol in self.securities:  # an unknown symbol is the matcher's to refuse
                check_funds(risk, symbol, side, qty, commit, allow_short=self.allow_short)
            request = self.entry.new(
                member, cl_ord_id, symbol, side, qty, price, order_type, tif, self.clock(), origin
            )
            risk.open_orders[request.order_id] = OpenOrder(symbol, side, commit, qty, request.ts)
            return self._write(request, member, cl_ord_id, wait, origin=origin, commit=commit)

    def cancel(
        self, member: str, cl_ord_id: str, orig: str, wait: bool = True
    ) -> Future[Update] | None:
        with self._lock:
            request = self.entry.cancel(member, cl_ord_id, orig, self.clock())
            return self._write(request, member, cl_ord_id, wait, orig)

    def amend(
        self,
        member: str,
        cl_ord_id: str,
        orig: str,
        qty: int,
        price: int | None,
        wait: bool = True,
    ) -> Future[Update] | None:
        with self._lock:
            order = self.entry.order(member, orig)
            risk = self._risk_account(member)
            held = risk.open_orders.get(order.order_id)
            if held is not None and order.open:
                leaves = qty - order.cum_qty
                new_price = self._price_for(order.symbol, order.side,
                                            price if price is not None else order.price)  # fmt: skip
                released = held.leaves if order.side == "sell" else held.leaves * held.price
                check_funds(risk, order.symbol, order.side, leaves, new_price, released,
                            self.allow_short)  # fmt: skip
            request = self.entry.amend(member, cl_ord_id, orig, qty, price, self.clock())
            return self._write(request, member, cl_ord_id, wait, orig)

    def control(
        self,
        action: ControlAction,
        actor: str,
        reason: str,
        symbol: str | None = None,
        member: str | None = None,
        reference_price: int | None = None,
        band_pct: float | None = None,
    ) -> SessionControl:
        """Write an operator's control event to every partition (each shard needs it)."""
        ctl = SessionControl(action, self.clock(), symbol, self.day, actor=actor, reason=reason,
                             member=member, reference_price=reference_price,
                             band_pct=band_pct)  # fmt: skip
        self._enqueue(broadcast("control", encode(ctl), ctl.ts, self.log.partitions("control")))
        self.flush()  # an operator told it is done can read it on the log
        return ctl

    # -- views ---------------------------------------------------------------------------------
    def orders(self, member: str, open_only: bool = False) -> list[ClientOrder]:
        with self._lock:
            return self.entry.orders(member, open_only)

    def order(self, member: str, cl_ord_id: str) -> ClientOrder:
        with self._lock:
            return self.entry.order(member, cl_ord_id)

    def account(self, member: str) -> Account:
        """The member's day so far: its opening state (the previous close) and its fills."""
        with self._lock:
            return self._account(member)

    def marks(self) -> dict[str, int]:
        with self._lock:
            return dict(self.view.marks())

    def top(self, symbol: str) -> BookTop | None:
        with self._lock:
            return self.books.get(symbol)

    def recent_trades(self, symbol: str, limit: int) -> list[Trade]:
        """The latest ``limit`` trades (copied under the lock: the follower appends meanwhile)."""
        with self._lock:
            return list(self.tape.get(symbol, ()))[-limit:]

    def recent_bars(self, symbol: str, interval: str, limit: int) -> list[Bar]:
        with self._lock:
            return list(self.bars.get((symbol, interval), ()))[-limit:]

    def listen(self, callback: Callable[[Update], None]) -> None:
        """Call ``callback`` (from the follower thread) with every update of our orders."""
        self._listeners.append(callback)

    def listen_market(self, callback: Callable[[BookTop | Trade], None]) -> None:
        """Call ``callback`` (from the follower thread) with every book top and trade."""
        self._market_listeners.append(callback)

    def unlisten(self, *callbacks: Callable[..., None]) -> None:
        """Stop calling ``callbacks`` (a gateway that stops)."""
        self._listeners = [c for c in self._listeners if c not in callbacks]
        self._market_listeners = [c for c in self._market_listeners if c not in callbacks]

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every request queued so far is on the log."""
        deadline = time.monotonic() + timeout
        with self._queued:
            while self._queue or self._writing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queued.wait(left)
        return True

    def close(self, flush_timeout: float = 30.0) -> None:
        if not self.flush(flush_timeout):
            log.error("%s: requests still queued for the log at close (they are journaled)",
                      self.day)  # fmt: skip
        self._stop.set()
        with self._queued:
            self._queued.notify_all()
        self._writer.join(5)
        self._thread.join(5)
        self.stream.close()
        if self._journal is not None:
            self._journal.close()
        self.log.close()
        if self.reader is not self.log:
            self.reader.close()

    # -- internals -----------------------------------------------------------------------------
    def _write(
        self,
        request: OrderRequest,
        member: str,
        cl_ord_id: str,
        wait: bool,
        orig: str | None = None,
        origin: str = "api",
        commit: int = 0,
    ) -> Future[Update] | None:
        answer: Future[Update] | None = None
        if wait:  # only awaited answers are kept for the caller; the listeners hear them all
            answer = self._awaiting[(member, cl_ord_id)] = Future()
        if self._journal is not None:  # first the client's ids, then the request on the log
            line = _JournalLine(request, cl_ord_id, orig, origin, commit)
            self._journal.write(msgspec.json.encode(line) + b"\n")
            self._journal.flush()
        self._enqueue([Output("orders", request.symbol, encode(request), request.ts)])
        return answer

    def _enqueue(self, outputs: list[Output]) -> None:
        with self._queued:
            self._queue.extend(outputs)
            self._queued.notify_all()

    def _write_batches(self) -> None:
        """The one writer of this venue's requests: what queued up goes out as one batch."""
        while True:
            with self._queued:
                while not self._queue and not self._stop.is_set():
                    self._queued.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
                self._writing = len(batch)
            delay = 0.05
            while True:
                try:
                    self.log.produce(batch)
                    break
                except Exception:  # a full disk, a broker away: the requests are journaled
                    log.exception("%s: %d requests not written yet; retrying", self.day,
                                  len(batch))  # fmt: skip
                    if self._stop.wait(delay):
                        return
                    delay = min(delay * 2, 2.0)
            with self._queued:
                self._writing = 0
                self._queued.notify_all()

    def _recover(self, journal: Path) -> None:
        """Rebuild the client ids, orders and accounts from the journal and the day's log.

        The journal holds each request with its client ids, written before the
        caller heard of its request, so a journaled request the log lacks (the
        gateway died between the two) is written now, in journal order: its
        sender may already have been told it was accepted. The reports are read
        once here; the follower goes on after them.
        """
        lines: list[_JournalLine] = []
        if journal.exists():
            for raw in journal.read_bytes().splitlines():
                try:
                    lines.append(_JOURNAL.decode(raw))
                except msgspec.DecodeError:  # a line cut by the crash: never reached the log
                    continue
        on_log: set[tuple[str, int, int]] = set()
        max_id = 0
        for part in range(self.reader.partitions("orders")) if lines else ():
            for rec in self.reader.read("orders", part):
                try:
                    req = _REQUEST.decode(rec.value)
                except msgspec.DecodeError:
                    continue
                if req.order_id >= GATEWAY_ID_BASE:
                    on_log.add((type(req).__name__, req.order_id, req.ts))
                    max_id = max(max_id, req.order_id)
        missing = [ln for ln in lines
                   if (type(ln.request).__name__, ln.request.order_id, ln.request.ts) not in on_log]  # fmt: skip
        if missing:
            self.log.produce([Output("orders", ln.request.symbol, encode(ln.request), ln.request.ts)
                              for ln in missing])  # fmt: skip
            max_id = max(max_id, *(ln.request.order_id for ln in missing))
        reports: list[ExecutionReport] = []
        for part, end in sorted(self.reader.end_offsets("executions").items()) if lines else ():
            for rec in self.reader.read("executions", part, 0, end):
                with contextlib.suppress(msgspec.DecodeError):
                    reports.append(_REPORT.decode(rec.value))
            self._positions[("executions", part)] = end
        origins = {
            ln.request.order_id: ln.origin for ln in lines if isinstance(ln.request, NewOrder)
        }
        self.recovered_updates = self.entry.replay(
            [(ln.request, ln.cl_ord_id, ln.orig) for ln in lines],
            [r for r in reports if r.order_id >= GATEWAY_ID_BASE], origins,
        )  # fmt: skip
        self.entry.next_id = max(self.entry.next_id, max_id)
        for ln in lines:
            req = ln.request
            if isinstance(req, NewOrder):
                self._risk_account(req.member).open_orders[req.order_id] = OpenOrder(
                    req.symbol, req.side, ln.commit, req.qty, req.ts
                )
        for report in reports:
            if report.exec_type == "trade" or report.member in self.accounts:
                self._account(report.member).apply(report)
            if report.order_id >= GATEWAY_ID_BASE:
                self._risk_account(report.member).apply(report)
        if lines:
            log.info("gateway recovered %d requests of %s (%d written to the log now)",
                     len(lines), self.day, len(missing))  # fmt: skip

    def result(self, answer: Future[Update], member: str, cl_ord_id: str,
               timeout: float = 10.0) -> Update:  # fmt: skip
        """Wait for ``answer`` (of ``member``'s ``cl_ord_id``); NoAnswer after ``timeout``."""
        try:
            return answer.result(timeout)
        except FutureTimeout:
            self.forget(member, cl_ord_id)
            raise NoAnswer(
                f"no answer to {cl_ord_id!r} in {timeout:.0f} s: the matcher is not "
                f"running on {self.day}'s log"
            ) from None

    def forget(self, member: str, cl_ord_id: str) -> None:
        """No one waits for that answer any more (the listeners still hear it)."""
        with self._lock:
            self._awaiting.pop((member, cl_ord_id), None)

    def _risk_account(self, member: str) -> Account:
        acct = self._risk.get(member)
        if acct is None:
            acct = self._risk[member] = self._opening_account(member)
        return acct

    def _price_for(self, symbol: str, side: Side, price: int | None) -> int:
        """The price an order commits at: its limit, or for a market order the far touch."""
        if price is not None:
            return price
        book = self.view.ask if side == "buy" else self.view.bid
        return book.get(symbol) or self.view.marks().get(symbol, 0)

    def _account(self, member: str) -> Account:
        acct = self.accounts.get(member)
        if acct is None:
            acct = self.accounts[member] = self._opening_account(member)
        return acct

    def _opening_account(self, member: str) -> Account:
        start = self._opening.get(member) or Opening(self._capital.get(member, 0))
        acct = Account(member, start.cash, start.cash)
        acct.positions = {s: Position(p.qty, p.cost) for s, p in start.holdings.items()}
        return acct

    def _follow(self) -> None:
        tail: Tail | None = None
        while not self._stop.is_set():
            if tail is None:
                try:
                    starts = {(t, p): self._positions.get((t, p), 0) for t in FOLLOWED
                              for p in ([0] if t == "control"  # partition 0 has it all
                                        else range(self.reader.partitions(t)))}  # fmt: skip
                except KeyError:  # the exchange has not created the day's topics yet
                    self._stop.wait(self._poll)
                    continue
                tail = self.reader.tail(starts)
            try:
                records = tail.poll(0.1)
            except Exception:  # a broker away: the tail goes on where it was
                log.exception("%s: following the day's log", self.day)
                self._stop.wait(0.5)
                continue
            for rec in records:
                self._positions[(rec.topic, rec.partition)] = rec.offset + 1
                try:
                    self._apply(rec.topic, rec.value)
                except Exception:  # one record never stops the gateway's view of the day
                    log.exception("record %s-%d@%d not applied", rec.topic, rec.partition,
                                  rec.offset)  # fmt: skip
        if tail is not None:
            tail.close()

    def _apply(self, topic: str, value: bytes) -> None:
        try:
            if topic != "executions":
                return self._market_data(topic, value)
            report = _REPORT.decode(value)
        except msgspec.DecodeError:
            return None  # not ours to judge: the matcher dead-letters what it cannot read
        with self._lock:
            if report.exec_type == "trade" or report.member in self.accounts:
                self._account(report.member).apply(report)
            if report.order_id >= GATEWAY_ID_BASE:
                self._risk_account(report.member).apply(report)
            update = self.entry.on_report(report)
            if update is None:
                return None
            answer = (self._awaiting.pop((update.order.member, update.cl_ord_id), None)
                      if report.request is not None else None)  # fmt: skip
        if answer is not None:
            with contextlib.suppress(InvalidStateError):  # its waiter gave up (cancelled it)
                answer.set_result(update)
        self.stream.publish("orders", update.order.symbol, update, member=update.order.member)
        for listener in self._listeners:
            listener(update)
        return None

    def _market_data(self, topic: str, value: bytes) -> None:
        event: BookTop | Trade | None = None
        with self._lock:
            if topic == "control":
                self.market.apply(_CONTROL.decode(value), self.symbols)
                status = dict(self.market.status)
            elif topic == "bbo":
                event = top = _TOP.decode(value)
                self.books[top.symbol] = top
                self.view.on_top(top)
            elif topic == "trades":
                event = trade = _TRADE.decode(value)
                self.tape.setdefault(trade.symbol, deque(maxlen=KEEP_TRADES)).append(trade)
                self.view.on_trade_price(trade.symbol, trade.price)
            else:
                bar = _BAR.decode(value)
                key = (bar.symbol, bar.interval)
                self.bars.setdefault(key, deque(maxlen=KEEP_BARS)).append(bar)
        if topic == "control":
            self.stream.publish("session", None, status)
        elif event is None:
            self.stream.publish(f"bars.{bar.interval}", bar.symbol, bar)
        else:
            self.stream.publish("bbo" if topic == "bbo" else "trades", event.symbol, event)
            for listener in self._market_listeners:
                listener(event)
