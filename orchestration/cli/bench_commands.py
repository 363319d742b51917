"""The measuring commands: ``bench`` (our own figures) and ``lobster`` (a reality check).

``bench`` looks its target up in ``BENCHMARKS``, a table from benchmark name to
how to run it and how to show its figures, so a new benchmark is one entry and
two or three small functions here, not another branch of the command. The
benchmarks themselves live in orchestration/bench/; this module only starts
what they need, passes the options on and renders what they return.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestration.cli.cli_shared import console, err
from settings import get_settings

Figures = dict[str, Any]


class BenchTarget(StrEnum):
    matcher = "matcher"
    bars = "bars"
    kafka = "kafka"
    lake = "lake"
    pipeline = "pipeline"
    intelligence = "intelligence"
    dashboards = "dashboards"
    gateway = "gateway"


@dataclass(frozen=True)
class BenchOptions:
    """What the command line asks of a benchmark (each uses the options it has)."""

    n: int | None
    days: int | None
    seed: int
    as_json: bool


def _never(figures: Figures) -> bool:
    return False


@dataclass(frozen=True)
class BenchSpec:
    """How ``bench`` runs one benchmark and shows its figures."""

    run: Callable[[BenchOptions], Figures]
    lines: Callable[[Figures], list[str]]  # the text output, one console line each
    table: Callable[[Figures], Table] | None = None  # printed after the lines
    failed: Callable[[Figures], bool] = _never  # figures that make the command exit 1


def _run_matcher(o: BenchOptions) -> Figures:
    from orchestration.bench.matcher_bench import bench_matcher
    from streaming.refdata import load_securities

    members = [f"USR{i:02d}" for i in range(1, 11)]
    return bench_matcher(load_securities(), members, o.n or 1_000_000, o.seed)


def _matcher_lines(r: Figures) -> list[str]:
    return [
        f"matcher: {r['orders_per_s']:,.0f} orders/s "
        f"({r['requests']:,} requests, {r['symbols']:.0f} symbols, "
        f"{r['events']:,} events; target 300,000/s)",
        f"matcher latency per request: p50 {r['p50_us']:.2f} us, "
        f"p99 {r['p99_us']:.2f} us, p99.9 {r['p999_us']:.2f} us",
    ]


def _run_bars(o: BenchOptions) -> Figures:
    from orchestration.bench.bars_bench import bench_bars

    return bench_bars(o.n or 2_000_000, o.seed)


def _bars_lines(r: Figures) -> list[str]:
    return [
        f"bars streaming: {r['streaming_trades_per_s']:,.0f} trades/s (target 500,000/s)",
        f"bars batch: {r['batch_trades_per_s']:,.0f} trades/s (target 10,000,000/s) "
        f"over {r['trades']:,.0f} trades",
    ]


def _run_kafka(o: BenchOptions) -> Figures:
    from assets.platform.stack import kafka_env, kafka_security, services
    from orchestration.bench.kafka_bench import bench_kafka

    settings = get_settings()
    if settings.kafka_bootstrap_servers is None:
        with err.status("starting the local Kafka broker"):
            services(settings)["kafka"].start()
    return bench_kafka(
        settings.kafka_bootstrap, o.n or 200_000, 10_000, 10.0, o.seed,
        security=kafka_security(settings), env=kafka_env(settings),
    )  # fmt: skip


def _kafka_lines(r: Figures) -> list[str]:
    tp, lat = r["throughput"], r["latency"]
    return [
        f"kafka exactly-once: {tp['orders_per_s']:,.0f} orders/s sustained "
        f"({tp['orders']:,} orders in {tp['transactions']} transactions; target 50,000/s)",
        f"kafka order-to-acknowledgement at {lat['offered_per_s']:,.0f} orders/s offered: "
        f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms "
        f"(target p99 < 50 ms)",
    ]


def _run_lake(o: BenchOptions) -> Figures:
    from assets.platform.stack import services
    from orchestration.bench.lake_bench import bench_lake

    settings = get_settings()
    with err.status("starting the stack's lake (PostgreSQL, MinIO, Trino)"):
        services(settings)["trino"].start()
    with err.status("publishing trades and querying the lake"):
        return bench_lake(settings, o.n or 10_000_000, o.seed)


def _lake_lines(r: Figures) -> list[str]:
    pub = r["publish"]
    return [
        f"lake publish: {pub['rows_per_s']:,.0f} rows/s ({r['trades']:,} trades, "
        f"{len(r['days'])} days in {pub['seconds']:.1f} s; target 1,000,000/s)",
        f"daily OHLCV per symbol over all of them ({r['result_rows']} rows): "
        + ("both engines agree" if r["engines_agree"] else "[red]engines DIFFER[/red]"),
        *[f"  {escape(m)}" for m in r["mismatches"]],
    ]


def _lake_table(r: Figures) -> Table:
    table = Table(title="lake query latency, seconds (target < 3 s)")
    for col in ("engine", "cold", "warm median", "warm min", "warm max", "CPU s"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for name, q in r["query"].items():
        table.add_row(
            name, f"{q['cold_s']:.2f}", f"{q['warm_median_s']:.2f}",
            f"{q['warm_min_s']:.2f}", f"{q['warm_max_s']:.2f}", f"{q['cpu_s']:.1f}",
        )  # fmt: skip
    return table


def _run_pipeline(o: BenchOptions) -> Figures:
    """Run the pipeline benchmark with a progress bar and, as text, a line per day."""
    from orchestration.bench.pipeline_bench import DEFAULT_DAYS, bench_pipeline

    count = o.days or DEFAULT_DAYS
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed}/{task.total} days"), TimeElapsedColumn(),
        console=err, disable=o.as_json or not err.is_terminal,
    ) as progress:  # fmt: skip
        task = progress.add_task("pipeline", total=count)

        def on_day(run: Any) -> None:
            progress.update(task, advance=1, description=f"pipeline {run.day}")
            if not o.as_json:
                status = "[green]ok[/green]" if run.success else "[red]FAILED[/red]"
                progress.console.print(f"{run.day}: {status} in {run.seconds:.1f} s")

        return bench_pipeline(count, on_day)


def _pipeline_lines(r: Figures) -> list[str]:
    met = "[green]met[/green]" if r["target_met"] else "[red]NOT met[/red]"
    lines = [
        f"pipeline: {r['days']} of {r['days_planned']} trading days "
        f"({r['first_day']}..{r['last_day']}) in {r['total_s']:.1f} s",
        f"per day: mean {r['day_mean_s']:.1f} s, max {r['day_max_s']:.1f} s "
        f"(target: one day end to end under {r['target_day_s']:.0f} s: {met})",
    ]
    if not r["success"]:
        lines.append("[red]the backfill did not complete every day[/red]")
    return lines


def _pipeline_table(r: Figures) -> Table:
    table = Table(title="seconds per asset (step)")
    for col in ("step", "total", "mean per day", "share"):
        table.add_column(col, justify="left" if col == "step" else "right")
    total = r["total_s"] or 1.0
    for step, s in r["per_asset"].items():
        table.add_row(step, f"{s['total_s']:.2f}", f"{s['mean_s']:.2f}",
                      f"{s['total_s'] / total:.0%}")  # fmt: skip
    return table


def _run_intelligence(o: BenchOptions) -> Figures:
    from orchestration.bench.intelligence_bench import bench_intelligence

    shared = get_settings().shared_data_dir
    with err.status("parsing and extracting the corpus on one core"):
        return bench_intelligence(shared if shared.is_dir() else None, o.n or 20_000, o.seed)


def _intelligence_lines(r: Figures) -> list[str]:
    lines = [
        f"intelligence: {r['docs_per_s']:,.0f} documents/s through parsing and lexicon "
        f"extraction on one core ({r['documents']:,} documents from "
        f"{r['payloads']:,} payloads, {r['megabytes']} MB; target 500/s)",
        *[
            f"  {kind}: {v['docs_per_s']:,.0f} documents/s "
            f"({v['documents']:,} documents, {v['kb_per_doc']} kB each)"
            for kind, v in r["by_kind"].items()
        ],
    ]
    if not r["shared_data"]:
        lines.append("  (shared data not found: generated feeds and pages only)")
    return lines


def _run_dashboards(o: BenchOptions) -> Figures:
    """Superset and the lake started, ``--days`` days landed, the bundle deployed; then timed."""
    import tempfile
    from datetime import date

    from assets.platform import stack
    from orchestration.bench.dashboards_bench import (
        DEFAULT_DAYS,
        DashboardsBenchError,
        bench_dashboards,
        land_days,
        short_calendar,
    )
    from orchestration.bench.pipeline_bench import bench_days
    from streaming.refdata import load_calendar

    settings = get_settings()
    svc = stack.superset(settings, stack.postgres(settings))
    with err.status("starting the stack's lake and Superset (installed on first use)"):
        stack.services(settings)["superset"].start()
    days = bench_days(load_calendar(settings.calendar_toml), date.today(), o.days or DEFAULT_DAYS)
    try:
        with tempfile.TemporaryDirectory(prefix="marketlake-bench-dashboards-") as tmp:
            work = Path(tmp)
            with err.status(f"landing {len(days)} simulated days ({days[0]}..{days[-1]})"):
                land_days(
                    dict(os.environ), [(d, o.seed + i) for i, d in enumerate(days)], work,
                    short_calendar(work),
                )  # fmt: skip
        with err.status("deploying the dashboards"):
            proc = subprocess.run(
                [sys.executable, "-m", "orchestration.cli", "dashboards", "deploy", "--json"],
                capture_output=True, text=True, timeout=1800,
            )  # fmt: skip
            if proc.returncode != 0:
                raise DashboardsBenchError(f"dashboards deploy failed:\n{proc.stderr[-3000:]}")
        with err.status("timing charts and dashboards") as status:
            figures = bench_dashboards(
                svc.url, svc.admin_user, svc.admin_password, runs=o.n or 5,
                on_step=lambda step: status.update(step),
            )  # fmt: skip
    except DashboardsBenchError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    return {"days": [d.isoformat() for d in days], **figures}


def _met(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]NOT met[/red]"


def _dashboards_lines(r: Figures) -> list[str]:
    slowest_chart = max(r["charts"], key=lambda c: c["p95_s"])
    slowest_board = max(r["dashboards"], key=lambda d: d["median_s"])
    lines = [
        f"dashboards: {len(r['charts'])} charts on {len(r['dashboards'])} dashboards over "
        f"{len(r['days'])} landed days ({r['days'][0]}..{r['days'][-1]})",
        f"chart queries through Superset's chart data API, warm ({r['runs']} runs after one "
        f"warm-up): slowest p95 {slowest_chart['p95_s']:.2f} s ({escape(slowest_chart['chart'])}); "
        f"target every chart < {r['target_chart_s']:.0f} s: {_met(r['charts_met'])}",
        f"dashboards rendered in headless Chromium: slowest {slowest_board['median_s']:.2f} s "
        f"({escape(slowest_board['dashboard'])}); target every dashboard "
        f"< {r['target_dashboard_s']:.0f} s: {_met(r['dashboards_met'])}",
    ]
    for d in r["dashboards"]:
        if d["errors"] or d["pending"]:
            lines.append(
                f"  [red]{escape(d['dashboard'])}: errors {escape(str(d['errors']))}, "
                f"not rendered {escape(str(d['pending']))}[/red]"
            )
    return lines


def _dashboards_table(r: Figures) -> Table:
    table = Table(title="seconds: chart data API (warm p50, p95); dashboard render (median)")
    for col in ("dashboard", "chart", "p50", "p95", "max", "target"):
        table.add_column(col, justify="left" if col in ("dashboard", "chart") else "right")
    for d in r["dashboards"]:
        table.add_row(
            f"[bold]{escape(d['dashboard'])}[/bold]", f"[bold]rendered ({d['charts']} charts)[/bold]",
            f"{d['median_s']:.2f}", "", f"{d['max_s']:.2f}", "met" if d["met"] else "NOT met",
        )  # fmt: skip
        for c in r["charts"]:
            if c["dashboard"] == d["dashboard"]:
                table.add_row(
                    "", escape(c["chart"]), f"{c['p50_s']:.2f}", f"{c['p95_s']:.2f}",
                    f"{c['max_s']:.2f}", "met" if c["met"] else "NOT met",
                )  # fmt: skip
    return table


def _run_gateway(o: BenchOptions) -> Figures:
    from assets.platform.stack import kafka_env, services
    from orchestration.bench.gateway_bench import bench_fanout, bench_gateway

    settings = get_settings()
    if settings.kafka_bootstrap_servers is None:
        with err.status("starting the local Kafka broker"):
            services(settings)["kafka"].start()
    with err.status("an exchange with both gateways, embedded then on Kafka; FIX then HTTP"):
        figures = bench_gateway(o.n or 5_000, kafka=kafka_env(settings))
    with err.status("the simulator at full rate, without and with 100 WebSocket readers"):
        figures["fanout"] = bench_fanout(100)
    return figures


def _gateway_lines(r: Figures) -> list[str]:
    f = r["fanout"]
    lines = [line for run in r["runs"] for line in _gateway_run_lines(run)]
    lines.append(f"gateway (embedded): the simulator at full rate, core "
                 f"{f['without']['core_orders_per_s']:,} orders/s without WebSocket readers")  # fmt: skip
    for name, what in (("paced", f"paced every {f['pace_ms']} ms (a screen)"),
                       ("with", "of every event")):  # fmt: skip
        run = f[name]
        lines.append(
            f"gateway (embedded): {f['subscribers']} readers of every BBO, {what}: core "
            f"{run['core_orders_per_s']:,} orders/s ({run['core_slowdown_pct']}% slower), "
            f"{run['messages_per_s']:,} messages/s delivered, {run['dropped']} cut off as slow"
        )
    return lines


def _gateway_run_lines(r: Figures) -> list[str]:
    fix, http = r["fix"], r["http"]
    return [
        f"gateway ({r['transport']}): FIX {fix['orders_per_s']:,} orders/s from one session "
        f"(request to acknowledgement, {fix['orders']:,} orders; target 5,000/s), "
        f"p50 {fix['p50_ms']} ms, p99 {fix['p99_ms']} ms at {fix['offered_per_s']:,}/s offered "
        f"(target p99 < 20 ms)",
        f"gateway ({r['transport']}): HTTP {http['orders_per_s']:,} orders/s over {http['connections']} connections "
        f"({http['orders']:,} orders; target 2,000/s), p50 {http['p50_ms']} ms, "
        f"p99 {http['p99_ms']} ms at {http['offered_per_s']:,}/s offered "
        f"({http['achieved_per_s']:,}/s achieved)",
    ]


BENCHMARKS: dict[BenchTarget, BenchSpec] = {
    BenchTarget.matcher: BenchSpec(_run_matcher, _matcher_lines),
    BenchTarget.bars: BenchSpec(_run_bars, _bars_lines),
    BenchTarget.kafka: BenchSpec(_run_kafka, _kafka_lines),
    BenchTarget.lake: BenchSpec(
        _run_lake, _lake_lines, _lake_table, failed=lambda r: not r["engines_agree"]
    ),
    BenchTarget.pipeline: BenchSpec(
        _run_pipeline, _pipeline_lines, _pipeline_table, failed=lambda r: not r["success"]
    ),
    BenchTarget.intelligence: BenchSpec(_run_intelligence, _intelligence_lines),
    BenchTarget.dashboards: BenchSpec(
        _run_dashboards,
        _dashboards_lines,
        _dashboards_table,
        failed=lambda r: any(d["errors"] or d["pending"] for d in r["dashboards"]),
    ),
    BenchTarget.gateway: BenchSpec(_run_gateway, _gateway_lines),
}


def bench(
    target: Annotated[BenchTarget, typer.Argument(help="What to measure.")],
    n: Annotated[
        int | None,
        typer.Option(
            help="Requests (matcher, kafka), trades (bars, lake), documents (intelligence) "
            "or timed runs per chart (dashboards)."
        ),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(help="Trading days (pipeline and dashboards: default 20).", min=1),
    ] = None,
    seed: Annotated[int, typer.Option(help="Workload seed.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Measure the matcher, bar builder, matcher on Kafka, lake, pipeline or dashboards.

    ``kafka`` uses MARKETLAKE_KAFKA_BOOTSTRAP_SERVERS, or starts the local
    stack's broker (installed on first use). ``lake`` starts the stack's lake
    (PostgreSQL, MinIO, Trino), publishes trades into ``raw.trades`` and times
    one daily OHLCV query on DuckDB and on Trino. ``pipeline`` backfills the
    last ``--days`` trading days before today, simulated from nothing in a
    temporary data directory, and times every asset. ``intelligence`` parses
    and extracts about ``--n`` documents (default 20,000) on one core.
    ``dashboards`` starts the lake and Superset, lands the last ``--days``
    trading days (default 20) into the stack's lake, deploys the dashboards,
    then times every chart through Superset's chart data API (``--n`` runs,
    default 5) and every dashboard rendered in headless Chromium.
    """
    spec = BENCHMARKS[target]
    figures = {"benchmark": target.value, **spec.run(BenchOptions(n, days, seed, as_json))}
    if as_json:
        sys.stdout.write(json.dumps(figures) + "\n")
    else:
        for line in spec.lines(figures):
            console.print(line)
        if spec.table is not None:
            console.print(spec.table(figures))
    if spec.failed(figures):
        raise typer.Exit(1)


