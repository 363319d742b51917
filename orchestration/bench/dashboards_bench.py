"""The dashboards benchmark: Superset's charts and dashboards on the stack's lake, timed.

1. Days: ``days`` simulated trading days landed into the stack's lake as
   ``marketlake demo`` lands one in stack mode (the lake on MinIO, recorded
   news), each in a scratch data directory with the session closing at 09:30
   so that a day takes seconds of simulation (:func:`land_days`); then
   ``marketlake dashboards deploy`` (checked, imported, every chart run once).
2. Charts: every chart's saved query through Superset's chart data API
   (``GET /api/v1/chart/<id>/data/?force=true``: on the lake, never from
   Superset's cache), one warm-up run, then ``runs`` timed runs; p50 and p95.
3. Dashboards: headless Chromium (Debian's ``chromium`` and ``chromedriver``)
   logs in through Superset's login form, then each dashboard is opened and
   timed from the navigation until every chart on it has rendered
   (:func:`render`): no loading spinner left, each chart's container drew an
   svg, a canvas, a table, a big number or an empty state, and no error alert
   anywhere on the page. One warm-up load first, then the median of ``loads``.

Targets: every chart's warm p95 under ``TARGET_CHART_S``, every dashboard
rendered under ``TARGET_DASHBOARD_S``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

DEFAULT_DAYS = 20  # what the targets are stated for
TARGET_CHART_S = 2.0
TARGET_DASHBOARD_S = 5.0
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking",
)  # fmt: skip
WINDOW = (1600, 3200)  # tall enough that every chart is in view (Superset renders what is seen)
SESSION_CLOSE = "09:30"  # the scratch calendar's close: a landed day simulates in seconds

# One entry per chart on the page: its name, whether a spinner is still shown, whether
# its container drew something, and any error alert in it; plus the page's error alerts.
_STATE_JS = """
const charts = [...document.querySelectorAll('[data-test="chart-grid-component"]')].map(c => {
  const body = c.querySelector('[data-test="chart-container"]');
  return {
    name: c.getAttribute('data-test-chart-name') || '',
    loading: !!c.querySelector('[data-test="loading-indicator"]'),
    drawn: !!(body && body.querySelector(
      'svg, canvas, table, .header-line, .ant-empty, [class*="empty-state"], .empty-state')),
    error: [...c.querySelectorAll('.ant-alert-error')].map(e => e.innerText).join(' '),
  };
});
const errors = [...document.querySelectorAll('.ant-alert-error')].map(e => e.innerText);
return {charts: charts, errors: errors, url: location.pathname};
"""


class DashboardsBenchError(RuntimeError):
    """What the benchmark (or the browser test) could not do, said for a person."""


# -- landing days ---------------------------------------------------------------------------


def short_calendar(directory: Path, close: str = SESSION_CLOSE) -> Path:
    """The exchange's calendar with the session closing at ``close`` (a day takes seconds)."""
    source = Path(__file__).resolve().parents[2] / "streaming" / "refdata" / "calendar.toml"
    path = directory / "calendar.toml"
    path.write_text(source.read_text().replace('close = "15:30"', f'close = "{close}"'))
    return path


def landing_env(env: dict[str, str], work: Path, calendar: Path) -> dict[str, str]:
    """What :func:`land_days` runs ``marketlake`` with: the stack's lake, ``work``'s instance."""
    (work / "dagster").mkdir(parents=True, exist_ok=True)
    return {
        **env,
        "MARKETLAKE_LAKE_STORAGE": "s3",
        "MARKETLAKE_DATA_DIR": str(work / "data"),
        "MARKETLAKE_CALENDAR_TOML": str(calendar),
        "DAGSTER_HOME": str(work / "dagster"),
    }


