"""The exchange's HTTP API, as programs use it: two members trade, an operator controls.

``marketlake exchange run --api-port`` runs a paced day without the simulator
or the members, so the only orders are the test's, sent over HTTP by two
traders' programs; an operator suspends, resumes and kills through the same
API. Every answer is checked against the day's log afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from streaming.accounts import AccountStore
from streaming.events import ExecutionReport, NewOrder, SessionControl, decode
from streaming.transport.sqlite import SqliteEventLog
from tests.support import free_port, short_calendar

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 20)
PASSWORD = {"alice": "sells-AAPL-at-noon", "bob": "buys-AAPL-at-dawn", "olga": "runs-the-market-9"}


FIX: dict[str, Any] = {}  # the exchange's FIX port and a work dir for the clients


@pytest.fixture(scope="module")
def exchange(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("http-api")
    FIX.update(port=free_port(), tmp=tmp)
    data = tmp / "data"
    accounts = AccountStore(data / "accounts.sqlite")
    accounts.add("alice", "trader", PASSWORD["alice"], member="USR01")
    accounts.add("bob", "trader", PASSWORD["bob"], member="USR02")
    accounts.add("olga", "operator", PASSWORD["olga"])
    port = free_port()
    env = {**os.environ, "MARKETLAKE_DATA_DIR": str(data),
           "MARKETLAKE_CALENDAR_TOML": str(short_calendar(tmp)), "MARKETLAKE_LOG_JSON": "1",
           # nobody holds shares before the first landed day: here members may sell short
           # (the default refusal is tested with the venue in test_http_api_fuzz)
           "MARKETLAKE_ALLOW_SHORT": "true"}  # fmt: skip
    # 15 min pre-open + 30 min session at 40x: 22 s until the open, then 45 s of trading
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "exchange", "run", "--from", DAY.isoformat(),
         "--days", "1", "--speed", "40", "--no-simulator", "--no-members",
         "--port", str(free_port()), "--api-port", str(port), "--fix-port", str(FIX["port"])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health").json()["day"] == DAY.isoformat():
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    yield url, data / "sessions" / f"{DAY}.sqlite"
    proc.send_signal(signal.SIGTERM)
    _, errs = proc.communicate(timeout=60)
    assert proc.returncode == 0, errs[-3000:]  # stopped cleanly, mid-session
    assert '"stopped during the session: closing it"' in errs
    # the day's log had many writers (two members over HTTP and FIX, an operator, the
    # calendar, the exchange's close): its services over it again give it back byte for byte
    from assets.platform.resources import day_config
    from settings import Settings
    from streaming.services.day import replay_session, session_seed

    day_log = SqliteEventLog(data / "sessions" / f"{DAY}.sqlite")
    again = SqliteEventLog(tmp / "replayed.sqlite")
    settings = Settings(data_dir=data, calendar_toml=Path(env["MARKETLAKE_CALENDAR_TOML"]))
    replay_session(day_log, again, day_config(settings, DAY, session_seed(42, DAY)))
    for topic in ("executions", "trades", "bbo", "bars.1s", "bars.1m", "dlq"):
        mine = [(r.value, r.timestamp) for p in sorted(again.end_offsets(topic))
                for r in again.read(topic, p)]  # fmt: skip
        live = [(r.value, r.timestamp) for p in sorted(day_log.end_offsets(topic))
                for r in day_log.read(topic, p)]  # fmt: skip
        assert mine == live and (live or topic == "dlq"), topic


def _client(url: str, name: str) -> httpx.Client:
    token = httpx.post(f"{url}/api/v1/login", json={"name": name, "password": PASSWORD[name]})
    assert token.status_code == 200, token.text
    return httpx.Client(base_url=f"{url}/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {token.json()['token']}"})  # fmt: skip


def _wait_open(client: httpx.Client, symbol: str = "AAPL") -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = client.get("/session").json()["status"]
        if status.get(symbol, status.get("*")) == "open":
            return
        time.sleep(0.2)
    raise AssertionError("the session did not open")


def test_nothing_is_open_without_a_token(exchange):
    url, _ = exchange
    assert httpx.get(f"{url}/api/v1/orders").status_code == 401
    assert httpx.get(f"{url}/api/v1/session").status_code == 401
    bad = httpx.get(f"{url}/api/v1/orders", headers={"Authorization": "Bearer forged.token"})
    assert bad.status_code == 401
    wrong = httpx.post(f"{url}/api/v1/login", json={"name": "alice", "password": "not-hers-at-all"})
    assert wrong.status_code == 401
    assert httpx.get(f"{url}/health").status_code == 200  # health only
    assert httpx.get(f"{url}/docs").status_code == 401  # the docs too
    assert httpx.get(f"{url}/openapi.json").status_code == 401


def test_a_browser_logs_in_with_a_cookie_that_scripts_cannot_read(exchange):
    """The login sets the token as an HttpOnly, SameSite=Strict cookie: it opens the docs
    and the API; logging out forgets it."""
    url, _ = exchange
    browser = httpx.Client(base_url=url)
    r = browser.post("/api/v1/login", json={"name": "alice", "password": PASSWORD["alice"]})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert browser.get("/docs").status_code == 200
    spec = browser.get("/openapi.json").json()
    assert "/api/v1/orders" in spec["paths"] and "/openapi.json" not in spec["paths"]
    assert browser.get("/api/v1/session").status_code == 200
    assert browser.post("/api/v1/logout").status_code == 200
    assert browser.get("/api/v1/session").status_code == 401


def test_two_members_trade_and_neither_sees_the_others_orders(exchange):
    url, log_path = exchange
    alice, bob = _client(url, "alice"), _client(url, "bob")
    _wait_open(alice)
    sell = alice.post("/orders", json={"symbol": "AAPL", "side": "sell", "qty": 10,
                                       "price": "195.40", "cl_ord_id": "a-1"})  # fmt: skip
    assert sell.status_code == 201, sell.text
    assert sell.json()["order"]["status"] == "new"
    buy = bob.post("/orders", json={"symbol": "AAPL", "side": "buy", "qty": 4, "type": "market",
                                    "tif": "ioc", "cl_ord_id": "b-1"})  # fmt: skip
    assert buy.status_code == 201, buy.text
    assert buy.json()["order"]["status"] == "filled"
    assert buy.json()["order"]["avg_px"] == "195.4"
    time.sleep(0.2)  # the resting side's fill report follows the taker's
    mine = alice.get("/orders/a-1").json()
    assert (mine["status"], mine["cum_qty"], mine["leaves_qty"]) == ("partially_filled", 4, 6)
    # the market and bob's account show the trade
    tape = bob.get("/market/AAPL/trades").json()
    assert [(t["price"], t["qty"], t["aggressor"]) for t in tape] == [("195.4", 4, "buy")]
    deadline = time.monotonic() + 10
    while bob.get("/market/AAPL/book").json()["asks"] != [["195.4", 6]]:
        assert time.monotonic() < deadline, bob.get("/market/AAPL/book").json()
        time.sleep(0.05)
    account = bob.get("/account").json()
    assert account["positions"] == [{"symbol": "AAPL", "qty": 4, "avg_cost": "195.4",
                                     "mark": "195.4", "unrealized": "0"}]  # fmt: skip
    assert (account["cash"], account["fills"]) == ("99218.4", 1)  # 100,000 - 4 x 195.40
    refdata = {s["symbol"]: s for s in bob.get("/securities").json()}
    assert (refdata["KO"]["tick"], refdata["KO"]["lot"]) == ("0.01", 10)
    assert bob.get("/market/AAPL/bars", params={"interval": "1m"}).status_code == 200
    assert bob.get("/market/NOPE/book").status_code == 404
    # bob cannot find, cancel or amend alice's order; his list has only his own
    assert bob.get("/orders/a-1").status_code == 404
    assert bob.delete("/orders/a-1").status_code == 404
    assert bob.patch("/orders/a-1", json={"qty": 5}).status_code == 404
    assert [o["cl_ord_id"] for o in bob.get("/orders").json()] == ["b-1"]
    # alice replaces and cancels her own; a used client id is refused
    amended = alice.patch("/orders/a-1", json={"qty": 8, "price": "195.50", "cl_ord_id": "a-2"})
    assert amended.status_code == 200, amended.text
    assert amended.json()["order"]["cl_ord_ids"] == ["a-1", "a-2"]
    dup = alice.post("/orders", json={"symbol": "AAPL", "side": "sell", "qty": 1,
                                      "price": "195.40", "cl_ord_id": "a-1"})  # fmt: skip
    assert (dup.status_code, dup.json()["reason"]) == (409, "duplicate_cl_ord_id")
    gone = alice.delete("/orders/a-1")  # the first id of the chain still names it
    assert gone.status_code == 200 and gone.json()["order"]["status"] == "canceled"
    # every answer agrees with the log
    log = SqliteEventLog(log_path)
    reports = [decode(r.value) for r in log.read("executions", 0)]
    fills = [r for r in reports if isinstance(r, ExecutionReport) and r.exec_type == "trade"]
    assert sorted((f.member, f.last_qty, f.last_price) for f in fills) == [
        ("USR01", 4, 1_954_000), ("USR02", 4, 1_954_000)]  # fmt: skip


def test_rejects_carry_the_reason_and_bad_bodies_name_the_field(exchange):
    url, _ = exchange
    alice = _client(url, "alice")
    _wait_open(alice)
    off_tick = alice.post("/orders", json={"symbol": "AAPL", "side": "buy", "qty": 1,
                                           "price": "195.401"})  # fmt: skip
    assert (off_tick.status_code, off_tick.json()["reason"]) == (422, "tick_size")
    for body, field in (({"symbol": "AAPL", "side": "buy", "qty": "ten", "price": "1"}, "qty"),
                        ({"symbol": "AAPL", "side": "up", "qty": 1, "price": "1"}, "side"),
                        ({"symbol": "AAPL", "side": "buy", "qty": 1, "price": "abc"}, "price"),
                        ({"symbol": "AAPL", "side": "buy", "qty": 1, "px": "1"}, "px")):  # fmt: skip
        bad = alice.post("/orders", json=body)
        assert bad.status_code == 422
        assert field in {str(loc) for e in bad.json()["detail"] for loc in e["loc"]}, bad.text
    # a viewer or an operator does not trade; a trader does not control
    olga = _client(url, "olga")
    assert olga.post("/orders", json={"symbol": "AAPL", "side": "buy", "qty": 1,
                                      "price": "195.40"}).status_code == 403  # fmt: skip
    assert alice.post("/control", json={"action": "suspend", "reason": "me"}).status_code == 403


def test_an_idempotency_key_never_enters_a_second_order(exchange):
    url, log_path = exchange
    bob = _client(url, "bob")
    _wait_open(bob)
    body = {"symbol": "KO", "side": "buy", "qty": 10, "price": "58.60"}
    first = bob.post("/orders", json=body, headers={"Idempotency-Key": "retry-1"})
    again = bob.post("/orders", json=body, headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replay"] == "1"
    # eight copies at once (a client retrying before the first answered): one order
    racing = {**body, "qty": 20}

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(bob.base_url), headers=bob.headers,
                                     timeout=30) as client:  # fmt: skip
            return list(await asyncio.gather(*(
                client.post("/orders", json=racing, headers={"Idempotency-Key": "retry-2"})
                for _ in range(8))))  # fmt: skip

    copies = asyncio.run(race())
    assert {c.status_code for c in copies} == {201}, copies[0].text
    assert len({c.json()["order"]["order_id"] for c in copies}) == 1
    assert sum(c.headers.get("Idempotent-Replay") == "1" for c in copies) == 7
    log = SqliteEventLog(log_path)
    kos = [decode(r.value) for r in log.read("orders", 0)]
    assert sorted(o.qty for o in kos if isinstance(o, NewOrder) and o.symbol == "KO") == [10, 20]


def test_an_operator_suspends_resumes_and_kills(exchange):
    url, log_path = exchange
    alice, bob, olga = _client(url, "alice"), _client(url, "bob"), _client(url, "olga")
    _wait_open(olga)
    suspended = olga.post("/control", json={"action": "suspend", "symbol": "MSFT",
                                            "reason": "news pending"})  # fmt: skip
    assert suspended.status_code == 202, suspended.text
    deadline = time.monotonic() + 10
    while olga.get("/session").json()["status"].get("MSFT") != "suspended":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    refused = bob.post("/orders", json={"symbol": "MSFT", "side": "buy", "qty": 1,
                                        "price": "385.20"})  # fmt: skip
    assert (refused.status_code, refused.json()["reason"]) == (422, "session_suspended")
    olga.post("/control", json={"action": "resume", "symbol": "MSFT", "reason": "news out"})
    _wait_open(olga, "MSFT")
    # the kill switch: exactly alice's open orders go, bob's stay
    for i in range(3):
        assert alice.post("/orders", json={"symbol": "AAPL", "side": "buy", "qty": 1,
                                           "price": f"19{i}.00"}).status_code == 201  # fmt: skip
    assert bob.post("/orders", json={"symbol": "AAPL", "side": "buy", "qty": 1,
                                     "price": "190.00", "cl_ord_id": "b-rest"}).status_code == 201  # fmt: skip
    assert olga.post("/control", json={"action": "kill", "member": "USR01",
                                       "reason": "runaway algo"}).status_code == 202  # fmt: skip
    deadline = time.monotonic() + 10
    while alice.get("/orders", params={"open_only": True}).json():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert {o["reason"] for o in alice.get("/orders").json() if o["status"] == "canceled"} >= {
        "kill_switch"}  # fmt: skip
    assert bob.get("/orders/b-rest").json()["status"] == "new"
    # every action is on the log with who did it and why
    log = SqliteEventLog(log_path)
    controls = [decode(r.value) for r in log.read("control", 0)]
    ops = [(c.action, c.actor, c.reason) for c in controls
           if isinstance(c, SessionControl) and c.actor == "olga"]  # fmt: skip
    assert ops == [("suspend", "olga", "news pending"), ("resume", "olga", "news out"),
                   ("kill", "olga", "runaway algo")]  # fmt: skip


def test_a_fix_order_and_an_api_order_trade_on_one_venue(exchange):
    """The FIX acceptor of the same exchange: alice buys over FIX, bob sells over HTTP; one
    trade, each side told in its own protocol; client order ids are one space per member."""
    from streaming.gateways.fix_client import FixClient, new_order, parse

    url, _ = exchange
    bob = _client(url, "bob")
    _wait_open(bob)
    alice_fix = FixClient(FIX["tmp"], FIX["port"], "USR01", "alice", PASSWORD["alice"]).start()
    try:
        rest = bob.post("/orders", json={"symbol": "MSFT", "side": "sell", "qty": 7,
                                         "price": "390.00", "cl_ord_id": "bob-fix-1"})  # fmt: skip
        assert rest.status_code == 201, rest.text
        alice_fix.send("D", *new_order("alice-fix-1", "MSFT", "1", 7, "390.00"))
        ack = parse(alice_fix.next())
        fill = parse(alice_fix.next()) if ack[150] != "F" else ack
        assert (fill[35], fill[150], fill[39], fill[14], fill[31]) == ("8", "F", "2", "7", "390")
        deadline = time.monotonic() + 10
        while bob.get("/orders/bob-fix-1").json()["status"] != "filled":
            assert time.monotonic() < deadline, bob.get("/orders/bob-fix-1").text
            time.sleep(0.1)
        alice = _client(url, "alice")
        dup = alice.post("/orders", json={"symbol": "MSFT", "side": "buy", "qty": 1,
                                          "price": "400.00", "cl_ord_id": "alice-fix-1"})  # fmt: skip
        assert dup.status_code == 409 and dup.json()["reason"] == "duplicate_cl_ord_id"
        order = alice.get("/orders/alice-fix-1").json()  # the API shows the FIX order too
        assert (order["status"], order["avg_px"]) == ("filled", "390")
    finally:
        alice_fix.stop()
