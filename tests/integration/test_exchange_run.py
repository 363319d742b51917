"""``marketlake exchange run``: sessions day after day, with outside writers beside the simulator.

Run as a user runs it (the command, its child services, the embedded log):
two days back to back unpaced must each equal the in-process session of the
same seed; a paced day takes orders from a second writer of ``orders`` (what
a gateway is) and answers them, between the calendar's pre-open, open and close.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from assets.platform.resources import day_config
from settings import Settings
from streaming.events import (
    GATEWAY_ID_BASE,
    ExecutionReport,
    NewOrder,
    SessionControl,
    Trade,
    decode,
    encode,
)
from streaming.services.day import run_day, session_seed, session_state
from streaming.transport.base import Output
from streaming.transport.sqlite import SqliteEventLog
from tests.support import exchange_env, free_port, short_calendar

pytestmark = pytest.mark.integration

DAYS = (date(2026, 11, 19), date(2026, 11, 20))  # Thursday, Friday
COMPARED = ("orders", "control", "executions", "trades", "bbo", "bars.1s", "bars.1m", "dlq")


def _env(tmp_path: Path, calendar: Path) -> dict[str, str]:
    return exchange_env(tmp_path / "data", calendar)


def _exchange(env: dict[str, str], *args: str, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "exchange", "run", "--port",
         str(free_port()), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,
    )  # fmt: skip


def _topic(log, topic: str) -> list[tuple[bytes, int]]:
    return [
        (r.value, r.timestamp) for p in sorted(log.end_offsets(topic)) for r in log.read(topic, p)
    ]


def test_days_back_to_back_each_equal_the_in_process_session(tmp_path):
    calendar = short_calendar(tmp_path)
    env = _env(tmp_path, calendar)
    proc = _exchange(env, "--from", DAYS[0].isoformat(), "--days", "2", "--speed", "0")
    out, errs = proc.communicate(timeout=600)
    assert proc.returncode == 0, errs[-3000:]
    for day in DAYS:
        assert f"session {day}" in out
        settings = Settings(_env_file=None, data_dir=tmp_path / "data", calendar_toml=calendar)
        live = SqliteEventLog(tmp_path / "data" / "sessions" / f"{day}.sqlite")
        assert session_state(live) == "complete"
        reference = SqliteEventLog(tmp_path / f"reference-{day}.sqlite")
        run_day(reference, day_config(settings, day, session_seed(42, day)))
        for topic in COMPARED:
            assert _topic(live, topic) == _topic(reference, topic), (day, topic)
        controls = [decode(v) for v, _ in _topic(live, "control")]
        assert [c.action for c in controls] == ["pre_open", "open", "close"]
        assert all(isinstance(c, SessionControl) and c.actor == "calendar" for c in controls)

    # both days ran: a second start begins after them (the first two are complete, skipped)
    again = _exchange(env, "--from", DAYS[0].isoformat(), "--days", "1", "--speed", "0")
    out, errs = again.communicate(timeout=600)
    assert again.returncode == 0, errs[-3000:]
    assert "session 2026-11-23" in out  # the Monday after


def test_a_paced_day_answers_a_second_writer_of_orders(tmp_path):
    """Without simulator and members the market is the outside writers' alone: two orders
    that cross trade, sent while the session is open on the exchange's paced clock."""
    calendar = short_calendar(tmp_path)
    env = _env(tmp_path, calendar)
    day = DAYS[1]
    # the short day: 15 min pre-open + 30 min session, at 300x about 9 s on the wall
    proc = _exchange(env, "--from", day.isoformat(), "--days", "1", "--speed", "300",
                     "--no-simulator", "--no-members")  # fmt: skip
    path = tmp_path / "data" / "sessions" / f"{day}.sqlite"
    try:
        deadline = time.monotonic() + 120
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = SqliteEventLog(path)
        actions: list[str] = []
        while "open" not in actions and time.monotonic() < deadline:
            log.create_topics(["control"])
            actions = [decode(v).action for v, _ in _topic(log, "control")]  # type: ignore[union-attr]
            time.sleep(0.05)
        assert actions == ["pre_open", "open"], "the calendar's pre-open and open came first"
        (_, open_ts) = _topic(log, "control")[-1]
        orders = [
            NewOrder(1, "USR01", "AAPL", "buy", 10, None, "market", "ioc", open_ts + 1),
            NewOrder(2, "USR02", "AAPL", "sell", 10, 1_950_000, "limit", "day", open_ts + 1),
        ]
        # the resting sell first, then the buy that takes it
        log.produce([Output("orders", "AAPL", encode(orders[1]), open_ts + 1)])
        log.produce([Output("orders", "AAPL", encode(orders[0]), open_ts + 2)])
        _, errs = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, errs[-3000:]
    assert session_state(log) == "complete"
    reports = [decode(v) for v, _ in _topic(log, "executions")]
    assert all(isinstance(r, ExecutionReport) for r in reports)
    by_order = {(r.member, r.order_id): [x.exec_type for x in reports
                                          if (x.member, x.order_id) == (r.member, r.order_id)]
                for r in reports}  # fmt: skip
    assert by_order[("USR02", 2)] == ["new", "trade"]
    assert by_order[("USR01", 1)] == ["new", "trade"]
    (trade,) = [decode(v) for v, _ in _topic(log, "trades")]
    assert isinstance(trade, Trade) and (trade.qty, trade.price) == (10, 1_950_000)
    assert [decode(v).action for v, _ in _topic(log, "control")] == ["pre_open", "open", "close"]  # type: ignore[union-attr]


