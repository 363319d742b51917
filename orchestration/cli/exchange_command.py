"""The ``exchange`` commands: the live exchange, running day after day on the calendar."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from orchestration.cli.cli_shared import console, err
from settings import get_settings

SPEED_HELP = (
    "Exchange seconds per wall second: 1 is real time, 60 an hour a minute, 0 as fast as "
    "possible. Not 1: the clock starts at the first day's pre-open and skips nights."
)
exchange_app = typer.Typer(
    help="The live exchange: sessions day after day on the trading calendar.",
    no_args_is_help=True,
)


@exchange_app.command("run")
def run(
    first: Annotated[
        str | None,
        typer.Option("--from", help="First trading day (default: today's session, or the next)."),
    ] = None,
    days: Annotated[
        int | None, typer.Option(help="Stop after this many sessions (default: run until stopped).")
    ] = None,
    speed: Annotated[
        float,
        typer.Option(help=SPEED_HELP),
    ] = 1.0,
    simulator: Annotated[
        bool, typer.Option(help="The liquidity simulator trades (its seeded order flow).")
    ] = True,
    members: Annotated[
        bool, typer.Option(help="The clearing members trade (their strategies and obligations).")
    ] = True,
    matchers: Annotated[int, typer.Option(help="Matcher instances (one per partition set).")] = 1,
    port: Annotated[
        int, typer.Option(help="/health and /metrics of the driver; services on the next ports.")
    ] = 9470,
    seed: Annotated[int, typer.Option(help="Base seed: a day's seed is derived from it.")] = 42,
    api_port: Annotated[
        int | None,
        typer.Option(help="Serve the HTTP API (order entry, control; /docs) on 127.0.0.1 here."),
    ] = None,
    fix_port: Annotated[
        int | None,
        typer.Option(
            help="Accept FIX 4.4 sessions (one per member, SenderCompID = member id) "
            "on 127.0.0.1 here."
        ),
    ] = None,
) -> None:
    """Run the live exchange continuously: pre-open, open and close on the trading calendar.

    Each day is a session on that day's log (embedded: a SQLite file per day;
    stack: a Kafka namespace per day), the one the batch lands and settles.
    The matcher(s) and the bar builder run as supervised processes (restarted
    if they crash); the simulator and the clearing members are optional
    participants; programs trade alongside them through the gateways. Stops
    cleanly on Ctrl-C or SIGTERM: a session stopped before its close is closed
    as it stands (nothing on its log is thrown away).
    """
    from orchestration.exchange import ExchangeError, run_exchange

    settings = get_settings()
    try:
        runs = run_exchange(
            settings, first=date.fromisoformat(first) if first else None, days=days, speed=speed,
            simulator=simulator, members=members, matchers=matchers, port=port, base_seed=seed,
            api_port=api_port, fix_port=fix_port,
        )  # fmt: skip
    except (ExchangeError, ValueError, TimeoutError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    for r in runs:
        console.print(f"session {r.day} (seed {r.seed}): {r.orders_sent:,} participant orders")
