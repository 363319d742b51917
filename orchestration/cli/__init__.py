"""The ``marketlake`` command line: ``app``, assembled from one module per command group.

Each command lives in the module named after it (``demo_command``,
``bench_commands``, ``accounts_commands``, ...); this module only builds the
Typer app, configures logging before any command runs, and registers the
commands in the order ``marketlake --help`` lists them. The entry point in
pyproject (``orchestration.cli:app``) and ``python -m orchestration.cli`` both
start here.
"""

from __future__ import annotations

import typer

from orchestration.cli.accounts_commands import accounts_app
from orchestration.cli.bench_commands import bench, lobster
from orchestration.cli.calendar_command import calendar
from orchestration.cli.dagster_commands import backfill, ui
from orchestration.cli.dashboards_commands import dashboards_app
from orchestration.cli.demo_command import demo
from orchestration.cli.eval_commands import eval_app
from orchestration.cli.exchange_command import exchange_app
from orchestration.cli.query_command import query
from orchestration.cli.replay_command import replay
from orchestration.cli.sidecar_command import sidecar
from orchestration.cli.stack_commands import stack_app
from orchestration.logging import configure_logging
from settings import get_settings

__all__ = ["app"]

app = typer.Typer(
    name="marketlake",
    help="A self-hosted market data and paper-trading platform: a live exchange core and its lake.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main() -> None:
    settings = get_settings()
    configure_logging(settings.log_json, settings.log_level)


for command in (demo, replay, bench, calendar, lobster, backfill, ui, query, sidecar):
    app.command()(command)
app.add_typer(exchange_app, name="exchange")
app.add_typer(accounts_app, name="accounts")
app.add_typer(stack_app, name="stack")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(eval_app, name="eval")