def _per_key(log, topic: str) -> dict[str | None, list[tuple[bytes, int]]]:
    """Each key's messages in order: what sharding over partitions must preserve."""
    out: dict[str | None, list[tuple[bytes, int]]] = {}
    for part in sorted(log.end_offsets(topic)):
        for rec in log.read(topic, part):
            out.setdefault(rec.key, []).append((rec.value, rec.timestamp))
    return out


def test_a_day_on_kafka_with_two_matchers_equals_the_in_process_session(kafka, tmp_path):
    """On the stack's transport the day is a Kafka namespace of its own, its four partitions
    split between two matcher processes; the session still equals the in-process one."""
    from streaming.transport.kafka import KafkaEventLog
    from streaming.transport.namespace import NamespacedEventLog

    calendar = short_calendar(tmp_path)
    day = DAYS[0]
    namespace = f"ex{os.getpid()}{int(time.time()) % 100000}"
    env = {**_env(tmp_path, calendar), **kafka.env(), "MARKETLAKE_KAFKA_PARTITIONS": "4",
           "MARKETLAKE_NAMESPACE": namespace}  # fmt: skip
    proc = _exchange(env, "--from", day.isoformat(), "--days", "1", "--speed", "0",
                     "--matchers", "2")  # fmt: skip
    _, errs = proc.communicate(timeout=600)
    assert proc.returncode == 0, errs[-3000:]
    broker = NamespacedEventLog(
        KafkaEventLog(kafka.bootstrap, client_id=f"{namespace}-check",
                      security=kafka.client_config()),
        f"{namespace}-{day:%Y%m%d}",
    )  # fmt: skip
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", calendar_toml=calendar)
    reference = SqliteEventLog(tmp_path / "reference.sqlite")
    run_day(reference, day_config(settings, day, session_seed(42, day)))
    try:
        assert len(broker.end_offsets("orders")) == 4
        for topic in ("orders", "executions", "trades", "bbo", "bars.1m"):
            assert _per_key(broker, topic) == _per_key(reference, topic), topic
    finally:
        broker.close()


