"""The API's WebSocket stream over a real venue and matcher: own orders only, market data,
resume after a reconnect with nothing missing and nothing twice."""

from __future__ import annotations

import time
import warnings
from typing import Any

import pytest

from tests.integration.test_http_api_fuzz import VALID, api  # noqa: F401 (the fixture)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

pytestmark = pytest.mark.integration
PASSWORDS = {"alice": "sells-AAPL-at-noon", "bob": "buys-AAPL-at-dawn",
             "vera": "watches-AAPL-all-day"}  # fmt: skip


def _token(client: TestClient, name: str) -> str:
    r = client.post("/api/v1/login", json={"name": name, "password": PASSWORDS[name]})
    return str(r.json()["token"])


def _events(ws: Any, n: int, timeout: float = 10) -> list[dict[str, Any]]:
    """At least ``n`` events (a paced stream sends them in arrays)."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        msg = ws.receive_json()
        out += [e for e in (msg if isinstance(msg, list) else [msg])
                if "seq" in e and "channel" in e]  # fmt: skip
    return out


def test_the_stream_needs_a_token_and_refuses_what_a_role_may_not_see(api):  # noqa: F811
    client, _ = api
    del client.headers["Authorization"]  # the fixture's client carries alice's token
    client.cookies.clear()  # and her login cookie
    with pytest.raises(WebSocketDisconnect) as no_token, \
            client.websocket_connect("/api/v1/stream") as ws:  # fmt: skip
        ws.receive_json()
    assert no_token.value.code == 1008
    with pytest.raises(WebSocketDisconnect), \
            client.websocket_connect("/api/v1/stream?token=forged.token") as ws:  # fmt: skip
        ws.receive_json()
    viewer = _token(client, "vera")
    with client.websocket_connect(f"/api/v1/stream?token={viewer}") as ws:
        ws.send_json({"symbols": ["AAPL"], "channels": ["orders"]})
        assert ws.receive_json()["reason"] == "orders are a trader's own"
    with client.websocket_connect(f"/api/v1/stream?token={viewer}") as ws:
        ws.send_json({"symbols": ["AAPL"], "channels": ["bbo"], "extra": 1})
        assert ws.receive_json()["reason"] == "invalid_subscription"


def test_own_orders_and_trades_stream_and_a_resume_misses_nothing(api):  # noqa: F811
    client, _ = api
    alice, bob = _token(client, "alice"), _token(client, "bob")
    headers = {"Authorization": f"Bearer {bob}"}
    sub = {"symbols": ["AAPL"], "channels": ["orders", "trades", "bbo"]}
    with client.websocket_connect(f"/api/v1/stream?token={alice}") as ws:
        ws.send_json(sub)
        hello = ws.receive_json()
        assert hello["type"] == "subscribed"
        client.headers["Authorization"] = f"Bearer {alice}"
        r = client.post("/api/v1/orders", json={**VALID, "side": "sell", "price": "195.00",
                                                "qty": 5, "cl_ord_id": "s-1"})  # fmt: skip
        assert r.status_code == 201, r.text
        r = client.post("/api/v1/orders", headers=headers,
                        json={**VALID, "price": "195.00", "qty": 5, "cl_ord_id": "b-1"})  # fmt: skip
        assert r.status_code == 201, r.text
        seen: list[dict[str, Any]] = []
        while (
            not {"trades", "orders"} <= {e["channel"] for e in seen}
            or sum(e["channel"] == "orders" for e in seen) < 2
        ):
            seen += _events(ws, 1)
        kinds = [(e["channel"], e["data"].get("exec_type")) for e in seen]
        assert ("orders", "new") in kinds and ("orders", "trade") in kinds, kinds
        assert ("trades", None) in kinds, kinds
        orders = [e for e in seen if e["channel"] == "orders"]
        assert all(e["data"]["order"]["cl_ord_id"] == "s-1" for e in orders)  # never bob's
        last = max(e["seq"] for e in seen)
    # away: more happens
    for i in range(3):
        r = client.post("/api/v1/orders", json={**VALID, "side": "sell", "price": "196.00",
                                                "qty": 1, "cl_ord_id": f"s-{i + 2}"})  # fmt: skip
        assert r.status_code == 201
    with client.websocket_connect(f"/api/v1/stream?token={alice}") as ws:
        ws.send_json({**sub, "since": last})
        assert ws.receive_json()["gap_from"] is None
        again = _events(ws, 3)
        assert [e["data"]["order"]["cl_ord_id"] for e in again if e["channel"] == "orders"][:3] == [
            "s-2",
            "s-3",
            "s-4",
        ]
        assert all(e["seq"] > last for e in again)  # nothing twice
        assert len({e["seq"] for e in again}) == len(again)


def test_a_paced_stream_starts_with_the_tops_and_then_sends_what_changed(api):  # noqa: F811
    """``conflate_ms``: one array per interval; the first holds the symbol's current top,
    later ones the latest top and every order update, never a number twice."""
    client, _ = api
    alice = _token(client, "alice")
    r = client.post("/api/v1/orders", json={**VALID, "side": "sell", "price": "197.00",
                                            "qty": 2, "cl_ord_id": "p-0"})  # fmt: skip
    assert r.status_code == 201, r.text
    with client.websocket_connect(f"/api/v1/stream?token={alice}") as ws:
        ws.send_json({"symbols": ["AAPL"], "channels": ["bbo", "orders"], "conflate_ms": 50})
        assert ws.receive_json()["type"] == "subscribed"
        first = ws.receive_json()
        assert isinstance(first, list) and len(first) == 1, first
        assert first[0]["channel"] == "bbo" and first[0]["data"]["asks"], first
        for i in range(1, 6):  # five new asks below the last: five tops, maybe conflated
            r = client.post("/api/v1/orders", json={**VALID, "side": "sell", "qty": 1,
                                                    "price": f"{197 - i}.00",
                                                    "cl_ord_id": f"p-{i}"})  # fmt: skip
            assert r.status_code == 201, r.text
        seen = first
        tops = lambda: [e["data"]["asks"][0][0] for e in seen if e["channel"] == "bbo"]  # noqa: E731
        while sum(e["channel"] == "orders" for e in seen) < 5 or "192" not in tops():
            seen += _events(ws, 1)
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(set(seqs))
    assert [e["data"]["order"]["cl_ord_id"] for e in seen if e["channel"] == "orders"] == [
        f"p-{i}" for i in range(1, 6)
    ]


def test_a_login_cookie_opens_the_stream_only_from_our_own_pages(api):  # noqa: F811
    """Browsers send cookies with a WebSocket that any site opens: another origin's is
    refused, our own page's (same host) is let in."""
    client, _ = api
    del client.headers["Authorization"]
    client.cookies.clear()
    _token(client, "vera")  # the login leaves the cookie in the client's jar
    follow = {"symbols": ["AAPL"], "channels": ["bbo"]}
    with pytest.raises(WebSocketDisconnect) as foreign, client.websocket_connect(
        "/api/v1/stream", headers={"origin": "http://elsewhere.example"}
    ) as ws:  # fmt: skip
        ws.receive_json()
    assert foreign.value.code == 1008
    with client.websocket_connect("/api/v1/stream",
                                  headers={"origin": "http://testserver"}) as ws:  # fmt: skip
        ws.send_json(follow)
        assert ws.receive_json()["type"] == "subscribed"
