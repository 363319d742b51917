"""Keep child processes running: restart a crashed one with backoff, report crash loops.

``marketlake sidecar all`` runs each live-core service as its own process. A
service that dies (a bug, the OOM killer, a kill -9) loses nothing, since it
rebuilds from the log on start, but someone has to start it again: that is
this supervisor. Each restart waits longer (exponential backoff, capped); a
child that crashes ``loop_limit`` times within ``loop_window`` seconds is in a
crash loop, which is logged as an error and exported as a metric, and it keeps
being retried at the capped interval (a loop caused by a broker outage ends
when the broker is back). A child that exits with ``REFUSED`` (3: another
instance of its service owns the input, or fenced it) is not restarted: a
restart would only take the input back and forth between the two.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from orchestration.logging import get_logger

REFUSED = 3
"""The exit code of a service that another instance fenced or locked out."""


@dataclass
class _Child:
    name: str
    argv: Sequence[str]
    proc: subprocess.Popen[bytes] | None = None
    restart_at: float | None = None
    delay: float = 0.0
    given_up: bool = False
    crashes: deque[float] = field(default_factory=deque)


class Supervisor:
    """Starts ``children`` (name -> argv), restarts any that exits while it runs."""

    def __init__(
        self,
        children: Mapping[str, Sequence[str]],
        env: Mapping[str, str],
        registry: CollectorRegistry,
        *,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
        loop_limit: int = 5,
        loop_window: float = 60.0,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.children = {name: _Child(name, list(argv)) for name, argv in children.items()}
        self.env = dict(env)
        self.first_delay, self.max_delay = first_delay, max_delay
        self.loop_limit, self.loop_window = loop_limit, loop_window
        self.interval = interval
        self.clock = clock
        self.logger = get_logger("sidecar.supervisor")
        self.restarts = Counter(
            "marketlake_child_restarts", "crashed child processes restarted", ["child"],
            registry=registry,
        )  # fmt: skip
        self.crash_loop = Gauge(
            "marketlake_child_crash_loop", "1 while a child crashes repeatedly", ["child"],
            registry=registry,
        )  # fmt: skip
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="supervisor")

    def start(self) -> None:
        for child in self.children.values():
            self._spawn(child)
            self.restarts.labels(child.name)
            self.crash_loop.labels(child.name).set(0)
        self._thread.start()

    def _spawn(self, child: _Child) -> None:
        child.proc = subprocess.Popen(list(child.argv), env=self.env)
        child.restart_at = None

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            for child in self.children.values():
                self.check(child)

    def check(self, child: _Child) -> None:
        """One look at ``child``: note a crash and schedule, or do, its restart."""
        now = self.clock()
        if child.restart_at is not None:
            if now >= child.restart_at and not self._stop.is_set():
                self._spawn(child)
                self.restarts.labels(child.name).inc()
                self.logger.warning("child restarted", child=child.name, pid=child.proc.pid)  # type: ignore[union-attr]  # _spawn just set it
            return
        if child.given_up or child.proc is None or child.proc.poll() is None:
            return
        code = child.proc.returncode
        if code == REFUSED:
            child.given_up = True
            self.logger.error("child refused to run: another instance owns its input; "
                              "not restarting it", child=child.name)  # fmt: skip
            return
        child.crashes.append(now)
        while child.crashes and child.crashes[0] < now - self.loop_window:
            child.crashes.popleft()
        looping = len(child.crashes) >= self.loop_limit
        child.delay = min(self.max_delay, child.delay * 2 if child.delay else self.first_delay)
        if len(child.crashes) == 1:  # the first crash in a while starts the backoff over
            child.delay = self.first_delay
        child.restart_at = now + child.delay
        self.crash_loop.labels(child.name).set(1 if looping else 0)
        log = self.logger.error if looping else self.logger.warning
        log("child exited; restarting" + (" (crash loop)" if looping else ""), child=child.name,
            exit_code=code, restart_in_s=round(child.delay, 2), crashes=len(child.crashes))  # fmt: skip

    def pids(self) -> dict[str, int | None]:
        return {n: (c.proc.pid if c.proc else None) for n, c in self.children.items()}

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every child (each finishes its current step), SIGKILL what is left."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        procs = [c.proc for c in self.children.values() if c.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for name, child in self.children.items():
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.logger.warning("child did not stop; killing", child=name)
                child.proc.kill()
                child.proc.wait(10)
