"""A FIX 4.4 client of the exchange: a QuickFIX initiator, as a member's trading program runs one.

The tests and ``bench gateway`` use it, and it shows a member how to connect:
it logs on with Username/Password, keeps its own sequence store (so a
reconnect asks for what it missed) and hands every application message it
receives to a queue. ``RawSession`` is the opposite: FIX over a bare socket,
for what no engine would send (the malformed-input tests).
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import quickfix as fix

from streaming.gateways.fix_acceptor import data_dictionary

SOH = "\x01"


def parse(raw: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in raw.split(SOH):
        tag, _, value = part.partition("=")
        if tag.isdigit():
            out.setdefault(int(tag), value)  # first value (header before body; groups: first)
    return out


def all_values(raw: str, tag: int) -> list[str]:
    return [p.partition("=")[2] for p in raw.split(SOH) if p.partition("=")[0] == str(tag)]


class _App(fix.Application):  # type: ignore[misc]
    def __init__(self, client: FixClient) -> None:
        super().__init__()
        self.client = client

    def onCreate(self, session: Any) -> None:
        self.client.session = session

    def onLogon(self, session: Any) -> None:
        self.client.logged_on.set()

    def onLogout(self, session: Any) -> None:
        self.client.logged_on.clear()
        self.client.logged_out.set()

    def toAdmin(self, message: Any, session: Any) -> None:
        if message.getHeader().getField(35) == "A":
            message.setField(fix.StringField(553, self.client.username))
            message.setField(fix.StringField(554, self.client.password))

    def fromAdmin(self, message: Any, session: Any) -> None:
        self.client.admin.put(message.toString())

    def toApp(self, message: Any, session: Any) -> None:
        return None

    def fromApp(self, message: Any, session: Any) -> None:
        raw = message.toString()
        if self.client.on_message is not None:
            self.client.on_message(raw)
        self.client.history.append(raw)
        self.client.app.put(raw)


class FixClient:
    """One member's FIX session to the exchange (``start``/``stop``, ``send``, ``next``)."""

    def __init__(self, workdir: Path, port: int, member: str, username: str, password: str,
                 target: str = "MLX", heartbeat_s: int = 30) -> None:  # fmt: skip
        self.username, self.password = username, password
        self.session: Any = None
        self.logged_on, self.logged_out = threading.Event(), threading.Event()
        self.app: queue.Queue[str] = queue.Queue()
        self.admin: queue.Queue[str] = queue.Queue()
        self.history: list[str] = []  # every application message received
        # called in QuickFIX's thread as each application message arrives (a benchmark's
        # clock: ``next`` only says when the caller got round to reading it)
        self.on_message: Callable[[str], None] | None = None
        store = workdir / f"client-{member}"
        # QuickFIX's store keeps every message sent, the Logon with its Password(554) too:
        # the client's directory is its owner's alone
        store.mkdir(parents=True, exist_ok=True)
        store.chmod(0o700)
        cfg = store / "client.cfg"
        cfg.write_text("\n".join([
            "[DEFAULT]", "ConnectionType=initiator", "BeginString=FIX.4.4",
            f"SenderCompID={member}", f"TargetCompID={target}",
            "SocketConnectHost=127.0.0.1", f"SocketConnectPort={port}",
            f"FileStorePath={store / 'store'}", "NonStopSession=Y", "ReconnectInterval=1",
            f"HeartBtInt={heartbeat_s}", "UseDataDictionary=Y",
            f"DataDictionary={data_dictionary()}", "ResetOnLogon=N", "PersistMessages=Y",
            "ValidateUserDefinedFields=N", "", "[SESSION]", "",
        ]))  # fmt: skip
        self._settings = fix.SessionSettings(str(cfg))
        self._application = _App(self)
        self._initiator = fix.SocketInitiator(
            self._application, fix.FileStoreFactory(self._settings), self._settings
        )

    def start(self, wait: float | None = 20) -> FixClient:
        self._initiator.start()
        if wait is not None and not self.logged_on.wait(wait):
            raise AssertionError(f"no logon: {self.drain_admin()}")
        return self

    def stop(self) -> None:
        """Log out and free the session (QuickFIX registers sessions per process by id)."""
        if self._initiator is not None:
            self._initiator.stop()
            self._initiator = None
            gc.collect()

    def send(self, msg_type: str, *fields: tuple[int, str],
             groups: list[tuple[int, int, list[list[tuple[int, str]]]]] | None = None) -> None:  # fmt: skip
        msg = fix.Message()
        msg.getHeader().setField(fix.MsgType(msg_type))
        for tag, value in fields:
            msg.setField(fix.StringField(tag, value))
        for count, delim, entries in groups or []:
            for entry in entries:
                group = fix.Group(count, delim)
                for tag, value in entry:
                    group.setField(fix.StringField(tag, value))
                msg.addGroup(group)
        assert fix.Session.sendToTarget(msg, self.session)

    def next(
        self, timeout: float = 15, where: Callable[[dict[int, str]], bool] | None = None
    ) -> str:
        """The next application message (matching ``where``; others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no such message in time")
            raw = self.app.get(timeout=left)
            if where is None or where(parse(raw)):
                return raw

    def drain_admin(self) -> list[dict[int, str]]:
        out = []
        while not self.admin.empty():
            out.append(parse(self.admin.get()))
        return out


def new_order(cl: str, symbol: str, side: str, qty: int, price: str | None,
              tif: str = "0") -> tuple[tuple[int, str], ...]:  # fmt: skip
    fields = [(11, cl), (55, symbol), (54, side), (38, str(qty)), (60, "20261120-15:00:00.000"),
              (40, "2" if price is not None else "1"), (59, tif)]  # fmt: skip
    if price is not None:
        fields.append((44, price))
    return tuple(fields)


def frame(msg_type: str, seq: int, body: list[tuple[int, str]] | str, sender: str = "USR01",
          target: str = "MLX", checksum_delta: int = 0, length_delta: int = 0) -> bytes:  # fmt: skip
    """A FIX 4.4 message framed by hand (the tests' raw sockets; deltas break the framing)."""
    stamp = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime()) + ".000"
    fields = body if isinstance(body, str) else "".join(f"{t}={v}{SOH}" for t, v in body)
    inner = (
        f"35={msg_type}{SOH}34={seq}{SOH}49={sender}{SOH}52={stamp}{SOH}56={target}{SOH}{fields}"
    )
    head = f"8=FIX.4.4{SOH}9={len(inner.encode()) + length_delta}{SOH}"
    data = (head + inner).encode()
    return data + f"10={(sum(data) + checksum_delta) % 256:03d}{SOH}".encode()


class RawSession:
    """A FIX session over a bare socket, for what a FIX engine would never send."""

    def __init__(self, port: int) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        self.seq = 1

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, msg_type: str, body: list[tuple[int, str]] | str) -> None:
        self.sock.sendall(frame(msg_type, self.seq, body))
        self.seq += 1

    def receive(
        self, timeout: float = 5.0, skip: tuple[str, ...] = ("0", "1")
    ) -> dict[int, str] | None:
        """The next message (heartbeats and test requests answered and skipped); None on timeout,
        ``{}`` when the gateway closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            end = self.buffer.find(b"\x0110=")
            if end >= 0 and len(self.buffer) >= end + 8:
                raw, self.buffer = self.buffer[: end + 8], self.buffer[end + 8 :]
                msg = parse(raw.decode("latin-1"))
                if msg.get(35) == "1":  # a test request: answer it, as every client must
                    self.send("0", [(112, msg.get(112, ""))])
                if msg.get(35) not in skip:
                    return msg
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            except OSError:
                return {}
            if not chunk:
                return {}
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()
