"""A process that brings one short seeded session onto a SQLite log, for kill tests.

``python -m tests.support.session_run LOG SEED`` prints ``simulating`` once the
log is open, then ``state=<found>`` when the day's log is whole.
"""

from __future__ import annotations

import sys
from datetime import date
from datetime import time as clock

from streaming.calendar import TradingCalendar
from streaming.refdata import load_members, load_securities
from streaming.services.day import DayConfig, ensure_session
from streaming.transport.sqlite import SqliteEventLog

DAY = date(2026, 11, 20)
SHORT = TradingCalendar("MLX", "Europe/Berlin", clock(9, 0), clock(10, 0))


def config(seed: int) -> DayConfig:
    return DayConfig(DAY, seed, load_securities(), load_members(), SHORT)


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    log = SqliteEventLog(path)
    print("simulating", flush=True)
    state, _ = ensure_session(log, config(seed))
    log.close()
    print(f"state={state}", flush=True)


if __name__ == "__main__":
    main()