def test_a_day_the_exchange_ran_lands_and_reconciles(tmp_path):
    """A day of the simulator and members with a second writer of orders (a gateway's,
    written while the simulator trades): replaying its log gives back its executions,
    trades, tops and bars byte for byte; the batch takes the day as it is (not simulated
    again) and it reconciles."""
    from streaming.services.day import replay_session

    calendar = short_calendar(tmp_path)
    env = {**_env(tmp_path, calendar), "DAGSTER_HOME": str(tmp_path / "dagster")}
    day = DAYS[1]
    path = tmp_path / "data" / "sessions" / f"{day}.sqlite"
    # paced (45 min of day at 300x: 9 s) so that the second writer's orders land mid-session
    proc = _exchange(env, "--from", day.isoformat(), "--days", "1", "--speed", "300")
    try:
        writer, _ = _wait_for_open(path, time.monotonic() + 120)
        time.sleep(1.0)  # the simulator is trading
        # bids below the market, inside its 10% band (one IOC, cancelled unfilled): at 300x the simulator gains
        # 0.3 s of exchange time a wall millisecond, and a trade of ours landing more than
        # the bars' 2 s grace behind it would be dead-lettered as late (as a gateway's order
        # would at that speed if its write took longer than 7 ms)
        now = max(ts for _, ts in _topic(writer, "orders"))
        base = GATEWAY_ID_BASE  # buys only: nobody holds shares before the first landed day
        for order in (
            NewOrder(base + 1, "USR01", "AAPL", "buy", 10, 1_800_000, "limit", "ioc", now + 1),
            NewOrder(base + 2, "USR02", "AAPL", "buy", 5, 1_850_000, "limit", "day", now + 2),
            NewOrder(base + 3, "USR02", "AAPL", "buy", 5, 1_820_000, "limit", "day", now + 3),
        ):
            writer.produce([Output("orders", "AAPL", encode(order), order.ts)])
        _, errs = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, errs[-3000:]
    log = SqliteEventLog(path)
    orders = _topic(log, "orders")
    outside = {decode(v).order_id for v, _ in orders} & {GATEWAY_ID_BASE + i for i in (1, 2, 3)}  # type: ignore[union-attr]
    assert len(outside) == 3 and len({decode(v).member for v, _ in orders}) > 2  # type: ignore[union-attr]
    answers = [(r.order_id, r.exec_type) for r in (decode(v) for v, _ in _topic(log, "executions"))
               if isinstance(r, ExecutionReport) and r.order_id in outside]  # fmt: skip
    ioc = [e for o, e in answers if o == base + 1]
    assert ioc[0] == "new" and ioc[-1] in ("canceled", "expired") and "trade" not in ioc, ioc
    assert {(base + 2, "new"), (base + 3, "new")} <= set(answers)
    again = SqliteEventLog(tmp_path / "replayed.sqlite")
    settings = Settings(data_dir=tmp_path / "data", calendar_toml=calendar)
    replay_session(log, again, day_config(settings, day, session_seed(42, day)))
    for topic in ("executions", "trades", "bbo", "bars.1s", "bars.1m"):
        assert _topic(again, topic) == _topic(log, topic), topic
    # the dead letters have two writers (the matcher, the bar builder): each one's in order
    assert _by_source(again) == _by_source(log)

    table = _land(env, tmp_path / "data", day)
    assert _topic(log, "orders") == orders  # the exchange's session, not a new simulation
    assert table("core.recon_breaks").num_rows == 0
    trades = table("raw.trades").num_rows
    assert trades == len(_topic(log, "trades")) > 0


def _by_source(log: SqliteEventLog) -> dict[str, list[tuple[bytes, int]]]:
    out: dict[str, list[tuple[bytes, int]]] = {}
    for value, ts in _topic(log, "dlq"):
        out.setdefault(decode(value).source_topic, []).append((value, ts))  # type: ignore[union-attr]
    return out


def _land(env: dict[str, str], data: Path, day: date) -> Callable[[str], pa.Table]:
    """Land ``day`` through the batch (``backfill``, as a user runs it); then its rows by table."""
    import json

    from assets.platform.resources import PlatformResource
    from lake.row_filters import equal_to

    landed = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "backfill", "--from", day.isoformat(),
         "--to", day.isoformat(), "--json"],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert landed.returncode == 0, landed.stderr[-3000:]
    (run,) = json.loads(landed.stdout)
    assert run["success"]
    catalog = PlatformResource(data_dir=str(data)).catalog()
    return lambda name: (
        catalog.load_table(name).scan(row_filter=equal_to("trading_day", day)).to_arrow()
    )


def _wait_for_open(log_path: Path, deadline: float) -> tuple[SqliteEventLog, int]:
    while not log_path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = SqliteEventLog(log_path)
    while time.monotonic() < deadline:
        log.create_topics(["control"])
        controls = _topic(log, "control")
        if any(decode(v).action == "open" for v, _ in controls):  # type: ignore[union-attr]
            return log, controls[-1][1]
        time.sleep(0.05)
    raise AssertionError("the session did not open")


def _gateway_orders(open_ts: int) -> list[NewOrder]:
    """Orders as the gateways send them (ids from GATEWAY_ID_BASE): two that cross, one that rests."""
    base = GATEWAY_ID_BASE
    return [
        NewOrder(base + 1, "USR02", "AAPL", "sell", 10, 1_950_000, "limit", "day", open_ts + 1),
        NewOrder(base + 2, "USR01", "AAPL", "buy", 10, None, "market", "ioc", open_ts + 2),
        NewOrder(base + 3, "USR01", "AAPL", "buy", 5, 1_940_000, "limit", "day", open_ts + 3),
    ]


