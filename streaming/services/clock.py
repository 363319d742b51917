"""The exchange's clock: wall time, or a simulated time that runs ``speed`` times faster.

A live session is paced by it: the participants send a cycle's orders only
once the clock has reached the cycle, so at speed 1 the market moves in real
time and at speed 60 an hour passes in a minute. ``speed`` 0 does not pace
at all (a whole day as fast as the machine goes: tests, demos). The clock can
jump forward (nights and weekends when simulating), never back. Gateways
stamp their participants' orders with ``now_ns`` so every writer of
``orders`` shares one time line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ExchangeClock:
    """Exchange time in UTC ns: ``anchor_ns`` at the moment of creation, then ``speed``x wall."""

    def __init__(
        self,
        anchor_ns: int | None = None,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0 (0: unpaced), not {speed}")
        self.speed = speed
        self._monotonic = monotonic
        self._anchor_ns = wall_ns() if anchor_ns is None else anchor_ns
        self._anchor_wall = monotonic()
        self._lock = threading.Lock()

    @property
    def realtime(self) -> bool:
        return self.speed == 1.0

    def now_ns(self) -> int:
        """The exchange time now (unpaced: the last time the clock was set to)."""
        with self._lock:
            if self.speed == 0:
                return self._anchor_ns
            elapsed = self._monotonic() - self._anchor_wall
            return self._anchor_ns + int(elapsed * self.speed * 1e9)

    def jump(self, ns: int) -> None:
        """Move the clock forward to ``ns`` (nothing happens if it is already past)."""
        with self._lock:
            now = self._anchor_ns
            if self.speed:
                now += int((self._monotonic() - self._anchor_wall) * self.speed * 1e9)
            if ns > now:
                self._anchor_ns, self._anchor_wall = ns, self._monotonic()

    def wall_seconds_until(self, ns: int) -> float:
        """How long, on the wall, until the clock shows ``ns`` (0 if unpaced or already past)."""
        if self.speed == 0:
            return 0.0
        return max(0.0, (ns - self.now_ns()) / 1e9 / self.speed)

    def sleep_until(
        self, ns: int, stop: threading.Event, tick: Callable[[], None] | None = None
    ) -> bool:
        """Wait until the clock shows ``ns`` (unpaced: set it there); False if ``stop`` was set.

        ``tick`` runs at least once a wall second while waiting (a health check's heartbeat).
        """
        if self.speed == 0:
            self.jump(ns)
            return not stop.is_set()
        while (wait := self.wall_seconds_until(ns)) > 0:
            if stop.wait(min(wait, 1.0)):
                return False
            if tick is not None:
                tick()
        return not stop.is_set()
