"""The ``demo`` command: simulate one trading day, run every asset for it, print a summary.

Kept apart because it is the longest command to print: the summary of the day
read back from the lake (securities, clearing members, Dagster run, marts,
intelligence and recommendations) is most of this module.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestration.cli.cli_shared import console, default_day, err
from orchestration.logging import get_logger
from settings import get_settings


class DemoNews(StrEnum):
    recorded = "recorded"
    providers = "providers"


def demo(
    day: Annotated[
        str | None,
        typer.Option("--date", help="Trading day YYYY-MM-DD (default: latest trading day)."),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Simulation seed; same date + seed = same output.")
    ] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    news: Annotated[
        DemoNews,
        typer.Option(
            help="Where the day's news comes from: the recorded stories, served locally "
            "(no network or key), or the configured providers (MARKETLAKE_POLYGON_API_KEY, ...)."
        ),
    ] = DemoNews.recorded,
) -> None:
    """Simulate one trading day, then run every asset for it through Dagster.

    The seeded session runs through simulator -> matcher -> bars -> members on
    the embedded event log, as the day's live data. One Dagster run then
    materialises landing -> market -> clearing -> recon -> dbt marts -> the
    EOD settlement report for that day (recorded in the instance `marketlake
    ui` shows), and the intelligence assets on the day's news: documents,
    trends and recommendations for the next session. Prints a summary read back from the lake, where the HTML
    report is and how to open the UI. Query the day with `marketlake query`.
    """
    from orchestration.demo import DemoError, run_demo

    settings = get_settings()
    the_day = date.fromisoformat(day) if day else default_day()
    log = get_logger("demo")
    log.info("simulating session", date=the_day.isoformat(), seed=seed)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.fields[unit]}"),
        TimeElapsedColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
    ) as progress:
        task = progress.add_task(f"session {the_day}", total=None, unit="cycles")
        assets = progress.add_task(
            "Dagster: landing -> market -> clearing -> recon -> dbt -> report",
            total=None, unit="run", visible=False,
        )  # fmt: skip

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        def session_done() -> None:
            progress.update(assets, visible=True)

        try:
            summary = run_demo(
                settings, the_day, seed, tick, session_done,
                recorded_news=news is DemoNews.recorded,
            )  # fmt: skip
        except ValueError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        except DemoError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        progress.update(assets, total=1, completed=1)
    log.info("day published", warehouse=summary["lake"]["warehouse"], **summary["counts"])
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    c = summary["counts"]
    console.print(
        f"[bold]{summary['exchange']} (marketlake's exchange code in the trading calendar) "
        f"session {summary['date']}[/bold] (seed {summary['seed']}): "
        f"{c['orders']:,} order requests, {c['executions']:,} execution reports, "
        f"{c['trades']:,} trades, {c['bars']:,} bars, {c['dlq']:,} dead letters, "
        f"{summary['late_trades']} late trades"
    )
    t = Table(title="Securities", show_lines=False)
    for col in ("symbol", "trades", "volume", "open", "high", "low", "close", "vwap"):
        t.add_column(col, justify="left" if col == "symbol" else "right")
    for r in summary["symbols"]:
        t.add_row(
            r["symbol"], f"{r['trades']:,}", f"{r['volume']:,}",
            *(f"{r[k]:.4f}".rstrip("0").rstrip(".") for k in ("open", "high", "low", "close", "vwap")),
        )  # fmt: skip
    console.print(t)
    m = Table(title="Clearing members")
    for col in (
        "member",
        "orders",
        "fills",
        "securities",
        "realized",
        "unrealized",
        "P&L",
        "obligation",
    ):
        m.add_column(col, justify="left" if col == "member" else "right")
    for r in summary["members"]:
        ok = "[green]met[/green]" if r["obligation_met"] else "[red]failed[/red]"
        m.add_row(
            r["member"], f"{r['orders']:,}", f"{r['fills']:,}",
            f"{r['securities_traded']}/{r['obligation']}",
            f"{r['realized_pnl']:,.2f}", f"{r['unrealized_pnl']:,.2f}", f"{r['pnl']:,.2f}", ok,
        )  # fmt: skip
    console.print(m)
    lake = summary["lake"]
    console.print(f"Lake: warehouse {lake['warehouse']}, catalog {lake['catalog']}")
    run = summary["dagster"]
    console.print(
        f"Dagster run {run['run_id']}: {len(run['steps'])} steps in {run['seconds']:.1f} s; "
        "marts: " + ", ".join(f"{k} ({v:,})" for k, v in summary["marts"].items()),
        highlight=False,
    )
    console.print(f"EOD settlement report: {summary['report']}", highlight=False)
    _print_intelligence(summary["intelligence"])
    console.print(
        "Open the UI (asset graph, this run, its checks): marketlake ui  -> http://127.0.0.1:3000",
        markup=False, highlight=False,
    )  # fmt: skip
    console.print(
        'Query it: marketlake query "SELECT symbol, count(*) FROM raw.trades GROUP BY 1"',
        markup=False,
        highlight=False,
    )


def _print_intelligence(intel: dict[str, Any]) -> None:
    rows = intel["tables"]
    source = "recorded stories" if intel["news"] == "recorded" else "the configured providers"
    console.print(
        f"Intelligence from {source}: " + ", ".join(f"{k} ({v:,})" for k, v in rows.items()),
        highlight=False,
    )
    recs = intel["recommendations"]
    shown = [r for r in recs if r["action"] in ("buy", "sell") or abs(r["signal"]) >= 0.05]
    if not shown:
        return
    t = Table(title=f"Recommendations for the session of {intel['next_session']}")
    for col in ("symbol", "action", "mode", "confidence", "signal", "driven by"):
        t.add_column(col, justify="right" if col in ("confidence", "signal") else "left")
    for r in shown:
        t.add_row(
            r["symbol"], r["action"], r["mode"], f"{r['confidence']:.2f}",
            f"{r['signal']:+.2f}", r["driver"],
        )  # fmt: skip
    console.print(t)
    if len(recs) > len(shown):
        console.print(f"(and {len(recs) - len(shown)} companies without a signal: hold or watch)")
    console.print(
        'Theses and evidence: marketlake query "SELECT symbol, action, thesis, evidence '
        'FROM intel.recommendations"',
        markup=False, highlight=False,
    )  # fmt: skip
