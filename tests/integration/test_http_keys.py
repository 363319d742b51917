"""API keys: a program acts as an account with a key instead of a password login."""

from __future__ import annotations

import pytest

from streaming.accounts import AccountStore
from tests.integration.test_http_api_fuzz import VALID, api  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration


def test_a_key_acts_as_its_account_until_revoked(api, tmp_path):  # noqa: F811
    client, _ = api
    del client.headers["Authorization"]
    store = AccountStore(tmp_path / "accounts.sqlite")
    key = store.add_key("alice", label="market maker")
    assert key.startswith("mlk_") and "market maker" in [k.label for k in store.keys("alice")]
    stored = (tmp_path / "accounts.sqlite").read_bytes()
    assert key.split("_")[2].encode() not in stored  # only the hash is kept
    as_header = client.post("/api/v1/orders", headers={"X-API-Key": key},
                            json={**VALID, "cl_ord_id": "k-1"})  # fmt: skip
    assert as_header.status_code == 201, as_header.text
    as_bearer = client.get("/api/v1/orders", headers={"Authorization": f"Bearer {key}"})
    assert [o["cl_ord_id"] for o in as_bearer.json()] == ["k-1"]  # alice's orders, as alice
    with client.websocket_connect("/api/v1/stream", headers={"X-API-Key": key}) as ws:
        ws.send_json({"symbols": ["AAPL"], "channels": ["orders"]})
        assert ws.receive_json()["type"] == "subscribed"
    for bad in (key[:-1] + ("A" if key[-1] != "A" else "B"), "mlk_000000000000_" + "x" * 43,
                "mlk_", key + "x"):  # fmt: skip
        refused = client.get("/api/v1/orders", headers={"X-API-Key": bad})
        assert refused.status_code == 401 and refused.json()["reason"] == "unauthorized"
    (only,) = store.keys("alice")
    assert only.last_used is not None
    store.revoke_key(only.key_id)
    assert client.get("/api/v1/orders", headers={"X-API-Key": key}).status_code == 401