def land_days(
    env: dict[str, str], days: Sequence[tuple[date, int]], work: Path, calendar: Path
) -> dict[date, dict[str, Any]]:
    """``marketlake demo --date D --seed S --json`` per day into the stack ``env`` points at.

    The lake on the stack (``MARKETLAKE_LAKE_STORAGE=s3``); the event log, sessions and
    Dagster instance in ``work``. Returns each day's JSON summary.
    """
    day_env = landing_env(env, work, calendar)
    summaries = {}
    for day, seed in days:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestration.cli", "demo", "--date", day.isoformat(),
             "--seed", str(seed), "--json"],
            capture_output=True, text=True, env=day_env, timeout=900,
        )  # fmt: skip
        if proc.returncode != 0:
            raise DashboardsBenchError(f"landing {day} failed:\n{proc.stderr[-4000:]}")
        summaries[day] = json.loads(proc.stdout)
    return summaries


# -- the browser ----------------------------------------------------------------------------


def browser_missing() -> list[str]:
    """Debian's chromium and chromedriver, whichever of them is not installed."""
    return [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]


@contextmanager
def chromium(window: tuple[int, int] = WINDOW) -> Iterator[WebDriver]:
    """Debian's headless Chromium; never anything downloaded by Selenium Manager."""
    missing = browser_missing()
    if missing:
        raise DashboardsBenchError(
            f"{' and '.join(missing)} missing: run make system-deps (Debian chromium, "
            "chromium-driver)"
        )
    before = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROME_ARGS, f"--window-size={window[0]},{window[1]}"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    finally:
        if before is None:
            os.environ.pop("SE_OFFLINE", None)
        else:
            os.environ["SE_OFFLINE"] = before
    try:
        yield driver
    finally:
        driver.quit()


def login(driver: WebDriver, url: str, username: str, password: str, timeout: float = 90) -> None:
    """Superset's login form at ``/login/``, filled in as a person does."""
    driver.get(f"{url}/login/")
    WebDriverWait(driver, timeout).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "input[name=username], #username"),
        "Superset's login form",
    )
    (user,) = driver.find_elements(By.CSS_SELECTOR, "input[name=username], #username")[:1]
    user.send_keys(username)
    (secret,) = driver.find_elements(By.CSS_SELECTOR, "input[name=password], #password")[:1]
    secret.send_keys(password, Keys.ENTER)
    WebDriverWait(driver, timeout).until(
        lambda d: "/login" not in d.current_url, "Superset after the login"
    )


@dataclass
class Rendered:
    """One dashboard load: how long until every chart rendered, and what the page showed."""

    slug: str
    seconds: float
    charts: list[str]
    errors: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # charts not rendered when it gave up

    @property
    def ok(self) -> bool:
        return not self.errors and not self.pending and bool(self.charts)


def page_state(driver: WebDriver) -> dict[str, Any]:
    state: dict[str, Any] = driver.execute_script(_STATE_JS)
    return state


def render(
    driver: WebDriver, url: str, slug: str, expected: int | None = None, timeout: float = 120
) -> Rendered:
    """Open ``/superset/dashboard/<slug>/`` and wait until every chart on it has rendered.

    Rendered: ``expected`` charts (when given) are on the page, none shows a spinner,
    each one's container drew something, and the page has no error alert. An error
    alert ends the wait at once; the time is the navigation's start to that moment.
    """
    started = time.perf_counter()
    driver.get(f"{url}/superset/dashboard/{slug}/")
    while True:
        state = page_state(driver)
        charts = state["charts"]
        pending = [c["name"] for c in charts if c["loading"] or not c["drawn"]]
        errors = [str(e) for e in state["errors"]]
        elapsed = time.perf_counter() - started
        names = [str(c["name"]) for c in charts]
        counted = bool(charts) and (expected is None or len(charts) >= expected)
        if errors or (counted and not pending):
            return Rendered(slug, elapsed, names, errors)
        if elapsed > timeout:
            return Rendered(slug, elapsed, names, errors, pending or ["(no chart on the page)"])
        time.sleep(0.05)


