"""The Dagster UI in a real browser, logged in: a backfilled day's assets and run, screenshots kept.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make system-deps``); skips
without them, fails under CI. Screenshots go to MARKETLAKE_TEST_ARTIFACTS
(default ``build/test-artifacts``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.support import free_port, short_calendar, stop_group

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DAY = "2026-11-17"
OPERATOR = ("olga", "operator secret 1")
LOGIN = "/_marketlake/login"
ASSETS = ("simulated_session", "market_daily", "settlement_report")
CHROME_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--window-size=1600,2200",
)  # fmt: skip


def _artifacts() -> Path:
    path = Path(os.environ.get("MARKETLAKE_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    calendar = short_calendar(tmp_path, close="09:20")
    dagster_home = tmp_path / "dagster"
    # the community dialog's "Skip" writes this file; without it the dialog covers the page
    (dagster_home / ".nux").mkdir(parents=True)
    (dagster_home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    return {
        **os.environ,
        "MARKETLAKE_DATA_DIR": str(tmp_path / "data"),
        "MARKETLAKE_CALENDAR_TOML": str(calendar),
        "DAGSTER_HOME": str(dagster_home),
    }


@pytest.fixture
def day_run(env: dict[str, str]) -> dict[str, Any]:
    """``marketlake backfill`` of one day: its run as the JSON output gives it."""
    proc = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "backfill", "--from", DAY, "--to", DAY, "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the JSON is the last line (a tool run by an asset may print to stdout before it)
    [run] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert run["day"] == DAY and run["success"]
    return run


@pytest.fixture
def ui(env: dict[str, str], day_run: dict[str, Any]) -> Iterator[str]:
    """``marketlake ui`` on a free port (no daemon), after the backfill and with an operator
    account; its base URL once it answers."""
    name, password = OPERATOR
    subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "accounts", "add", name, "--role", "operator",
         "--password-stdin"],
        input=password + "\n", text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    port = free_port()
    log = Path(env["DAGSTER_HOME"]) / "ui.log"
    with log.open("wb") as out:
        # its own process group: the webserver and its code server go down with it
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestration.cli", "ui", "--port", str(port), "--no-daemon"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}{LOGIN}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Dagster UI did not come up on {base}:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield base
    finally:
        stop_group(proc, 30)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    """Debian's headless Chromium; never anything downloaded by Selenium Manager."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        message = f"{' and '.join(missing)} missing: run make system-deps (Debian chromium, chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver, name: str, what: str, until: Callable[[WebDriver], object]) -> None:
    """Wait (slow machines: generously) for ``until``; on timeout keep a screenshot to look at."""
    try:
        WebDriverWait(driver, 90, poll_frequency=0.5).until(until, what)
    except TimeoutException:
        driver.save_screenshot(str(_artifacts() / f"{name}-timeout.png"))
        raise


def _text(driver: WebDriver) -> str:
    try:
        return driver.find_element(By.TAG_NAME, "body").text
    except WebDriverException:
        return ""


def _settled(driver: WebDriver, name: str, label: str) -> None:
    """Wait until the node labelled ``label`` stops moving (layout and zoom-to-fit done)."""
    xpath = f"//*[normalize-space(text())='{label}']"
    last: list[object] = [None]

    def still(d: WebDriver) -> bool:
        found = d.find_elements(By.XPATH, xpath)
        rect = found[0].rect if found and found[0].is_displayed() else None
        steady, last[0] = rect is not None and rect == last[0], rect
        return steady

    _wait(driver, name, f"{label} to stop moving", still)


def _keys(driver: WebDriver, key: str) -> None:
    """A keyboard shortcut: ⌥ ``key``."""
    ActionChains(driver).key_down(Keys.ALT).send_keys(key).key_up(Keys.ALT).perform()
    time.sleep(0.5)


def _screenshot(driver: WebDriver, name: str) -> Path:
    time.sleep(1)  # a last paint after the DOM settled
    path = _artifacts() / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000, f"{path} is {path.stat().st_size} bytes"
    return path


def _login(driver: WebDriver, ui: str) -> None:
    """The login form, as a user fills it in; Dagster's UI follows."""
    name, password = OPERATOR
    driver.get(f"{ui}{LOGIN}")
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(password, Keys.ENTER)
    _wait(driver, "login", "Dagster after the login", lambda d: LOGIN not in d.current_url)


def test_ui_shows_the_backfilled_assets_and_run(browser, ui, day_run):
    run = day_run

    _login(browser, ui)

    # the global asset lineage, top to bottom so it fits the window: navigation (⌥B) and
    # sidebar hidden before every group is expanded (⌥E), whose layout then fits the whole width
    browser.get(f"{ui}/server_info")
    browser.execute_script("localStorage.setItem('asset-graph-direction', '\"vertical\"')")
    browser.get(f"{ui}/asset-groups")
    _wait(browser, "asset-graph", "the lineage page", lambda d: "Materialize all (" in _text(d))
    _keys(browser, "b")
    hide_sidebar = '//button[.//*[@aria-label="panel_show_right"]]'
    for button in browser.find_elements(By.XPATH, hide_sidebar):
        button.click()
    if ASSETS[0] not in _text(browser):
        _keys(browser, "e")
    _wait(browser, "asset-graph", f"assets {ASSETS}", lambda d: all(a in _text(d) for a in ASSETS))
    _settled(browser, "asset-graph", "settlement_report")
    assert "Join the Dagster community" not in _text(browser)
    for asset in ASSETS:
        node = browser.find_element(By.XPATH, f"//*[normalize-space(text())='{asset}']")
        assert node.is_displayed(), asset
    _screenshot(browser, "dagster-asset-graph")

    # the backfill's run: succeeded, every step succeeded
    browser.get(f"{ui}/runs/{run['run_id']}")
    steps = f"Succeeded ({len(run['steps'])})"
    _wait(browser, "run", "the run's status", lambda d: "[SUCCESS]" in d.title)
    _wait(
        browser, "run", "the run's steps and events",
        lambda d: all(s in _text(d) for s in ("Success", steps, "RUN_SUCCESS", f"partition: {DAY}")),
    )  # fmt: skip
    assert run["run_id"][:8] in _text(browser)
    _settled(browser, "run", "RUN_SUCCESS")
    _screenshot(browser, "dagster-run")
