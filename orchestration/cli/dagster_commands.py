"""The commands that drive the Dagster instance: ``backfill`` records runs, ``ui`` serves it.

Together because both work on the same instance (DAGSTER_HOME, by default
<data dir>/dagster): what ``backfill`` materialises is what ``ui`` shows.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from orchestration.cli.cli_shared import console, err
from settings import get_settings


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
