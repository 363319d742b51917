"""Superset's logins follow the platform's accounts: operators administer, viewers only read.

The session's Superset (conftest.py) with the bundle deployed on landed days, its
accounts file the one ``marketlake accounts`` edits in the session's data
directory. Accounts are added here through the platform's own store, after
Superset started: each login reads the file afresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dashboards.provisioning import SupersetClient, SupersetError, SupersetLogin
from deploy.superset.superset_service import SupersetService
from streaming.accounts import AccountStore
from tests.support.dashboards import stack_settings

pytestmark = pytest.mark.integration

PASSWORD = "Tall-Ledger-Sunrise-42"


@pytest.fixture(scope="module")
def accounts(dashboards_env) -> AccountStore:
    store = AccountStore(stack_settings(dashboards_env).accounts_path)
    for name, role, member in (
        ("olga.ops", "operator", None), ("vera.view", "viewer", None),
        ("tomas.trade", "trader", "USR01"), ("gone.viewer", "viewer", None),
    ):  # fmt: skip
        if store.get(name) is None:
            store.add(name, role, PASSWORD, member)
    return store


def _login(superset: SupersetService, name: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{superset.url}/api/v1/security/login",
        json={"username": name, "password": password, "provider": "db", "refresh": False},
        trust_env=False,
        timeout=60,
    )


@pytest.fixture
def as_user(dashboards_superset, accounts) -> Iterator[Any]:
    opened: list[SupersetClient] = []

    def open_as(name: str) -> SupersetClient:
        client = SupersetClient(SupersetLogin(dashboards_superset.url, name, PASSWORD))
        opened.append(client)
        return client

    yield open_as
    for client in opened:
        client.close()


def _roles(client: SupersetClient) -> set[str]:
    return set(client.get("/api/v1/me/roles/")["result"]["roles"])


def test_an_operator_is_a_superset_admin(as_user, dashboards_deployed):
    client = as_user("olga.ops")
    assert _roles(client) == {"Admin"}
    made = client.post("/api/v1/dashboard/", {"dashboard_title": "scratch by an operator"})
    assert client.http.delete(f"/api/v1/dashboard/{made['id']}").status_code == 200


def test_a_viewer_reads_every_dashboard_and_chart(as_user, dashboards_deployed):
    client = as_user("vera.view")
    assert _roles(client) == {"Viewer"}
    boards = client.listing("dashboard", ("id", "dashboard_title"))
    assert {b["dashboard_title"] for b in boards} == {
        d["title"] for d in dashboards_deployed["dashboards"]
    }
    for chart in dashboards_deployed["charts"]:
        answer = client.chart_data(int(chart["id"]))
        assert not [r["error"] for r in answer["result"] if r.get("error")], chart


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/dashboard/", {"dashboard_title": "by a viewer"}),
        ("POST", "/api/v1/chart/", {"slice_name": "x", "datasource_id": 1,
                                    "datasource_type": "table", "viz_type": "table"}),
        ("PUT", "/api/v1/dashboard/{dashboard}", {"dashboard_title": "renamed by a viewer"}),
        ("DELETE", "/api/v1/chart/{chart}", None),
        ("DELETE", "/api/v1/dashboard/{dashboard}", None),
        ("POST", "/api/v1/sqllab/execute/", {"database_id": 1, "sql": "SELECT 1"}),
        ("GET", "/api/v1/security/users/", None),
        ("POST", "/api/v1/database/", {"database_name": "x", "sqlalchemy_uri": "sqlite://"}),
    ],
    ids=["new dashboard", "new chart", "rename dashboard", "delete chart", "delete dashboard",
         "sql lab", "users", "new database"],
)  # fmt: skip
def test_a_viewer_changes_nothing(as_user, dashboards_deployed, method, path, body):
    client = as_user("vera.view")
    ids = {
        "dashboard": dashboards_deployed["dashboards"][0]["id"],
        "chart": dashboards_deployed["charts"][0]["id"],
    }
    response = client.http.request(method, path.format(**ids), json=body)
    assert response.status_code == 403, (response.status_code, response.text[:300])
    admin = as_user("olga.ops")
    assert {d["id"] for d in admin.listing("dashboard", ("id",))} >= {ids["dashboard"]}
    assert admin.get(f"/api/v1/chart/{ids['chart']}")["result"]["id"] == ids["chart"]


@pytest.mark.parametrize(
    ("name", "password"),
    [("tomas.trade", PASSWORD), ("vera.view", PASSWORD + "x"), ("nobody.here", PASSWORD),
     ("vera.view", "")],
    ids=["a trader", "a wrong password", "an unknown name", "an empty password"],
)  # fmt: skip
def test_refused(dashboards_superset, accounts, name, password):
    answer = _login(dashboards_superset, name, password)
    assert answer.status_code == (400 if not password else 401)  # 400: the form refuses ""
    assert "access_token" not in answer.text


def test_a_removed_account_cannot_log_in_any_more(dashboards_superset, accounts):
    assert _login(dashboards_superset, "gone.viewer").status_code == 200
    accounts.remove("gone.viewer")
    assert _login(dashboards_superset, "gone.viewer").status_code == 401


def test_the_local_admin_stays_superset_s_own(dashboards_superset, accounts):
    """A platform account cannot take the generated admin's name; the admin still logs in."""
    svc = dashboards_superset
    if accounts.get(svc.admin_user) is None:
        accounts.add(svc.admin_user, "operator", PASSWORD)
    assert _login(svc, svc.admin_user, PASSWORD).status_code == 401
    assert _login(svc, svc.admin_user, svc.admin_password).status_code == 200
    with pytest.raises(SupersetError, match="401"):
        SupersetClient(SupersetLogin(svc.url, svc.admin_user, PASSWORD))
