"""The ``marketlake`` command line: demo, replay, bench and calendar."""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestration.logging import configure_logging, get_logger
from settings import get_settings

app = typer.Typer(
    name="marketlake",
    help="A self-hosted market data and paper-trading platform: a live exchange core and its lake.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)


@app.callback()
def _main() -> None:
    settings = get_settings()
    configure_logging(settings.log_json, settings.log_level)


def _default_day() -> date:
    from streaming.refdata import load_calendar

    cal = load_calendar(get_settings().calendar_toml)
    today = datetime.now(cal.tz).date()
    return cal.latest_trading_day(today)


class DemoNews(StrEnum):
    recorded = "recorded"
    providers = "providers"


@app.command()
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
    the_day = date.fromisoformat(day) if day else _default_day()
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
        f"[bold]{summary['exchange']} session {summary['date']}[/bold] (seed {summary['seed']}): "
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


@app.command()
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
    from streaming.matcher import STP_MODES
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
        events = replay_lines(lines, secs, member_ids, stp=stp, band_pct=band_pct)  # type: ignore[arg-type]
        stats = write_replay(events, ex, tr, dl)
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(stats.by_reason.items())) or "none"
    err.print(
        f"replayed: {stats.executions:,} execution reports, {stats.trades:,} trades, "
        f"{stats.rejects:,} rejects ({reasons}), {stats.dead_letters:,} dead letters"
        + (f" -> {out}" if out else "")
    )


class BenchTarget(StrEnum):
    matcher = "matcher"
    bars = "bars"
    kafka = "kafka"
    lake = "lake"
    pipeline = "pipeline"
    intelligence = "intelligence"