def _wait_processed(log: SqliteEventLog, n: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        log.create_topics(["executions"])
        if len(_topic(log, "executions")) >= n:
            return
        time.sleep(0.05)
    raise AssertionError("the matcher did not answer the orders")


def _closed_by_the_exchange(log: SqliteEventLog) -> SessionControl:
    controls = [decode(v) for v, _ in _topic(log, "control")]
    assert [c.action for c in controls] == ["pre_open", "open", "close"]  # type: ignore[union-attr]
    close = controls[-1]
    assert isinstance(close, SessionControl) and close.actor == "exchange", close
    return close


def test_a_stopped_exchange_closes_the_day_and_keeps_outside_orders(tmp_path):
    """SIGTERM mid-session: the exchange closes the day as it stands (a venue does not throw a
    session away); the gateways' orders stay, the resting one ends at the close."""
    calendar = short_calendar(tmp_path)
    env = _env(tmp_path, calendar)
    day = DAYS[1]
    proc = _exchange(env, "--from", day.isoformat(), "--days", "2", "--speed", "60",
                     "--no-simulator", "--no-members")  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        log, open_ts = _wait_for_open(tmp_path / "data" / "sessions" / f"{day}.sqlite", deadline)
        orders = _gateway_orders(open_ts)
        for o in orders:
            log.produce([Output("orders", o.symbol, encode(o), o.ts)])
        _wait_processed(log, 5, deadline)  # new, new+trade, new for the resting one... at least
        proc.send_signal(signal.SIGTERM)
        _, errs = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, errs[-3000:]
    assert session_state(log) == "complete"
    _closed_by_the_exchange(log)
    sent = [decode(v) for v, _ in _topic(log, "orders")]
    assert sent == orders
    # several writers (the gateways' orders, the calendar's and the exchange's control): the
    # log is the truth, and the day's services over it again give the same outputs, byte for byte
    from streaming.services.day import replay_session

    again = SqliteEventLog(tmp_path / "replayed.sqlite")
    settings = Settings(data_dir=tmp_path / "data", calendar_toml=calendar)
    replay_session(log, again, day_config(settings, day, session_seed(42, day)))
    for topic in ("executions", "trades", "bbo", "bars.1s", "bars.1m", "bars.5m", "dlq"):
        assert _topic(again, topic) == _topic(log, topic), topic
    resting = [r for r in (decode(v) for v, _ in _topic(log, "executions"))
               if isinstance(r, ExecutionReport) and r.order_id == GATEWAY_ID_BASE + 3]  # fmt: skip
    assert [r.exec_type for r in resting][-1] in ("expired", "canceled"), resting


def test_a_crashed_exchange_day_is_kept_resumed_on_restart_and_reconciles(tmp_path):
    """Killed mid-session (no chance to close): the batch refuses to simulate the day again over
    the gateways' orders; the exchange, restarted on it while its session still runs on the
    clock, resumes it until the calendar's close; it lands and reconciles with no breaks, the
    outside orders included."""

    from streaming.services.day import SessionKept, ensure_session

    calendar = short_calendar(tmp_path)
    # the outside orders sell what no one holds before the first landed day: shorts allowed
    env = {**_env(tmp_path, calendar), "DAGSTER_HOME": str(tmp_path / "dagster"),
           "MARKETLAKE_ALLOW_SHORT": "true"}  # fmt: skip
    day = DAYS[0]
    # no simulator: nothing moves event time on while the test writes (a gateway stamps its
    # orders with the exchange clock; the test writes them by hand)
    proc = _exchange(env, "--from", day.isoformat(), "--days", "1", "--speed", "60",
                     "--no-simulator", "--no-members", start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        log, open_ts = _wait_for_open(tmp_path / "data" / "sessions" / f"{day}.sqlite", deadline)
        orders = _gateway_orders(open_ts + 1_000_000_000)  # a second after the open
        for o in orders:
            log.produce([Output("orders", o.symbol, encode(o), o.ts)])
        while time.monotonic() < deadline:  # until the matcher has answered all three
            mine = {
                decode(v).order_id
                for v, _ in _topic(log, "executions")  # type: ignore[union-attr]
                if decode(v).order_id >= GATEWAY_ID_BASE
            }  # type: ignore[union-attr]
            if len(mine) == 3:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the exchange and its services, no goodbye
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert session_state(log) == "truncated"
    before = _topic(log, "orders")
    settings = Settings(data_dir=tmp_path / "data", calendar_toml=calendar)
    with pytest.raises(SessionKept, match="3 orders or control events from outside"):
        ensure_session(log, day_config(settings, day, session_seed(42, day)))
    assert _topic(log, "orders") == before  # refused, and nothing discarded

    again = _exchange(env, "--from", day.isoformat(), "--days", "1", "--speed", "0")
    _, errs = again.communicate(timeout=300)
    assert again.returncode == 0, errs[-3000:]
    assert "resuming it until its close" in errs
    assert session_state(log) == "complete"
    controls = [decode(v) for v, _ in _topic(log, "control")]
    assert [(c.action, c.actor) for c in controls] == [  # type: ignore[union-attr]
        ("pre_open", "calendar"),
        ("open", "calendar"),
        ("close", "calendar"),
    ]  # none twice
    assert _topic(log, "orders") == before

    table = _land(env, tmp_path / "data", day)
    assert table("core.recon_breaks").num_rows == 0
    ids = set(table("raw.orders").column("order_id").to_pylist())
    assert {o.order_id for o in orders} <= ids


def test_both_gateways_trade_on_kafka_with_two_matchers(kafka, tmp_path):
    """The front door on the real broker: a member sells over HTTP, another buys over FIX,
    they trade through two matchers sharing four partitions; each hears only its own side."""
    import httpx

    from streaming.accounts import AccountStore
    from streaming.gateways.fix_client import FixClient, new_order, parse

    calendar = short_calendar(tmp_path)
    day = DAYS[1]
    data = tmp_path / "data"
    accounts = AccountStore(data / "accounts.sqlite")
    accounts.add("alice", "trader", "sells-over-http-on-kafka", member="USR01")
    accounts.add("bob", "trader", "buys-over-fix-on-kafka", member="USR02")
    namespace = f"gw{os.getpid()}{int(time.time()) % 100000}"
    env = {**_env(tmp_path, calendar), **kafka.env(), "MARKETLAKE_KAFKA_PARTITIONS": "4",
           "MARKETLAKE_NAMESPACE": namespace, "MARKETLAKE_ALLOW_SHORT": "true"}  # fmt: skip
    api_port, fix_port = free_port(), free_port()
    proc = _exchange(env, "--from", day.isoformat(), "--days", "1", "--speed", "60",
                     "--matchers", "2", "--no-simulator", "--no-members", "--api-port",
                     str(api_port), "--fix-port", str(fix_port))  # fmt: skip
    url = f"http://127.0.0.1:{api_port}/api/v1"
    fix = FixClient(tmp_path, fix_port, "USR02", "bob", "buys-over-fix-on-kafka")
    try:
        deadline = time.monotonic() + 180
        token = None
        while token is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.post(f"{url}/login", json={"name": "alice",
                                                     "password": "sells-over-http-on-kafka"})  # fmt: skip
                token = r.json()["token"] if r.status_code == 200 else None
            time.sleep(0.2)
        alice = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                             timeout=30)  # fmt: skip
        while alice.get("/session").json()["status"].get("AAPL") != "open":
            assert time.monotonic() < deadline, "the session did not open"
            time.sleep(0.2)
        sell = alice.post("/orders", json={"symbol": "AAPL", "side": "sell", "qty": 10,
                                           "price": "195.40", "cl_ord_id": "k-1"})  # fmt: skip
        assert sell.status_code == 201 and sell.json()["order"]["status"] == "new", sell.text
        fix.start(60)
        fix.send("D", *new_order("k-2", "AAPL", "1", 4, "195.40"))
        answers = [parse(fix.next(30, where=lambda m: m.get(11) == "k-2"))]
        while answers[-1].get(39) != "2":  # until filled
            answers.append(parse(fix.next(30, where=lambda m: m.get(11) == "k-2")))
        assert [a[150] for a in answers] == ["0", "F"], answers
        assert (answers[-1][31], answers[-1][32], answers[-1][6]) == ("195.4", "4", "195.4")
        mine = alice.get("/orders/k-1").json()
        assert (mine["status"], mine["cum_qty"], mine["leaves_qty"]) == ("partially_filled", 4, 6)
        assert alice.get("/orders/k-2").status_code == 404  # bob's, not hers
    finally:
        fix.stop()
        proc.send_signal(signal.SIGTERM)
        _, errs = proc.communicate(timeout=120)
    assert proc.returncode == 0, errs[-3000:]
