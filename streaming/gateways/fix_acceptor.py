"""The FIX 4.4 order entry gateway: a QuickFIX acceptor in front of the day's venue.

QuickFIX owns the session layer: logon, heartbeats, test requests, resend
requests and gap fills, sequence numbers kept in a file store across restarts,
checksum and body length, and validation against the FIX 4.4 data dictionary
(a malformed message gets a session-level Reject(3), garbled bytes are
dropped, per the FIX spec). This module is the application on top:

- one session per clearing member (the member id is the client's
  SenderCompID), logging on with Username(553)/Password(554) of a trader
  account of that member (argon2, failed logons slowed per name, logged
  without the password; QuickFIX's own message log is off so 554 is never
  written anywhere);
- NewOrderSingle, OrderCancelRequest and OrderCancelReplaceRequest go to the
  venue without waiting; every report of an order entered here comes back
  as an ExecutionReport or OrderCancelReject (``fix_messages`` maps them);
- MarketDataRequest gives a snapshot and, subscribed, incremental refreshes
  of the book levels and trades.

A Python exception that escaped a QuickFIX callback would end the process, so
every callback catches what is not a FIX answer, logs it and refuses the one
message instead.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import quickfix as fix

from streaming.events import BookTop, Trade
from streaming.gateways import fix_messages as fm
from streaming.gateways.gateway import Gateway
from streaming.gateways.order_entry import EntryRejected, Update
from streaming.gateways.venue import Venue

log = logging.getLogger("marketlake.gateway.fix")
MAX_SUBSCRIPTIONS = 50  # per session
VENUE_WAIT_S = 30.0
SOH = "\x01"


def data_dictionary() -> Path:
    """QuickFIX's FIX 4.4 dictionary, installed with the package."""
    for base in (Path(sys.prefix), Path(fix.__file__).parent):
        for candidate in (base / "share" / "quickfix" / "FIX44.xml", base / "spec" / "FIX44.xml"):
            if candidate.exists():
                return candidate
    raise FileNotFoundError("FIX44.xml not found beside the quickfix package")