def screenshot(driver: WebDriver, path: Path) -> Path:
    """The page down to its last chart (the window fitted to it for the shot, then restored)."""
    bottom = driver.execute_script(
        "return Math.max(0, ...[...document.querySelectorAll("
        "'[data-test=\"chart-grid-component\"]')].map(c => c.getBoundingClientRect().bottom))"
        " + window.scrollY"
    )
    chrome = driver.execute_script("return window.outerHeight - window.innerHeight")
    size = driver.get_window_size()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if bottom:
            driver.set_window_size(size["width"], int(bottom) + int(chrome or 0) + 48)
        time.sleep(1.5)  # charts redraw for the new size; then a last paint
        if not driver.save_screenshot(str(path)):
            raise DashboardsBenchError(f"Chromium did not save {path}")
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path


# -- the benchmark --------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def time_chart(run_once: Callable[[], Any], runs: int) -> dict[str, float]:
    """One warm-up call, then ``runs`` timed ones: p50, p95, max in seconds."""
    run_once()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        run_once()
        seconds.append(time.perf_counter() - started)
    return {
        "p50_s": statistics.median(seconds),
        "p95_s": _percentile(seconds, 0.95),
        "max_s": max(seconds),
    }


def bench_dashboards(
    url: str,
    username: str,
    password: str,
    runs: int = 5,
    loads: int = 3,
    screenshots: Path | None = None,
    on_step: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Time every chart's query through Superset's API and every dashboard in Chromium.

    Superset at ``url`` holds the deployed bundle. ``screenshots``: a directory for
    one ``superset-<slug>.png`` per dashboard, taken once it rendered.
    """
    from dashboards.provisioning import SupersetClient, SupersetError, SupersetLogin

    charts: list[dict[str, Any]] = []
    with SupersetClient(SupersetLogin(url, username, password)) as client:
        boards = client.listing("dashboard", ("id", "dashboard_title", "slug"))
        for board in boards:
            for chart in client.get(f"/api/v1/dashboard/{board['id']}/charts")["result"]:
                name, chart_id = str(chart["slice_name"]), int(chart["id"])
                on_step(f"querying chart {name!r}")

                def once(chart_id: int = chart_id, name: str = name) -> None:
                    answer = client.chart_data(chart_id)
                    errors = [r["error"] for r in answer.get("result", []) if r.get("error")]
                    if errors:
                        raise SupersetError(f"chart {name!r}: {'; '.join(map(str, errors))}")

                timing = time_chart(once, runs)
                charts.append({
                    "dashboard": board["dashboard_title"], "chart": name, "id": chart_id,
                    **timing, "met": timing["p95_s"] < TARGET_CHART_S,
                })  # fmt: skip
    dashboards: list[dict[str, Any]] = []
    with chromium() as driver:
        on_step("logging in to Superset in Chromium")
        login(driver, url, username, password)
        for board in boards:
            slug = str(board["slug"] or board["id"])
            expected = sum(1 for c in charts if c["dashboard"] == board["dashboard_title"])
            on_step(f"rendering dashboard {board['dashboard_title']!r}")
            first = render(driver, url, slug, expected)  # warm-up: the page's scripts cached
            timed = [first] if not first.ok else [render(driver, url, slug, expected)]
            while first.ok and len(timed) < loads:
                timed.append(render(driver, url, slug, expected))
            if screenshots is not None:
                screenshot(driver, screenshots / f"superset-{slug}.png")
            seconds = statistics.median(r.seconds for r in timed)
            worst = timed[-1]
            dashboards.append({
                "dashboard": board["dashboard_title"], "slug": slug,
                "charts": len(worst.charts), "first_s": first.seconds, "median_s": seconds,
                "max_s": max(r.seconds for r in timed), "errors": worst.errors,
                "pending": worst.pending,
                "met": all(r.ok for r in timed) and seconds < TARGET_DASHBOARD_S,
            })  # fmt: skip
    return {
        "url": url,
        "runs": runs,
        "loads": loads,
        "target_chart_s": TARGET_CHART_S,
        "target_dashboard_s": TARGET_DASHBOARD_S,
        "charts": charts,
        "dashboards": dashboards,
        "charts_met": all(c["met"] for c in charts),
        "dashboards_met": all(d["met"] for d in dashboards),
    }