@app.command()
def bench(
    target: Annotated[BenchTarget, typer.Argument(help="What to measure.")],
    n: Annotated[
        int | None,
        typer.Option(
            help="Requests (matcher, kafka), trades (bars, lake) or documents (intelligence)."
        ),
    ] = None,
    days: Annotated[
        int | None, typer.Option(help="Trading days (pipeline; default 20).", min=1)
    ] = None,
    seed: Annotated[int, typer.Option(help="Workload seed.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Measure the matcher, the bar builder, the matcher on Kafka, the lake or the pipeline.

    ``kafka`` uses MARKETLAKE_KAFKA_BOOTSTRAP_SERVERS, or starts the local
    stack's broker (installed on first use). ``lake`` starts the stack's lake
    (PostgreSQL, MinIO, Trino), publishes trades into ``raw.trades`` and times
    one daily OHLCV query on DuckDB and on Trino. ``pipeline`` backfills the
    last ``--days`` trading days before today, simulated from nothing in a
    temporary data directory, and times every asset. ``intelligence`` parses
    and extracts about ``--n`` documents (default 20,000) on one core.
    """
    table: Table | None = None
    if target is BenchTarget.intelligence:
        from orchestration.bench.intelligence_bench import bench_intelligence

        shared = get_settings().shared_data_dir
        with err.status("parsing and extracting the corpus on one core"):
            result = bench_intelligence(shared if shared.is_dir() else None, n or 20_000, seed)
        lines = [
            f"intelligence: {result['docs_per_s']:,.0f} documents/s through parsing and lexicon "
            f"extraction on one core ({result['documents']:,} documents from "
            f"{result['payloads']:,} payloads, {result['megabytes']} MB; target 500/s)",
            *[
                f"  {kind}: {v['docs_per_s']:,.0f} documents/s "
                f"({v['documents']:,} documents, {v['kb_per_doc']} kB each)"
                for kind, v in result["by_kind"].items()
            ],
        ]
        if not result["shared_data"]:
            lines.append("  (shared data not found: generated feeds and pages only)")
    elif target is BenchTarget.pipeline:
        result, lines, table = _bench_pipeline(days, as_json)
    elif target is BenchTarget.matcher:
        from orchestration.bench.matcher_bench import bench_matcher
        from streaming.refdata import load_securities

        members = [f"USR{i:02d}" for i in range(1, 11)]
        result = bench_matcher(load_securities(), members, n or 1_000_000, seed)
        lines = [
            f"matcher: {result['orders_per_s']:,.0f} orders/s "
            f"({result['requests']:,} requests, {result['symbols']:.0f} symbols, "
            f"{result['events']:,} events; target 300,000/s)",
            f"matcher latency per request: p50 {result['p50_us']:.2f} us, "
            f"p99 {result['p99_us']:.2f} us, p99.9 {result['p999_us']:.2f} us",
        ]
    elif target is BenchTarget.kafka:
        from assets.platform.stack import kafka_env, kafka_security, services
        from orchestration.bench.kafka_bench import bench_kafka

        settings = get_settings()
        if settings.kafka_bootstrap_servers is None:
            with err.status("starting the local Kafka broker"):
                services(settings)["kafka"].start()
        result = bench_kafka(
            settings.kafka_bootstrap, n or 200_000, 10_000, 10.0, seed,
            security=kafka_security(settings), env=kafka_env(settings),
        )  # fmt: skip
        tp, lat = result["throughput"], result["latency"]
        lines = [
            f"kafka exactly-once: {tp['orders_per_s']:,.0f} orders/s sustained "
            f"({tp['orders']:,} orders in {tp['transactions']} transactions; target 50,000/s)",
            f"kafka order-to-acknowledgement at {lat['offered_per_s']:,.0f} orders/s offered: "
            f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms "
            f"(target p99 < 50 ms)",
        ]
    elif target is BenchTarget.lake:
        from rich.markup import escape

        from assets.platform.stack import services
        from orchestration.bench.lake_bench import bench_lake

        settings = get_settings()
        with err.status("starting the stack's lake (PostgreSQL, MinIO, Trino)"):
            services(settings)["trino"].start()
        with err.status("publishing trades and querying the lake"):
            result = bench_lake(settings, n or 10_000_000, seed)
        pub = result["publish"]
        lines = [
            f"lake publish: {pub['rows_per_s']:,.0f} rows/s ({result['trades']:,} trades, "
            f"{len(result['days'])} days in {pub['seconds']:.1f} s; target 1,000,000/s)",
            f"daily OHLCV per symbol over all of them ({result['result_rows']} rows): "
            + ("both engines agree" if result["engines_agree"] else "[red]engines DIFFER[/red]"),
            *[f"  {escape(m)}" for m in result["mismatches"]],
        ]
        table = Table(title="lake query latency, seconds (target < 3 s)")
        for col in ("engine", "cold", "warm median", "warm min", "warm max", "CPU s"):
            table.add_column(col, justify="left" if col == "engine" else "right")
        for name, q in result["query"].items():
            table.add_row(
                name, f"{q['cold_s']:.2f}", f"{q['warm_median_s']:.2f}",
                f"{q['warm_min_s']:.2f}", f"{q['warm_max_s']:.2f}", f"{q['cpu_s']:.1f}",
            )  # fmt: skip
    else:
        from orchestration.bench.bars_bench import bench_bars

        result = bench_bars(n or 2_000_000, seed)
        lines = [
            f"bars streaming: {result['streaming_trades_per_s']:,.0f} trades/s (target 500,000/s)",
            f"bars batch: {result['batch_trades_per_s']:,.0f} trades/s (target 10,000,000/s) "
            f"over {result['trades']:,.0f} trades",
        ]
    result = {"benchmark": target.value, **result}
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        for line in lines:
            console.print(line)
        if table is not None:
            console.print(table)
    if target is BenchTarget.lake and not result["engines_agree"]:
        raise typer.Exit(1)
    if target is BenchTarget.pipeline and not result["success"]:
        raise typer.Exit(1)


def _bench_pipeline(days: int | None, as_json: bool) -> tuple[dict[str, Any], list[str], Table]:
    """Run the pipeline benchmark with a progress bar per day; its figures, lines and table."""
    from orchestration.bench.pipeline_bench import DEFAULT_DAYS, bench_pipeline

    count = days or DEFAULT_DAYS
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed}/{task.total} days"), TimeElapsedColumn(),
        console=err, disable=as_json or not err.is_terminal,
    ) as progress:  # fmt: skip
        task = progress.add_task("pipeline", total=count)

        def on_day(run: Any) -> None:
            progress.update(task, advance=1, description=f"pipeline {run.day}")
            if not as_json:
                status = "[green]ok[/green]" if run.success else "[red]FAILED[/red]"
                progress.console.print(f"{run.day}: {status} in {run.seconds:.1f} s")

        result = bench_pipeline(count, on_day)
    met = "[green]met[/green]" if result["target_met"] else "[red]NOT met[/red]"
    lines = [
        f"pipeline: {result['days']} of {result['days_planned']} trading days "
        f"({result['first_day']}..{result['last_day']}) in {result['total_s']:.1f} s",
        f"per day: mean {result['day_mean_s']:.1f} s, max {result['day_max_s']:.1f} s "
        f"(target: one day end to end under {result['target_day_s']:.0f} s: {met})",
    ]
    if not result["success"]:
        lines.append("[red]the backfill did not complete every day[/red]")
    table = Table(title="seconds per asset (step)")
    for col in ("step", "total", "mean per day", "share"):
        table.add_column(col, justify="left" if col == "step" else "right")
    total = result["total_s"] or 1.0
    for step, s in result["per_asset"].items():
        table.add_row(step, f"{s['total_s']:.2f}", f"{s['mean_s']:.2f}",
                      f"{s['total_s'] / total:.0%}")  # fmt: skip
    return result, lines, table


@app.command()
def calendar(
    start: Annotated[str | None, typer.Option("--from", help="First day YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day YYYY-MM-DD.")] = None,
) -> None:
    """List trading days with their session open and close (exchange time)."""
    from streaming.calendar import ns_to_datetime
    from streaming.refdata import load_calendar

    cal = load_calendar(get_settings().calendar_toml)
    first = date.fromisoformat(start) if start else _default_day()
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


@app.command()
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
    rows = []
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


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--from", help="First day YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="Last day YYYY-MM-DD (inclusive).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """Materialise every asset for each trading day in a range, recorded in Dagster.

    Days without a session are simulated (seeded per day) first, so a
    backfill builds history from nothing. Runs appear in the Dagster UI
    (`marketlake ui`); backfilling a range again changes nothing in the lake.
    """
    from orchestration.backfill import backfill as run_backfill
    from orchestration.backfill import days_between

    settings = get_settings()
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    days = days_between(first, last)
    if not days:
        err.print(f"[red]error:[/red] no trading days between {first} and {last}")
        raise typer.Exit(2)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed}/{task.total} days"), TimeElapsedColumn(),
        console=err, disable=as_json or not err.is_terminal,
    ) as progress:  # fmt: skip
        task = progress.add_task("backfill", total=len(days))

        def on_day(run: Any) -> None:
            progress.update(task, advance=1, description=f"backfill {run.day}")
            if not as_json:
                status = "[green]ok[/green]" if run.success else "[red]FAILED[/red]"
                progress.console.print(
                    f"{run.day}: {status} in {run.seconds:.1f} s (run {run.run_id})"
                )

        runs = run_backfill(settings, first, last, on_day)
    if as_json:
        sys.stdout.write(json.dumps([r.__dict__ for r in runs]) + "\n")
    if not all(r.success for r in runs):
        raise typer.Exit(1)


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port of the Dagster UI.")] = 3000,
    daemon: Annotated[bool, typer.Option(help="Also run the daemon (schedules, sensors).")] = True,
) -> None:
    """Start the Dagster UI (behind a login) and the daemon on 127.0.0.1 and print the address.

    Only platform accounts get in: operators use the UI, viewers read it,
    traders are refused (`marketlake accounts add NAME --role operator`).
    Dagster's web app runs in this process behind marketlake's own gate
    (login, Host and origin checks, no GraphQL mutations over GET or from
    other sites); the daemon runs as a child process. Uses the instance in
    DAGSTER_HOME (default: <data dir>/dagster), the same one `marketlake
    backfill` records its runs in; no password is ever passed on a command
    line. Ctrl-C stops both.
    """
    import signal
    import subprocess

    from orchestration.backfill import instance_for
    from orchestration.webui import LOGIN_PATH, LOGOUT_PATH, run_ui
    from streaming.accounts import AccountStore, Role

    settings = get_settings()
    instance = instance_for(settings)  # sets DAGSTER_HOME, writes its dagster.yaml
    store = AccountStore(settings.accounts_path)
    if not store.has_role(Role.OPERATOR):
        err.print(
            "No operator account yet: only operators may use the Dagster UI (viewers read "
            "it). Create one, even while the UI runs:\n"
            "  marketlake accounts add NAME --role operator",
            markup=False, highlight=False,
        )  # fmt: skip
    bin_dir = Path(sys.executable).parent
    procs: list[subprocess.Popen[bytes]] = []
    if daemon:
        procs.append(
            subprocess.Popen(
                [str(bin_dir / "dagster-daemon"), "run", "-m", "orchestration.definitions"]
            )
        )
    base = f"http://127.0.0.1:{port}"
    console.print(
        f"Dagster UI: {base} (log in at {base}{LOGIN_PATH}, log out at {base}{LOGOUT_PATH}; "
        f"DAGSTER_HOME={os.environ['DAGSTER_HOME']})",
        markup=False, highlight=False,
    )  # fmt: skip

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the webserver and daemon as Ctrl-C does

    def daemon_gone() -> str | None:
        exited = [p.returncode for p in procs if p.poll() is not None]
        return f"the daemon exited ({exited[0]})" if exited else None

    signal.signal(signal.SIGTERM, stop)
    gone = None
    try:
        run_ui(instance, store, settings.ui_session_key_path, port, stop_reason=daemon_gone)
        gone = daemon_gone()  # not interrupted: the watcher stopped the server
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
    if gone:
        err.print(f"[red]error:[/red] {gone}; the UI stopped with it")
        raise typer.Exit(1)


accounts_app = typer.Typer(
    help="Platform accounts: operators, traders (as a clearing member) and viewers. "
    "The Dagster UI logs in with them; the order gateways will too."
)
app.add_typer(accounts_app, name="accounts")


def _accounts() -> Any:
    from streaming.accounts import AccountStore

    return AccountStore(get_settings().accounts_path)


def _new_password(name: str, password_stdin: bool, generate: bool) -> str:
    """The new password: generated, read from stdin, or typed twice; never an argument."""
    from streaming.accounts import AccountError, generate_password, validate_password

    if password_stdin and generate:
        err.print("[red]error:[/red] --password-stdin and --generate exclude each other")
        raise typer.Exit(2)
    if generate:
        return generate_password()
    if password_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        import getpass

        if not sys.stdin.isatty():
            err.print(
                "[red]error:[/red] no terminal to ask for the password: "
                "pipe it with --password-stdin, or use --generate"
            )
            raise typer.Exit(2)
        password = getpass.getpass(f"Password for {name}: ")
        try:
            validate_password(password, name)  # say so before asking for it again
        except AccountError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        if getpass.getpass("Again: ") != password:
            err.print("[red]error:[/red] the passwords differ")
            raise typer.Exit(2)
    return password


PASSWORD_STDIN = typer.Option(
    "--password-stdin", help="Read the password from the first line of stdin."
)
GENERATE = typer.Option("--generate", help="Generate a strong password and print it once.")


@accounts_app.command("add")
def accounts_add(
    name: Annotated[str, typer.Argument(help="Account name: lowercase, e.g. alice.")],
    role: Annotated[str, typer.Option("--role", help="operator, trader or viewer.")],
    member: Annotated[
        str | None,
        typer.Option(help="Traders: the clearing member the account trades as (e.g. USR01)."),
    ] = None,
    password_stdin: Annotated[bool, PASSWORD_STDIN] = False,
    generate: Annotated[bool, GENERATE] = False,
) -> None:
    """Create an account; the password is asked for twice (or read from stdin, or generated)."""
    from streaming.accounts import (
        AccountError,
        Role,
        parse_role,
        validate_member,
        validate_name,
    )
    from streaming.refdata import RefDataError, load_members

    store = _accounts()
    try:
        validate_name(name)
        the_role = parse_role(role)
        if member is not None:
            if the_role is not Role.TRADER:
                raise AccountError(f"only traders trade as a member; a {the_role} has no member")
            validate_member(member)
        if store.get(name) is not None:
            raise AccountError(f"account {name!r} already exists (new password: accounts reset)")
    except AccountError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if member is not None:
        try:
            known = [m.member_id for m in load_members(get_settings().members_csv)]
        except (RefDataError, OSError, KeyError) as exc:
            err.print(f"[red]error:[/red] cannot read the members list: {exc}")
            raise typer.Exit(2) from None
        if member not in known:
            err.print(f"[red]error:[/red] unknown member {member!r}; known: {', '.join(known)}")
            raise typer.Exit(2)
    password = _new_password(name, password_stdin, generate)
    try:
        account = store.add(name, the_role, password, member=member)
    except AccountError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    as_member = f" trading as {account.member}" if account.member else ""
    console.print(f"account {account.name} added: {account.role}{as_member}", highlight=False)
    if generate:
        console.print(f"password (shown once): {password}", markup=False, highlight=False)


@accounts_app.command("reset")
def accounts_reset(
    name: Annotated[str, typer.Argument(help="Account name.")],
    password_stdin: Annotated[bool, PASSWORD_STDIN] = False,
    generate: Annotated[bool, GENERATE] = False,
) -> None:
    """Give an account a new password; its open sessions end."""
    from streaming.accounts import AccountError

    store = _accounts()
    if store.get(name) is None:
        err.print(f"[red]error:[/red] no account {name!r}")
        raise typer.Exit(2)
    password = _new_password(name, password_stdin, generate)
    try:
        store.set_password(name, password)
    except AccountError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"password of {name} reset; its sessions have ended", highlight=False)
    if generate:
        console.print(f"password (shown once): {password}", markup=False, highlight=False)


@accounts_app.command("list")
def accounts_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every account: name, role, member, created, last login (never a password hash)."""
    accounts = _accounts().list()

    def when(value: datetime | None) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    rows = [
        {
            "name": a.name, "role": a.role.value, "member": a.member,
            "created": when(a.created_at), "last_login": when(a.last_login),
        }
        for a in accounts
    ]  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    if not rows:
        err.print("no accounts yet: marketlake accounts add NAME --role operator")
        return
    t = Table(title="marketlake accounts")
    for col in ("name", "role", "member", "created", "last login"):
        t.add_column(col)
    for r in rows:
        t.add_row(*(r[k] or "-" for k in ("name", "role", "member", "created", "last_login")))
    console.print(t)


@accounts_app.command("remove")
def accounts_remove(name: Annotated[str, typer.Argument(help="Account name.")]) -> None:
    """Delete an account; its sessions end at their next request."""
    from streaming.accounts import AccountError, Role

    store = _accounts()
    try:
        store.remove(name)
    except AccountError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"account {name} removed", highlight=False)
    if not store.has_role(Role.OPERATOR):
        err.print("note: no operator account is left; the Dagster UI lets no one change anything")


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL; tables are namespace.table, e.g. raw.trades.")],
    engine: Annotated[
        str | None,
        typer.Option(help="duckdb or trino (default: duckdb embedded, trino in the stack)."),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.table
    ),
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="For operators: also run statements other than queries (INSERT, CREATE, "
            "COPY, SET, several statements, ...). DuckDB still reaches only the warehouse's "
            "files, and its configuration stays locked.",
        ),
    ] = False,
) -> None:
    """Run SQL over the lake's Iceberg tables on DuckDB or Trino (read-only by default).

    The same query text runs on both engines. Only one query runs: SELECT, WITH,
    VALUES, SHOW, DESCRIBE or EXPLAIN of a query; anything else is refused
    unless --write is given. `marketlake demo` publishes a day first;
    `marketlake query "SHOW TABLES FROM raw" --engine trino` needs the stack
    (`marketlake stack up trino`).
    """
    import csv

    from assets.platform.lake_engines import query_engine
    from lake.query import LakeQueryError

    settings = get_settings()
    try:
        eng = query_engine(settings, engine, allow_writes=write)
        try:
            result = eng.query(sql)
        finally:
            eng.close()
    except (LakeQueryError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    rows = result.to_pylist()
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(rows, default=str, indent=None) + "\n")
    elif output is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(result.column_names)
        writer.writerows([[r[c] for c in result.column_names] for r in rows])
    else:
        t = Table(show_lines=False)
        for name in result.column_names:
            t.add_column(name)
        for r in rows:
            t.add_row(*("" if r[c] is None else str(r[c]) for c in result.column_names))
        console.print(t)
        err.print(f"{len(rows)} row(s)")


