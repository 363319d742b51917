"""``bench gateway``: orders through the FIX and the HTTP gateway, request to acknowledgement.

A real ``exchange run`` (its matcher and bar builder as processes, no
simulator and no members) serves both gateways, once on the embedded log and
once on Kafka (the stack's broker, a namespace of its own); the clients are
a QuickFIX initiator (one session) and an asyncio HTTP/1.1 load generator.
Two figures per gateway: throughput with every order sent as fast as the
client can (FIX: pipelined on one session; HTTP: 32 keep-alive connections in
parallel, each waiting for its answer), and latency at a steady offered rate
(1,000 orders/s), p50 and p99 from the (scheduled) send to the acknowledgement. Orders are day limit buys below the market, so
they rest: every answer is the matcher's ``new``. The members get a large
capital for the run, so the pre-trade check never refuses one.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import httptools
import httpx

from settings import get_settings
from streaming.accounts import AccountStore
from streaming.refdata import MEMBERS_CSV, load_calendar

FIX_PASSWORD = "bench-the-fix-gateway"
API_PASSWORD = "bench-the-http-gateway"
RATE = 1_000  # orders/s offered for the latency figures


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _exchange(env: dict[str, str], day: date, errors: Path, *args: str) -> subprocess.Popen[bytes]:
    """``exchange run`` for one day in the background, its stderr kept in ``errors``."""
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "exchange", "run", "--from", day.isoformat(),
         "--days", "1", "--port", str(_port()), *args],
        env=env, stdout=subprocess.DEVNULL, stderr=errors.open("w"),
    )  # fmt: skip


def _members_csv(source: Path, target: Path) -> Path:
    with source.open() as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["capital"] = "1000000000"
    with target.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return target


def _fix_figures(client: Any, n: int) -> dict[str, Any]:
    from streaming.gateways.fix_client import new_order, parse

    arrived: dict[str, float] = {}

    def on_message(raw: str) -> None:  # QuickFIX's thread: stamp the arrival, parse later
        arrived.setdefault(raw, time.perf_counter())

    client.on_message = on_message

    def acks(count: int, sent_at: dict[str, float]) -> dict[str, float]:
        got: dict[str, float] = {}
        while len(got) < count:
            raw = client.next(timeout=30)
            msg = parse(raw)
            if msg.get(11) in sent_at:
                got[msg[11]] = arrived.pop(raw, time.perf_counter())
        return got

    # throughput: pipelined, as fast as one session sends
    sent: dict[str, float] = {}
    start = time.perf_counter()
    for i in range(n):
        cl = f"t{i}"
        sent[cl] = time.perf_counter()
        client.send("D", *new_order(cl, "AAPL", "1", 1, "180.00"))
    got = acks(n, sent)
    throughput = n / (max(got.values()) - start)
    # latency at the offered rate
    m = min(n, 3 * RATE)
    sent = {}
    start = time.perf_counter()
    for i in range(m):
        target = start + i / RATE
        while (now := time.perf_counter()) < target:
            time.sleep(min(0.0005, target - now))
        cl = f"l{i}"
        sent[cl] = time.perf_counter()
        client.send("D", *new_order(cl, "AAPL", "1", 1, "180.00"))
    got = acks(m, sent)
    lat = [(got[c] - sent[c]) * 1000 for c in sent]
    return {"orders": n, "orders_per_s": round(throughput),
            "p50_ms": round(_percentile(lat, 0.5), 2), "p99_ms": round(_percentile(lat, 0.99), 2),
            "offered_per_s": RATE, "latency_orders": m}  # fmt: skip


class _HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of the load generator: a request at a time, the
    answer parsed by httptools (uvicorn's parser). The bench's own cost per request is
    small next to the gateway's, as with a load generator such as wrk; httpx's threads
    took a core of their own on this two-core machine."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        assert self.answer is not None
        self.answer.set_result((self.parser.get_status_code(), bytes(self.body)))
        self.body = bytearray()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError(f"the gateway closed: {exc}"))

    async def post(self, raw: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.answer


HTTP_CONNECTIONS = 32  # clients in parallel, each waiting for its answer before the next


def _http_figures(url: str, token: str, n: int) -> dict[str, Any]:
    return asyncio.run(_http_run(url, token, n))


async def _http_run(url: str, token: str, n: int) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    head = (f"POST /api/v1/orders HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n")  # fmt: skip

    def request(cl: str) -> bytes:
        body = json.dumps({"symbol": "AAPL", "side": "buy", "qty": 1, "price": "180.00",
                           "cl_ord_id": cl}).encode()  # fmt: skip
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body

    async def post(conn: _HttpConnection, cl: str) -> None:
        status, body = await conn.post(request(cl))
        if status != 201:
            raise RuntimeError(f"order {cl}: {status} {body.decode()[:300]}")

    loop = asyncio.get_running_loop()
    conns = [(await loop.create_connection(_HttpConnection, host, int(port)))[1]
             for _ in range(HTTP_CONNECTIONS)]  # fmt: skip
    try:

        async def worker(c: int) -> None:
            for i in range(c, n, HTTP_CONNECTIONS):
                await post(conns[c], f"h{i}")

        start = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in range(HTTP_CONNECTIONS)))
        throughput = n / (time.perf_counter() - start)
        # latency at the offered rate, from each order's scheduled send (a wait for a free
        # connection counts)
        m = min(n, 2 * RATE)
        idle: asyncio.Queue[_HttpConnection] = asyncio.Queue()
        for conn in conns:
            idle.put_nowait(conn)
        lat: list[float] = []

        async def timed(i: int, scheduled: float) -> None:
            conn = await idle.get()
            await post(conn, f"hl{i}")
            idle.put_nowait(conn)
            lat.append((time.perf_counter() - scheduled) * 1000)

        tasks = []
        start = time.perf_counter()
        for i in range(m):
            target = start + i / RATE
            if (ahead := target - time.perf_counter()) > 0:
                await asyncio.sleep(ahead)
            tasks.append(asyncio.ensure_future(timed(i, target)))
        await asyncio.gather(*tasks)
        achieved = m / (time.perf_counter() - start)
    finally:
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
    return {"orders": n, "orders_per_s": round(throughput), "connections": HTTP_CONNECTIONS,
            "p50_ms": round(_percentile(lat, 0.5), 2), "p99_ms": round(_percentile(lat, 0.99), 2),
            "offered_per_s": RATE, "achieved_per_s": round(achieved),
            "latency_orders": m}  # fmt: skip


def bench_gateway(n: int = 5_000, kafka: dict[str, str] | None = None) -> dict[str, Any]:
    """Both gateways on the embedded log, then (given ``kafka``: the environment that points
    a process at a broker) on Kafka."""
    runs = [_bench_transport(n, "embedded", {"MARKETLAKE_EVENT_LOG": "sqlite"})]
    if kafka is not None:
        namespace = f"gwbench{os.getpid()}{int(time.time()) % 100_000}"
        env = {**kafka, "MARKETLAKE_EVENT_LOG": "kafka", "MARKETLAKE_NAMESPACE": namespace}
        runs.append(_bench_transport(n, "kafka", env))
    return {"runs": runs}


def _bench_transport(n: int, transport: str, extra: dict[str, str]) -> dict[str, Any]:
    """Start an exchange with both gateways in a temporary data dir, measure, stop it."""
    from streaming.gateways.fix_client import FixClient

    settings = get_settings()
    calendar = load_calendar(settings.calendar_toml)
    day = calendar.next_trading_day(date.today())
    with tempfile.TemporaryDirectory(prefix="marketlake-bench-gateway-") as tmp:
        data = Path(tmp) / "data"
        accounts = AccountStore(data / "accounts.sqlite")
        accounts.add("fixbench", "trader", FIX_PASSWORD, member="USR01")
        accounts.add("apibench", "trader", API_PASSWORD, member="USR02")
        env = {**os.environ, **extra, "MARKETLAKE_DATA_DIR": str(data),
               "MARKETLAKE_MEMBERS_CSV": str(_members_csv(settings.members_csv or MEMBERS_CSV,
                                                           Path(tmp) / "members.csv"))}  # fmt: skip
        api_port, fix_port = _port(), _port()
        proc = _exchange(env, day, Path(tmp) / "exchange.err", "--speed", "60", "--no-simulator",
                         "--no-members", "--api-port", str(api_port), "--fix-port",
                         str(fix_port))  # fmt: skip
        url = f"http://127.0.0.1:{api_port}"
        client = None
        try:
            token = _wait_open(url, proc, Path(tmp) / "exchange.err")
            client = FixClient(Path(tmp), fix_port, "USR01", "fixbench", FIX_PASSWORD).start(60)
            fix = _fix_figures(client, n)
            http = _http_figures(url, token, n)
        except Exception as exc:
            tail = (Path(tmp) / "exchange.err").read_text()[-3000:]
            raise RuntimeError(f"{transport}: {exc}; the exchange said:\n{tail}") from exc
        finally:
            if client is not None:
                client.stop()
            proc.terminate()
            proc.wait(60)
    return {"transport": transport, "day": day.isoformat(), "fix": fix, "http": http}


def _wait_open(url: str, proc: subprocess.Popen[bytes], errors: Path) -> str:
    """Log in, then wait for the session's open (at 60x the pre-open takes 15 s; the session
    then lasts 6.5 minutes, longer than the measurements)."""
    token = _login(url, "apibench", API_PASSWORD, proc, errors)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the exchange stopped: {errors.read_text()[-2000:]}")
        try:
            s = httpx.get(f"{url}/api/v1/session",
                          headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
            if s["status"].get("AAPL", s["status"].get("*")) == "open":
                return token
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the session did not open in 5 minutes")


PACE_MS = 100  # a screen's reader: the book ten times a second


def bench_fanout(subscribers: int = 100, seconds: float = 10.0) -> dict[str, Any]:
    """The core's orders/s at the simulator's full rate, without and then with ``subscribers``
    WebSocket readers of every symbol's BBO (embedded; the same window of the same day):
    readers paced like a screen (``conflate_ms``), and readers of every event."""
    without = _fanout_run(0, seconds)
    runs: dict[str, Any] = {"subscribers": subscribers, "window_s": seconds, "without": without,
                            "pace_ms": PACE_MS}  # fmt: skip
    for name, pace in (("paced", PACE_MS), ("with", 0)):
        run = runs[name] = _fanout_run(subscribers, seconds, pace)
        slowdown = 1 - run["core_orders_per_s"] / max(without["core_orders_per_s"], 1)
        run["core_slowdown_pct"] = round(100 * slowdown, 1)
    return runs


def _fanout_run(subscribers: int, seconds: float, pace_ms: int = 0) -> dict[str, Any]:
    """One speed-0 day with the simulator; after a settling second, count the orders the
    log gains over ``seconds`` and what the subscribers receive meanwhile."""
    import asyncio
    import threading

    from streaming.refdata import load_securities
    from streaming.transport.sqlite import SqliteEventLog

    settings = get_settings()
    day = load_calendar(settings.calendar_toml).next_trading_day(date.today())
    symbols = [s.symbol for s in load_securities(settings.securities_csv)]
    with tempfile.TemporaryDirectory(prefix="marketlake-bench-fanout-") as tmp:
        data = Path(tmp) / "data"
        AccountStore(data / "accounts.sqlite").add("watcher", "viewer", API_PASSWORD)
        env = {**os.environ, "MARKETLAKE_DATA_DIR": str(data), "MARKETLAKE_EVENT_LOG": "sqlite"}
        api_port = _port()
        errors = Path(tmp) / "exchange.err"
        proc = _exchange(env, day, errors, "--speed", "0", "--no-members", "--api-port",
                         str(api_port))  # fmt: skip
        url = f"127.0.0.1:{api_port}"
        stop = threading.Event()
        counts = {"messages": 0, "dropped": 0, "connected": 0}

        async def reader(token: str) -> None:
            import websockets

            for _ in range(600):  # the day's venue may not be there yet: "no_session"
                async with websockets.connect(
                    f"ws://{url}/api/v1/stream", max_queue=None,
                    additional_headers={"Authorization": f"Bearer {token}"},
                ) as ws:  # fmt: skip
                    await ws.send(json.dumps({"symbols": symbols, "channels": ["bbo"],
                                              "conflate_ms": pace_ms}))  # fmt: skip
                    first = json.loads(await ws.recv())
                    if first.get("type") != "subscribed":
                        await asyncio.sleep(0.1)
                        continue
                    counts["connected"] += 1
                    while not stop.is_set():
                        try:
                            raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                        except TimeoutError:
                            continue
                        text = str(raw)  # a paced reader's message is an array of events
                        counts["messages"] += text.count('"seq":') if pace_ms else 1
                        if '"dropped"' in text:
                            counts["dropped"] += 1
                            return
                    return

        async def readers(token: str) -> None:
            await asyncio.gather(*(reader(token) for _ in range(subscribers)))

        try:
            token = _login(f"http://{url}", "watcher", API_PASSWORD, proc, errors)
            log_path = data / "sessions" / f"{day.isoformat()}.sqlite"
            while not log_path.exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"the exchange stopped: {errors.read_text()[-2000:]}")
                time.sleep(0.05)
            thread = None
            if subscribers:
                thread = threading.Thread(target=lambda: asyncio.run(readers(token)), daemon=True)
                thread.start()
                deadline = time.monotonic() + 60
                while counts["connected"] < subscribers and time.monotonic() < deadline:
                    time.sleep(0.05)
            log = SqliteEventLog(log_path)
            time.sleep(1.0)

            def orders() -> int:
                try:
                    return sum(log.end_offsets("orders").values())
                except Exception:  # the topics are not created yet
                    return 0

            first, received, t0 = orders(), counts["messages"], time.perf_counter()
            time.sleep(seconds)
            last, got, elapsed = orders(), counts["messages"] - received, time.perf_counter() - t0
            log.close()
            stop.set()
            if thread is not None:
                thread.join(10)
        finally:
            stop.set()
            proc.terminate()
            proc.wait(120)
    return {"core_orders_per_s": round((last - first) / elapsed),
            "messages_per_s": round(got / elapsed), "connected": counts["connected"],
            "dropped": counts["dropped"]}  # fmt: skip


def _login(url: str, name: str, password: str, proc: subprocess.Popen[bytes],
           errors: Path) -> str:  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the exchange stopped: {errors.read_text()[-2000:]}")
        try:
            r = httpx.post(f"{url}/api/v1/login", json={"name": name, "password": password})
            if r.status_code == 200:
                return str(r.json()["token"])
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the exchange's API did not answer in 2 minutes")
