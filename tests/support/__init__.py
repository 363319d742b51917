"""Helpers shared by test modules (not fixtures)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from assets.platform.resources import PlatformResource
    from deploy.postgres.postgres_service import PostgresService
    from streaming.events import Recommendation

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health_status(port: int) -> int | None:
    """The HTTP status of a service's ``/health`` on 127.0.0.1:port (None: nothing answers)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return int(resp.status)
    except OSError:
        return None


def stop_group(proc: subprocess.Popen[bytes], wait: float = 40.0) -> None:
    """SIGTERM the process group ``proc`` leads (started with ``start_new_session``), then SIGKILL."""
    for sig, timeout in ((signal.SIGTERM, wait), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def run_concurrently(target: Callable[[T], object], args: Iterable[T]) -> list[BaseException]:
    """``target(arg)`` for every arg, each in its own thread at once; the exceptions raised."""
    errors: list[BaseException] = []

    def guarded(arg: T) -> None:
        try:
            target(arg)
        except BaseException as exc:  # collected for the test to assert on
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def short_calendar(directory: Path, close: str = "09:30") -> Path:
    """The exchange's calendar with the session closing at ``close``, so a day takes seconds."""
    source = Path(__file__).resolve().parents[2] / "streaming" / "refdata" / "calendar.toml"
    path = directory / "calendar.toml"
    path.write_text(source.read_text().replace('close = "15:30"', f'close = "{close}"'))
    return path


def sent_recommendations(platform: PlatformResource, day: date) -> list[Recommendation]:
    """What the ``recommendations`` topic of ``day``'s session log holds, partition by partition."""
    from streaming.events import Recommendation, decode_as

    log = platform.session_log(day)
    try:
        return [
            decode_as(r.value, Recommendation)
            for p in sorted(log.end_offsets("recommendations"))
            for r in log.read("recommendations", p)
        ]
    finally:
        log.close()


@contextlib.contextmanager
def private_postgres() -> Iterator[PostgresService]:
    """A PostgreSQL of its own on a free port, removed afterwards.

    As root the server runs as the 'postgres' user, which cannot enter pytest's
    private (0700) temp base, so the home is a fresh directory in the system temp dir.
    """
    import shutil
    import tempfile

    from deploy.postgres.postgres_service import PostgresService
    from settings import Settings

    home = Path(tempfile.mkdtemp(prefix="marketlake-pg-"))
    svc = PostgresService(home=home, cache=Settings().cache_dir, port=free_port())
    try:
        svc.start()
        yield svc
    finally:
        svc.stop()
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def open_day_with_matcher(path: Path) -> Iterator[Any]:
    """A day's SQLite log, open for trading, with the real matcher consuming it in a thread
    (as the exchange runs it); yields the log. The gateways' in-process tests stand on it."""
    import time

    from streaming.events import SessionControl, encode
    from streaming.matcher import Matcher
    from streaming.refdata import load_members, load_securities
    from streaming.services.handlers import MatcherService
    from streaming.topics import TOPICS
    from streaming.transport.base import Output
    from streaming.transport.sqlite import SqliteEventLog

    log = SqliteEventLog(path)
    log.create_topics(TOPICS)
    log.produce([Output("control", None, encode(SessionControl("open", 1)), 1)])
    service = MatcherService(Matcher(load_securities(), [m.member_id for m in load_members()]))
    stop = threading.Event()
    matcher_log = SqliteEventLog(path)

    def run_matcher() -> None:
        while not stop.is_set():
            if not matcher_log.step("matcher", MatcherService.inputs, service):
                time.sleep(0.001)

    thread = threading.Thread(target=run_matcher, daemon=True)
    thread.start()
    try:
        yield log
    finally:
        stop.set()
        thread.join(5)


def exchange_env(data: Path, calendar: Path, **extra: str) -> dict[str, str]:
    """The environment of an ``exchange run`` in a test: its data dir, a calendar, JSON logs."""
    return {**os.environ, "MARKETLAKE_DATA_DIR": str(data), "MARKETLAKE_CALENDAR_TOML": str(calendar),
            "MARKETLAKE_LOG_JSON": "1", **extra}  # fmt: skip
