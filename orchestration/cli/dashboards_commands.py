"""The ``dashboards`` commands: Superset's dashboards as code, deployed and exported.

A group of its own because both commands share how the stack's services are
found: Superset's URL and admin from its credentials file, Trino's read-only
principal and certificate from Trino's home (never the writer: the dashboards
only read the lake). The work itself is :mod:`dashboards.provisioning`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from orchestration.cli.cli_shared import console, err
from settings import Settings, get_settings

if TYPE_CHECKING:
    from dashboards.provisioning import DeployReport, LakeConnection, SupersetLogin
    from deploy.superset.superset_service import SupersetService
    from lake.query import TrinoEngine

dashboards_app = typer.Typer(
    help="Superset's dashboards as code: deploy the bundle in dashboards/superset, export "
    "Superset's dashboards back to it."
)

BundleOption = Annotated[
    Path | None,
    typer.Option("--bundle", help="The Superset asset bundle (default: dashboards/superset)."),
]


def _bundle(path: Path | None) -> Path:
    from dashboards.superset_bundle import BUNDLE_DIR  # imports the lake's registry: not at startup

    return path or BUNDLE_DIR


def _superset(settings: Settings) -> SupersetService:
    from assets.platform import stack

    return stack.superset(settings, stack.postgres(settings))


def _superset_login(svc: SupersetService) -> SupersetLogin:
    from dashboards.provisioning import SupersetLogin
    from deploy.process import ServiceError

    if not svc.healthy():
        err.print(
            f"[red]error:[/red] Superset does not answer at {svc.url}: "
            "`marketlake stack up superset` starts it (and what it needs)"
        )
        raise typer.Exit(1)
    try:
        return SupersetLogin(svc.url, svc.admin_user, svc.admin_password)
    except ServiceError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


def _lake(settings: Settings) -> tuple[LakeConnection, TrinoEngine]:
    """Trino's read-only principal on the read-only catalog, and an engine as that principal."""
    from assets.platform import stack
    from dashboards.provisioning import LakeConnection
    from deploy.process import ServiceError

    trino = stack.trino(settings)
    try:
        user, password = trino.principal(reader=True)
        engine = stack.trino_engine(trino)
    except ServiceError as exc:
        err.print(f"[red]error:[/red] trino: {exc} (`marketlake stack up trino` starts it)")
        raise typer.Exit(1) from None
    connection = LakeConnection(
        trino.host, trino.port, user, password, trino.ca_file, stack.READ_CATALOG
    )
    return connection, engine


@dashboards_app.command("deploy")
def dashboards_deploy(
    bundle: BundleOption = None,
    verify: Annotated[
        bool,
        typer.Option("--verify/--no-verify", help="Run every chart through Superset afterwards."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Provision the bundle into the stack's Superset (idempotent: again updates in place).

    A dashboard, chart or dataset an earlier deploy imported and the bundle no
    longer has is deleted from Superset; what people made in Superset's UI is kept.

    The bundle is checked against the lake first (every dataset's table or SQL
    on Trino, every column a chart or filter names) and refused whole if
    anything is wrong; then imported with Superset connecting to Trino as the
    read-only principal over HTTPS; then every chart's data is fetched through
    Superset. Exit status 1 if the bundle is refused or a chart fails.
    """
    from dashboards.provisioning import BundleError, SupersetError, deploy

    settings = get_settings()
    superset = _superset(settings)
    login = _superset_login(superset)
    connection, engine = _lake(settings)
    try:
        with err.status("deploying the dashboards") as status:
            report = deploy(
                _bundle(bundle), connection, login, engine, verify=verify,
                # what the last deploy imported, kept beside Superset's data
                state=superset.data_dir / "deployed-bundle.json",
                on_step=lambda step: status.update(step),
            )  # fmt: skip
    except (BundleError, SupersetError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        if "TABLE_NOT_FOUND" in str(exc):
            err.print(
                "the lake lacks a table the bundle reads: land a day first "
                "(`MARKETLAKE_MODE=stack marketlake backfill --from D --to D`)"
            )
        raise typer.Exit(1) from None
    finally:
        engine.close()
    if as_json:
        sys.stdout.write(json.dumps(_report_json(report), indent=2) + "\n")
    else:
        _print_report(report)
    if report.failed:
        raise typer.Exit(1)


def _report_json(report: DeployReport) -> dict[str, object]:
    return {
        "url": report.url,
        "dashboards": [{"id": d.id, "uuid": d.uuid, "title": d.name} for d in report.dashboards],
        "charts": [{"id": c.id, "uuid": c.uuid, "name": c.name} for c in report.charts],
        "datasets": report.datasets,
        "queries_added": report.queries_added,
        "removed": report.removed,
        "checks": [
            {
                "kind": c.kind,
                "name": c.name,
                "id": c.id,
                "rows": c.rows,
                "error": c.error,
                "seconds": round(c.seconds, 3),
            }
            for c in report.checks
        ],
    }


def _print_report(report: DeployReport) -> None:
    console.print(
        f"deployed {len(report.dashboards)} dashboards, {len(report.charts)} charts and "
        f"{report.datasets} datasets to {report.url}"
    )
    for board in report.dashboards:
        console.print(f"  {board.name}: {report.url}/superset/dashboard/{board.id}/")
    for gone in report.removed:
        console.print(f"  removed {gone} (no longer in the bundle)")
    if not report.checks:
        return
    table = Table(title="charts and filters run through Superset")
    for col in ("kind", "id", "name", "rows", "seconds", "error"):
        table.add_column(col, overflow="fold")
    for check in report.checks:
        table.add_row(
            check.kind, str(check.id), check.name,
            "-" if check.rows is None else str(check.rows),
            f"{check.seconds:.2f}", f"[red]{check.error}[/red]" if check.error else "",
        )  # fmt: skip
    console.print(table)
    if report.failed:
        err.print(f"[red]{len(report.failed)} of them failed[/red]")


@dashboards_app.command("export")
def dashboards_export(bundle: BundleOption = None) -> None:
    """Write the stack's Superset dashboards, their charts and virtual datasets into the bundle.

    Objects already in the bundle are rewritten in place (matched by UUID), new
    ones get files of their own; the connection and the lake's datasets are
    generated (`python -m dashboards.superset_bundle`) and left as they are.
    Nothing is deleted: what Superset no longer has is listed.
    """
    from dashboards.provisioning import BundleError, SupersetError, export

    login = _superset_login(_superset(get_settings()))
    try:
        report = export(_bundle(bundle), login)
    except (BundleError, SupersetError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    for path in report.written:
        console.print(f"wrote {path}")
    for path in report.skipped:
        console.print(f"kept {path} (generated from the lake's registry)")
    for path in report.only_in_bundle:
        console.print(f"[yellow]not in Superset:[/yellow] {path}")