stack_app = typer.Typer(help="Run the real services (Kafka, ...) as local processes, no Docker.")
app.add_typer(stack_app, name="stack")


def _pick(names: list[str] | None) -> dict[str, Any]:
    from assets.platform.stack import services

    available = services(get_settings())
    unknown = sorted(set(names or []) - set(available))
    if unknown:
        err.print(
            f"[red]error:[/red] unknown service(s) {', '.join(unknown)}; known: {', '.join(available)}"
        )
        raise typer.Exit(2)
    return {n: s for n, s in available.items() if not names or n in names}


@stack_app.command("up")
def stack_up(
    names: Annotated[
        list[str] | None, typer.Argument(help="Services to start (default: all).")
    ] = None,
) -> None:
    """Install (once, cached) and start services, waiting until each is healthy."""
    from deploy.process import ServiceError

    for name, svc in _pick(names).items():
        with err.status(f"starting {name}"):
            try:
                svc.start()
            except ServiceError as exc:
                err.print(f"[red]{name} failed:[/red] {exc}")
                raise typer.Exit(1) from None
        st = svc.status()
        console.print(f"{name}: {st['state']} at {st['address']} (data {st['data_dir']})")


@stack_app.command("down")
def stack_down(
    names: Annotated[
        list[str] | None, typer.Argument(help="Services to stop (default: all).")
    ] = None,
) -> None:
    """Stop services cleanly (SIGTERM, then SIGKILL after a timeout)."""
    for name, svc in reversed(_pick(names).items()):
        stopped = svc.stop()
        console.print(f"{name}: {'stopped' if stopped else 'was not running'}")


