"""What every command module of the ``marketlake`` CLI shares: its consoles and default day.

One console for what a command prints (120 columns when piped, so captured output
does not depend on a terminal) and one on stderr for progress, notes and errors,
so that neither mixes into the other; and the trading day a command uses when it
is given no date.
"""

from __future__ import annotations

import sys
from datetime import date, datetime

from rich.console import Console

from settings import get_settings

console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)


def default_day() -> date:
    """The latest trading day up to today, in the exchange's time zone."""
    from streaming.refdata import load_calendar

    cal = load_calendar(get_settings().calendar_toml)
    today = datetime.now(cal.tz).date()
    return cal.latest_trading_day(today)
