"""The ``replay`` command: feed a file of order events through the matcher.

Its own module because it is the one command that works on the user's files
alone (no lake, no event log, no Dagster): orders in, executions and trades out.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from orchestration.cli.cli_shared import err


def replay(
    orders: Annotated[
        Path, typer.Argument(help="JSON Lines of order events (new, cancel, amend); '-' for stdin.")
    ],
    securities: Annotated[
        Path | None,
        typer.Option(help="CSV with symbol,tick_size,lot_size,reference_price (default: shipped)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Directory for executions.jsonl, trades.jsonl, dlq.jsonl (default: stdout)."
        ),
    ] = None,
    members: Annotated[
        Path | None,
        typer.Option(help="Members CSV; only these may trade (default: any member id)."),
    ] = None,
    stp: Annotated[
        str,
        typer.Option(
            help="Self-trade prevention: cancel_resting|cancel_aggressor|cancel_both|none."
        ),
    ] = "cancel_resting",
    band_pct: Annotated[
        float | None,
        typer.Option(help="Price band around the reference price, percent (default: off)."),
    ] = None,
) -> None:
    """Feed order events through the matcher with every book open.

    Writes executions.jsonl and trades.jsonl (and dlq.jsonl for lines that are
    not valid events) into --out, or every event to stdout. See the README for
    the line format.
    """
    from orchestration.log_replay import replay_lines, write_replay
    from streaming.matcher import STP_MODES, StpMode
    from streaming.refdata import RefDataError, load_members, load_securities

    if stp not in STP_MODES:
        err.print(f"[red]error:[/red] --stp must be one of {', '.join(STP_MODES)}")
        raise typer.Exit(2)
    try:
        secs = load_securities(securities)
        member_ids = [m.member_id for m in load_members(members)] if members else None
    except (RefDataError, OSError, KeyError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    with ExitStack() as stack:
        if str(orders) == "-":
            lines: Any = sys.stdin.buffer
        else:
            if not orders.is_file():
                err.print(f"[red]error:[/red] no such file: {orders}")
                raise typer.Exit(2)
            lines = stack.enter_context(orders.open("rb"))
        if out is None:
            sink = sys.stdout.buffer
            ex = tr = dl = sink
        else:
            out.mkdir(parents=True, exist_ok=True)
            ex = stack.enter_context((out / "executions.jsonl").open("wb"))
            tr = stack.enter_context((out / "trades.jsonl").open("wb"))
            dl = stack.enter_context((out / "dlq.jsonl").open("wb"))
        mode = cast(StpMode, stp)  # one of STP_MODES: checked above
        events = replay_lines(lines, secs, member_ids, stp=mode, band_pct=band_pct)
        stats = write_replay(events, ex, tr, dl)
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(stats.by_reason.items())) or "none"
    err.print(
        f"replayed: {stats.executions:,} execution reports, {stats.trades:,} trades, "
        f"{stats.rejects:,} rejects ({reasons}), {stats.dead_letters:,} dead letters"
        + (f" -> {out}" if out else "")
    )