def acceptor_config(
    path: Path, store: Path, port: int, comp_id: str, members: Sequence[str], heartbeat_s: int = 30
) -> Path:
    """Write the acceptor's settings: 127.0.0.1, one session per member, persistent sequences."""
    store.mkdir(parents=True, exist_ok=True)
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        "BeginString=FIX.4.4",
        f"SenderCompID={comp_id}",
        "SocketAcceptHost=127.0.0.1",
        f"SocketAcceptPort={port}",
        "SocketReuseAddress=Y",
        f"FileStorePath={store}",
        "NonStopSession=Y",  # sequence numbers run on across days and restarts
        "ResetOnLogon=N",
        "ResetOnLogout=N",
        "ResetOnDisconnect=N",
        "PersistMessages=Y",  # what a reconnecting member missed is resent
        f"HeartBtInt={heartbeat_s}",
        "UseDataDictionary=Y",
        f"DataDictionary={data_dictionary()}",
        "ValidateUserDefinedFields=N",
        "ValidateFieldsOutOfOrder=N",
        "CheckLatency=N",
    ]
    for member in members:
        lines += ["", "[SESSION]", f"TargetCompID={member}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _fields(msg: fix.Message) -> tuple[dict[int, str], list[tuple[int, str]]]:
    """A message's fields: the last value per tag, and all of them in order (for groups)."""
    pairs: list[tuple[int, str]] = []
    for part in msg.toString().split(SOH):
        tag, _, value = part.partition("=")
        if tag.isdigit():
            pairs.append((int(tag), value))
    return dict(pairs), pairs


def _message(out: fm.Outgoing) -> fix.Message:
    msg = fix.Message()
    msg.getHeader().setField(fix.MsgType(out.msg_type))
    for tag, value in out.fields:
        msg.setField(fix.StringField(tag, value))
    for count_tag, delim, entries in out.groups:
        if not entries:  # an empty group still says so (NoMDEntries=0 is required in a W)
            msg.setField(fix.StringField(count_tag, "0"))
        for entry in entries:
            group = fix.Group(count_tag, delim)
            for tag, value in entry:
                group.setField(fix.StringField(tag, value))
            msg.addGroup(group)
    return msg


@dataclass
class _Subscription:
    request: fm.MarketDataRequest
    session: fix.SessionID
    books: dict[str, fm.Levels]


class FixGateway(fix.Application):  # type: ignore[misc]
    """The application: logons checked against the accounts, orders to the day's venue."""

    def __init__(
        self, gateway: Gateway, clock: Callable[[], int] | None = None, state: Path | None = None
    ) -> None:
        super().__init__()
        self.gateway = gateway
        self._clock = clock
        self._state = state  # where the ExecIDs sent each day are kept (a restart sends the rest)
        self._sent: set[str] = set()
        self._sent_file: Any = None
        self._day = ""
        self._venue_followed: Venue | None = None
        self._stopped = False
        self._in_flight = 0  # sends under way: QuickFIX's sessions must outlive them
        self._lock = threading.Lock()
        # member -> its session, logged on or not: what is sent while a member is away is
        # stored under its sequence number and resent when it asks for the gap
        self._sessions: dict[str, fix.SessionID] = {}
        self._subs: dict[tuple[str, str], _Subscription] = {}  # (member, MDReqID)
        self._exec_ids = 0
        gateway.on_switch(self.follow)

    # -- the day ---------------------------------------------------------------------------------
    def follow(self, venue: Venue | None) -> None:
        """Serve ``venue``'s day (its sessions must exist: the acceptor has started)."""
        if self._stopped:  # this acceptor was stopped: another one serves the days now
            return
        with self._lock:
            for sub in self._subs.values():
                sub.books.clear()
            if self._sent_file is not None:
                self._sent_file.close()
                self._sent_file = None
            self._sent = set()
            self._day = venue.day if venue is not None else ""
            if venue is not None and self._state is not None:
                path = self._state / f"sent-{venue.day}.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.exists():
                    self._sent = set(path.read_text().split())
                self._sent_file = path.open("a")
        if self._venue_followed is not None:
            self._venue_followed.unlisten(self._on_update, self._on_market)
        self._venue_followed = venue
        if venue is not None:
            venue.listen(self._on_update)
            venue.listen_market(self._on_market)
            for update in venue.recovered_updates:  # what a crashed gateway may not have sent
                self._on_update(update)

    def _now(self) -> int:
        venue = self.gateway.venue
        if self._clock is not None:
            return self._clock()
        return venue.clock() if venue is not None else 0

    def _exec_id(self) -> str:
        with self._lock:
            self._exec_ids += 1
            return f"G{self._now()}-{self._exec_ids}"

    # -- QuickFIX callbacks ----------------------------------------------------------------------
    def onCreate(self, session: fix.SessionID) -> None:
        with self._lock:
            self._sessions[session.getTargetCompID().getValue()] = session

    def onLogon(self, session: fix.SessionID) -> None:
        log.info("fix logon: %s", session.getTargetCompID().getValue())

    def onLogout(self, session: fix.SessionID) -> None:
        member = session.getTargetCompID().getValue()
        with self._lock:
            for key in [k for k in self._subs if k[0] == member]:
                del self._subs[key]
        log.info("fix logout: %s", member)

    def toAdmin(self, message: fix.Message, session: fix.SessionID) -> None:
        try:
            kind = message.getHeader().getField(35)
            if kind in ("3", "5"):  # a session reject or a logout we send: say why in our log
                text = message.getField(58) if message.isSetField(58) else ""
                log.warning("fix %s to %s: %s", "reject" if kind == "3" else "logout",
                            session.getTargetCompID().getValue(), text)  # fmt: skip
        except Exception:  # never let a log line end the session thread
            log.exception("fix toAdmin")

    def fromAdmin(self, message: fix.Message, session: fix.SessionID) -> None:
        if message.getHeader().getField(35) != "A":
            return
        try:
            refusal = self._check_logon(message, session)
        except Exception:
            log.exception("fix logon check failed")
            refusal = "logon could not be checked"
        if refusal is not None:
            raise fix.RejectLogon(refusal)

    def toApp(self, message: fix.Message, session: fix.SessionID) -> None:
        return None

    def fromApp(self, message: fix.Message, session: fix.SessionID) -> None:
        member = session.getTargetCompID().getValue()
        kind = message.getHeader().getField(35)
        try:
            handler = self._handlers.get(kind)
            if handler is None:
                raise fix.UnsupportedMessageType()
            handler(self, member, session, message)
        except (fix.UnsupportedMessageType, fix.IncorrectTagValue, fix.FieldNotFound,
                fix.IncorrectDataFormat, fix.RejectLogon):  # fmt: skip
            raise  # QuickFIX answers these itself (Reject 3 / BusinessMessageReject j)
        except Exception:
            log.exception("fix %s from %s failed", kind, member)
            self._send(session, fm.Outgoing("j", [
                (45, message.getHeader().getField(34)), (372, kind), (380, "0"),
                (58, "the gateway could not process this message"),
            ]))  # fmt: skip

    # -- logon -----------------------------------------------------------------------------------
    def _check_logon(self, message: fix.Message, session: fix.SessionID) -> str | None:
        member = session.getTargetCompID().getValue()
        name = message.getField(553) if message.isSetField(553) else ""
        password = message.getField(554) if message.isSetField(554) else ""
        if not name or not password:
            log.warning("fix logon without Username(553)/Password(554) for %s", member)
            return "Username(553) and Password(554) are required"
        wait = self.gateway.throttle.wait_s(name)
        if wait > 0:
            log.warning("fix logon of %r throttled", name[:64])
            return f"too many failed logons: try again in {wait:.0f} s"
        acct = self.gateway.accounts.authenticate(name, password)
        if acct is None or acct.role.value != "trader" or acct.member != member:
            self.gateway.throttle.failed(name)
            log.warning("failed fix logon for %r as %s", name[:64], member)
            return "wrong username or password, or not a trader of this member"
        self.gateway.throttle.succeeded(name)
        return None

    # -- orders ----------------------------------------------------------------------------------
    def _venue(self) -> Venue:
        """The day's venue; while the exchange starts (or moves to the next day) a request
        waits for it, up to ``VENUE_WAIT_S``, instead of being refused at once."""
        deadline = time.monotonic() + VENUE_WAIT_S
        while (venue := self.gateway.venue) is None or venue is not self._venue_followed:
            if time.monotonic() > deadline:
                raise EntryRejected("order_not_open", "no trading day is running")
            time.sleep(0.05)
        return venue

    def _new_order(self, member: str, session: fix.SessionID, message: fix.Message) -> None:
        fields, _ = _fields(message)
        try:
            req = fm.parse_new_order(fields)
        except fm.FixRefusal as exc:
            self._send(session, fm.refused_new_order(fields, exc.reason, exc.text,
                                                     self._exec_id(), self._now()))  # fmt: skip
            return
        try:
            self._venue().submit(member, req.cl_ord_id, req.symbol, req.side, req.qty, req.price,
                                 req.order_type, req.tif, wait=False, origin="fix")  # fmt: skip
        except EntryRejected as exc:
            self._send(session, fm.refused_new_order(req, exc.reason, exc.detail, self._exec_id(),
                                                     self._now()))  # fmt: skip

    def _cancel(self, member: str, session: fix.SessionID, message: fix.Message) -> None:
        fields, _ = _fields(message)
        try:
            req = fm.parse_cancel(fields)
            self._venue().cancel(member, req.cl_ord_id, req.orig_cl_ord_id, wait=False)
        except (fm.FixRefusal, EntryRejected) as exc:
            self._refuse_change(session, member, fields, "cancel", exc)

    def _replace(self, member: str, session: fix.SessionID, message: fix.Message) -> None:
        fields, _ = _fields(message)
        try:
            req = fm.parse_replace(fields)
            self._venue().amend(member, req.cl_ord_id, req.orig_cl_ord_id, req.qty, req.price,
                                wait=False)  # fmt: skip
        except (fm.FixRefusal, EntryRejected) as exc:
            self._refuse_change(session, member, fields, "amend", exc)

    def _refuse_change(self, session: fix.SessionID, member: str, fields: dict[int, str],
                       kind: str, exc: fm.FixRefusal | EntryRejected) -> None:  # fmt: skip
        reason = exc.reason
        text = exc.text if isinstance(exc, fm.FixRefusal) else exc.detail
        order = None
        venue = self.gateway.venue
        if venue is not None and reason != "unknown_order":
            try:
                order = venue.order(member, fields.get(fm.ORIG_CL_ORD_ID, ""))
            except EntryRejected:
                order = None
        self._send(session, fm.cancel_reject(fields.get(fm.CL_ORD_ID, "NONE"),
                                             fields.get(fm.ORIG_CL_ORD_ID, "NONE"), kind, reason,
                                             order, text))  # fmt: skip

    def _on_update(self, update: Update) -> None:
        """A report of one of our orders (follower thread): to its member, if entered here.

        Sent whether the member is logged on or not: QuickFIX stores it under its
        sequence number, and a member that reconnects asks for the gap and gets it.
        """
        if update.order.origin != "fix":
            return
        member = update.order.member
        # one ExecID per matcher report, the same after a restart: sent once, ever (a
        # symbol's sequence, with the order and request for the unsequenced unknown symbols)
        er = update.report
        exec_id = f"{self._day}:{er.symbol}:{er.exec_id}:{er.order_id}:{er.request or ''}"
        with self._lock:
            session = self._sessions.get(member)
            if session is None or exec_id in self._sent:
                return
            self._sent.add(exec_id)
        try:
            self._send(session, fm.execution_report(update, exec_id))
            with self._lock:
                if self._sent_file is not None:
                    self._sent_file.write(exec_id + "\n")
                    self._sent_file.flush()
        except Exception:
            log.exception("fix report to %s not sent", member)

    # -- market data -----------------------------------------------------------------------------
    def _market_data(self, member: str, session: fix.SessionID, message: fix.Message) -> None:
        fields, pairs = _fields(message)
        types = [v for t, v in pairs if t == fm.MD_ENTRY_TYPE]
        symbols = [v for t, v in pairs if t == fm.SYMBOL]
        try:
            req = fm.parse_market_data_request(fields, types, symbols)
        except fm.FixRefusal as exc:
            self._send(session, fm.md_reject(fields.get(fm.MD_REQ_ID, "NONE"), "8", exc.text))
            return
        key = (member, req.req_id)
        if req.subscription == "2":
            with self._lock:
                self._subs.pop(key, None)
            return
        venue = self._venue()
        unknown = [s for s in req.symbols if s not in venue.securities]
        if unknown or not req.symbols:
            self._send(session, fm.md_reject(req.req_id, "0", f"unknown symbol {unknown}"))
            return
        with self._lock:
            if req.subscription == "1" and key in self._subs:
                duplicate = True
            else:
                duplicate = False
                if req.subscription == "1":
                    if sum(1 for k in self._subs if k[0] == member) >= MAX_SUBSCRIPTIONS:
                        self._send(session, fm.md_reject(req.req_id, "1",
                                                         "too many subscriptions"))  # fmt: skip
                        return
                    self._subs[key] = _Subscription(req, session, {})
        if duplicate:
            self._send(session, fm.md_reject(req.req_id, "1", "duplicate MDReqID"))
            return
        for symbol in req.symbols:
            top = venue.top(symbol)
            with self._lock:
                sub = self._subs.get(key)
                if sub is not None:
                    sub.books[symbol] = fm.book_levels(top, req.depth)
            self._send(session, fm.snapshot(req, symbol, top, venue.recent_trades(symbol, 1)))

    def _on_market(self, event: BookTop | Trade) -> None:
        with self._lock:
            subs = [s for s in self._subs.values() if event.symbol in s.request.symbols]
        for sub in subs:
            try:
                if isinstance(event, Trade):
                    if "2" not in sub.request.entry_types:
                        continue
                    changes = [("0", "2", event.price, event.qty)]
                else:
                    new = fm.book_levels(event, sub.request.depth)
                    with self._lock:
                        old = sub.books.get(event.symbol, {})
                        sub.books[event.symbol] = new
                    changes = [c for c in fm.book_changes(old, new)
                               if c[1] in sub.request.entry_types]  # fmt: skip
                if changes:
                    self._send(sub.session, fm.incremental(sub.request.req_id, event.symbol,
                                                           changes))  # fmt: skip
            except Exception:
                log.exception("fix market data to %s not sent", sub.session.toString())

    def _send(self, session: fix.SessionID, out: fm.Outgoing) -> None:
        with self._lock:
            self._in_flight += 1
            stopped = self._stopped
        try:
            if not stopped:
                fix.Session.sendToTarget(_message(out), session)
        finally:
            with self._lock:
                self._in_flight -= 1

    def detach(self, timeout: float = 5.0) -> None:
        """Stop sending, and wait for sends under way (before QuickFIX frees its sessions:
        a send to a freed session would crash the process)."""
        with self._lock:
            self._stopped = True
        if self._venue_followed is not None:
            self._venue_followed.unlisten(self._on_update, self._on_market)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._in_flight == 0:
                    return
            time.sleep(0.001)

    _handlers: ClassVar[dict[str, Callable[[FixGateway, str, Any, Any], None]]] = {
        "D": _new_order,
        "F": _cancel,
        "G": _replace,
        "V": _market_data,
    }


class FixAcceptor:
    """The acceptor on 127.0.0.1: ``start()`` listens, ``stop()`` logs everyone out."""

    def __init__(
        self,
        gateway: Gateway,
        config: Path,
        clock: Callable[[], int] | None = None,
        state: Path | None = None,
    ) -> None:
        self.application = FixGateway(gateway, clock, state)
        self._settings = fix.SessionSettings(str(config))
        self._store = fix.FileStoreFactory(self._settings)
        # ThreadedSocketAcceptor: a thread per session, and a clean stop (the single-threaded
        # SocketAcceptor's stop races its own socket server in this QuickFIX version)
        self._acceptor = fix.ThreadedSocketAcceptor(self.application, self._store, self._settings)

    def start(self) -> None:
        self._acceptor.start()  # creates the sessions
        if self.application.gateway.venue is not None:  # a day already running
            self.application.follow(self.application.gateway.venue)

    def stop(self) -> None:
        """Log every member out and free the sessions: QuickFIX keeps one registry of
        sessions per process, and a session left registered would shadow a new acceptor's."""
        if self._acceptor is not None:
            self.application.detach()
            self._acceptor.stop()
            self._acceptor = None
            gc.collect()