@stack_app.command("status")
def stack_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Each service's state, address, data directory and log."""
    rows = [svc.status() for svc in _pick(None).values()]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    t = Table(title="marketlake stack")
    for col in ("service", "state", "address", "pid", "data_dir", "log"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            *(
                str(r[c]) if r[c] is not None else "-"
                for c in ("service", "state", "address", "pid", "data_dir", "log")
            )
        )
    console.print(t)


eval_app = typer.Typer(help="Score intelligence components against labelled public data.")
app.add_typer(eval_app, name="eval")


class ExtractorName(StrEnum):
    lexicon = "lexicon"
    ollama = "ollama"


@eval_app.command("extraction")
def eval_extraction(
    dataset: Annotated[
        Path,
        typer.Option(
            help="Labelled set: SemEval headlines or FiQA posts (JSON), a CSV with a "
            "label,text header, or sentence@label lines.",
            exists=True,
            dir_okay=False,
        ),
    ],
    extractor: Annotated[
        ExtractorName, typer.Option(help="Which extractor to score.")
    ] = ExtractorName.lexicon,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Score only the first N examples (a served model is slow)."),
    ] = None,
) -> None:
    """Score a sentiment extractor: accuracy, macro-F1, per-class P/R/F1, confusion, docs/s.

    The format is detected from the file. SemEval and FiQA publish scores in
    [-1, 1]; they are labelled positive above 0.1 and negative below -0.1,
    the same cut the extractors apply to their own scores. ``--extractor ollama``
    uses the server of MARKETLAKE_OLLAMA_HOST and model MARKETLAKE_OLLAMA_MODEL;
    documents where it fell back to the lexicon are counted by reason.
    """
    from intelligence.extract.evaluation import detect_format, evaluate, load_dataset
    from intelligence.extract.extraction import Extractor
    from intelligence.extract.lexicon import LexiconExtractor

    chosen: Extractor = LexiconExtractor()
    if extractor is ExtractorName.ollama:
        chosen = _ollama_extractor()
    try:
        fmt = detect_format(dataset)
        rows = load_dataset(dataset, fmt)
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if not rows:
        err.print(f"[red]error:[/red] no labelled examples in {dataset}")
        raise typer.Exit(2)
    rows = rows[:limit] if limit else rows
    result = evaluate(chosen, rows, dataset=str(dataset))
    stats: dict[str, int] = getattr(chosen, "stats", dict)()
    fallbacks = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("fallback:")}
    if as_json:
        extra = {"extractor_stats": stats} if stats else {}
        sys.stdout.write(json.dumps({**result.as_dict(), "format": fmt, **extra}) + "\n")
        return
    console.print(
        f"{result.extractor} on {dataset.name} ({fmt}, {result.n:,} documents): "
        f"accuracy {result.accuracy:.3f}, macro-F1 {result.macro_f1:.3f}, "
        f"{result.docs_per_s or 0:,.{0 if (result.docs_per_s or 0) >= 10 else 2}f} documents/s"
    )
    if stats:
        console.print(
            f"model answered {stats.get('ok', 0):,} of {stats.get('calls', 0):,}; "
            f"fallbacks to lexicon: {fallbacks or 'none'}"
        )
    t = Table(title="per class")
    for col in ("class", "precision", "recall", "F1", "support"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for label, s in result.per_class.items():
        t.add_row(label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    console.print(t)
    c = Table(title="confusion (rows: gold, columns: predicted)")
    c.add_column("gold")
    for label in result.labels:
        c.add_column(label, justify="right")
    for label, row in zip(result.labels, result.confusion, strict=True):
        c.add_row(label, *(str(v) for v in row))
    console.print(c)


def _ollama_extractor() -> Any:
    """The Ollama extractor from settings; exit 2 with the reason if it cannot be used."""
    from intelligence.extract.ollama_extractor import OllamaExtractor

    settings = get_settings()
    if not settings.ollama_host:
        err.print(
            "[red]error:[/red] --extractor ollama needs a server: set MARKETLAKE_OLLAMA_HOST "
            "(e.g. http://127.0.0.1:11434) and MARKETLAKE_OLLAMA_MODEL"
        )
        raise typer.Exit(2)
    ollama_extractor = OllamaExtractor.from_settings(settings)
    problem = ollama_extractor.check()
    if problem:
        err.print(f"[red]error:[/red] {problem}")
        raise typer.Exit(2)
    return ollama_extractor


@app.command()
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
            run_sidecar(service, settings, port, max_records, shared=shared, instance=instance)
        except InstanceConflictError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(3) from None
        return
    the_day = date.fromisoformat(day) if day else _default_day()
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


if __name__ == "__main__":  # pragma: no cover
    app()