def lobster(
    data: Annotated[
        Path | None,
        typer.Option(help="Folder with the LOBSTER sample zips (default: <shared data>/lobster)."),
    ] = None,
    messages_only: Annotated[
        bool,
        typer.Option(help="Rebuild from messages alone (no levels taken from the orderbook file)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Reality check: rebuild NASDAQ's book from LOBSTER samples through our matcher.

    After every message our top levels are compared with LOBSTER's orderbook
    row; prints the share of messages whose whole row matches, per file.
    """
    from orchestration.bench.lobster_check import LOBSTER_SAMPLES, check_lobster_zip

    folder = data or get_settings().shared_data_dir / "lobster"
    zips = [(name, folder / f) for name, f in LOBSTER_SAMPLES.items() if (folder / f).is_file()]
    if not zips:
        err.print(f"[red]error:[/red] no LOBSTER sample zips in {folder}")
        raise typer.Exit(2)
    rows: list[dict[str, Any]] = []
    for name, path in zips:
        result = check_lobster_zip(str(path), reveal=not messages_only)
        rows.append({"file": name, **result.as_dict()})
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    t = Table(title="LOBSTER 2012-06-21: our book vs NASDAQ's, after every message")
    for col in ("file", "messages", "matched", "share", "rejected", "traded = executed", "seconds"):
        t.add_column(col, justify="left" if col == "file" else "right")
    for r in rows:
        t.add_row(
            r["file"], f"{r['messages']:,}", f"{r['matched']:,}", f"{r['share']:.4%}",
            str(r["rejected"]), "yes" if r["traded_qty"] == r["executed_qty"] else "no",
            f"{r['seconds']:.1f}",
        )  # fmt: skip
    console.print(t)
