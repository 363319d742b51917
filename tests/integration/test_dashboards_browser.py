"""Superset's dashboards in a real browser: logged in, every chart rendered, screenshots kept.

The stack's Superset with the bundle deployed on two landed days (the session's
fixtures in conftest.py, shared with test_dashboards.py). Headless Chromium
logs in through Superset's login form as the generated admin, opens each of
the four dashboards and waits until every chart on it has rendered (no
spinner left, each chart drew an svg, a canvas, a table, a big number or an
empty state) with no error alert on the page; one screenshot per dashboard
goes to MARKETLAKE_TEST_ARTIFACTS (default ``build/test-artifacts``) as
``superset-<slug>.png``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make system-deps``);
skips without them, fails under CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from orchestration.bench.dashboards_bench import (
    browser_missing,
    chromium,
    login,
    render,
    screenshot,
)
from streaming.accounts import AccountStore
from tests.support.dashboards import stack_settings

pytestmark = pytest.mark.e2e
VIEWER_PASSWORD = "Quiet-Harbor-Lantern-7"

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = {  # slug: charts on it
    "market": 7,
    "clearing": 8,
    "intelligence": 4,
    "platform-health": 7,
}


def _artifacts() -> Path:
    path = Path(os.environ.get("MARKETLAKE_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Debian's headless Chromium (never anything downloaded by Selenium Manager)."""
    missing = browser_missing()
    if missing:
        message = f"{' and '.join(missing)} missing: run make system-deps (Debian chromium, chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def logged_in(browser, dashboards_superset, dashboards_deployed) -> str:
    """Superset's base URL, the browser logged in through the form as the generated admin."""
    svc = dashboards_superset
    assert svc.credentials_file.is_file()  # where `marketlake stack status` points a person
    login(browser, svc.url, svc.admin_user, svc.admin_password)
    return svc.url


def test_the_bundle_has_these_dashboards(dashboards_deployed: dict[str, Any]) -> None:
    charts = {c["id"] for c in dashboards_deployed["charts"]}
    assert len(dashboards_deployed["dashboards"]) == len(DASHBOARDS)
    assert len(charts) == sum(DASHBOARDS.values())


@pytest.mark.parametrize("slug", list(DASHBOARDS))
def test_dashboard_renders_every_chart_without_error(browser, logged_in, slug):
    shown = render(browser, logged_in, slug, DASHBOARDS[slug], timeout=180)
    path = screenshot(browser, _artifacts() / f"superset-{slug}.png")
    assert shown.errors == [], f"{slug}: error alerts {shown.errors} (see {path})"
    assert shown.pending == [], f"{slug}: not rendered {shown.pending} (see {path})"
    assert len(shown.charts) == DASHBOARDS[slug]
    assert "/login" not in browser.current_url
    assert path.stat().st_size > 20_000, f"{path} is {path.stat().st_size} bytes"


def test_a_platform_viewer_sees_a_dashboard_rendered(
    browser, dashboards_env, dashboards_superset, dashboards_deployed
):
    """A platform viewer's read-only role is enough for a whole dashboard and its filters
    (in a browser of its own: ``browser`` stays the admin's)."""
    store = AccountStore(stack_settings(dashboards_env).accounts_path)
    if store.get("val.viewer") is None:
        store.add("val.viewer", "viewer", VIEWER_PASSWORD)
    with chromium() as driver:
        login(driver, dashboards_superset.url, "val.viewer", VIEWER_PASSWORD)
        shown = render(driver, dashboards_superset.url, "market", DASHBOARDS["market"], timeout=180)
    assert shown.errors == [] and shown.pending == [], shown
