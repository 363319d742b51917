"""The ``sidecar`` command: run the live core's services as processes on the event log.

Its own module because it is how the live core runs outside ``demo``: one
service per process (matcher, bars, simulator, members) or all of them, with
health and metrics on a port; its exit codes (3 for an instance conflict, 143
when stopped) are what supervisors look at.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from orchestration.cli.cli_shared import console, default_day, err
from settings import get_settings


def sidecar(
    service: Annotated[
        str, typer.Argument(help="simulator, members, matcher, bars, or all of them.")
    ],
    port: Annotated[int, typer.Option(help="Port for /health and /metrics.")] = 9464,
    max_records: Annotated[int, typer.Option(help="Records per input partition per step.")] = 5_000,
    shared: Annotated[
        bool, typer.Option(help="matcher/bars: one of several instances splitting the partitions.")
    ] = False,
    instance: Annotated[
        str, typer.Option(help="This instance's name (unique among running copies).")
    ] = "0",
    day: Annotated[
        str | None,
        typer.Option("--date", help="simulator/members/all: trading day (default: latest)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="simulator/members/all: simulation seed.")] = 42,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per wall second (0: as fast as possible).")
    ] = 0.0,
    members: Annotated[
        bool, typer.Option(help="simulator: the members trade in the same process.")
    ] = True,
    matchers: Annotated[int, typer.Option(help="all: matcher instances to start.")] = 1,
    session: Annotated[
        str | None,
        typer.Option(help="matcher/bars: serve this day's session log (as exchange run does)."),
    ] = None,
) -> None:
    """Run live-core services as processes on the configured event log.

    The transport comes from settings (MARKETLAKE_EVENT_LOG=kafka|sqlite,
    MARKETLAKE_NAMESPACE). matcher and bars rebuild their state from their
    committed input, then consume-process-produce exactly once until SIGTERM.
    simulator (liquidity + members) and members drive one session as the one
    writer of orders, waiting for the matcher after every cycle, and exit at
    the close. all starts matcher(s) and bars as child processes, drives the
    session, and stops them once everything is processed; the same date and
    seed give the same topics as `marketlake demo`.
    """
    from orchestration.sidecar import (
        NAMES,
        SERVICES,
        SessionStopped,
        drive_session,
        run_all,
        run_sidecar,
    )

    if service not in NAMES:
        err.print(f"[red]error:[/red] unknown service {service!r}; available: {', '.join(NAMES)}")
        raise typer.Exit(2)
    settings = get_settings()
    if service in SERVICES:
        from streaming.transport.base import InstanceConflictError

        try:
            run_sidecar(
                service, settings, port, max_records, shared=shared, instance=instance,
                day=date.fromisoformat(session) if session else None,
            )  # fmt: skip
        except InstanceConflictError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(3) from None
        return
    the_day = date.fromisoformat(day) if day else default_day()
    try:
        if service == "all":
            sent = run_all(settings, the_day, seed, port, matchers=matchers, speed=speed)
        else:
            simulator = service == "simulator"
            sent = drive_session(
                settings, the_day, seed, port, simulator=simulator,
                members=members or not simulator, speed=speed,
            )  # fmt: skip
    except (ValueError, TimeoutError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    except SessionStopped:
        err.print("stopped before the close: drive the session again on fresh topics")
        raise typer.Exit(143) from None
    console.print(f"session {the_day} driven: {sent:,} order requests")
