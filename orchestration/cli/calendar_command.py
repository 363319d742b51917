"""The ``calendar`` command: the exchange's trading days and session times.

Its own module because it reads only the trading calendar (no lake, no event
log), the one piece of reference data a user asks about directly.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.table import Table

from orchestration.cli.cli_shared import console, default_day
from settings import get_settings


def calendar(
    start: Annotated[str | None, typer.Option("--from", help="First day YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day YYYY-MM-DD.")] = None,
) -> None:
    """List trading days with their session open and close (exchange time)."""
    from streaming.calendar import ns_to_datetime
    from streaming.refdata import load_calendar

    cal = load_calendar(get_settings().calendar_toml)
    first = date.fromisoformat(start) if start else default_day()
    last = date.fromisoformat(end) if end else first
    t = Table(title=f"{cal.exchange} trading days ({cal.timezone})")
    for col in ("date", "weekday", "open", "close"):
        t.add_column(col)
    for d in cal.trading_days(first, last):
        o, c = cal.session_bounds(d)
        t.add_row(
            d.isoformat(),
            d.strftime("%a"),
            ns_to_datetime(o, cal.tz).strftime("%H:%M %Z"),
            ns_to_datetime(c, cal.tz).strftime("%H:%M %Z"),
        )
    console.print(t)
