"""The ``stack`` commands: start, stop and show the real services as local processes.

A group of their own because they share the choice of services by name
(Kafka, PostgreSQL, MinIO, Trino, Superset, Dagster) from the stack's service
table; each service starts what it needs first.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestration.cli.cli_shared import console, err
from settings import get_settings

stack_app = typer.Typer(
    help="Run the whole platform (Kafka, PostgreSQL, MinIO, Trino, Superset, Dagster) as local "
    "processes, no Docker."
)


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
    """Install (once, cached) and start services, waiting until each is healthy.

    Without names, the whole platform; with names, those services and what they
    need (Trino starts PostgreSQL and MinIO first, Superset also Trino).
    """
    from deploy.process import ServiceError

    for name, svc in _pick(names).items():
        with err.status(f"starting {name}"):
            try:
                svc.start()
            except ServiceError as exc:
                err.print(f"[red]{name} failed:[/red] {exc}")
                raise typer.Exit(1) from None
        st = svc.status()
        console.print(
            f"{name}: {st['state']} at {st.get('url') or st['address']} (data {st['data_dir']})"
        )


INSTALL_ORDER = ("minio", "trino", "superset", "kafka", "postgres", "dagster", "ollama")
"""The slowest first, in the order the tests need them (the lake stack, then Kafka, Ollama)."""


@stack_app.command("install")
def stack_install(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Services to install (default: all, and Ollama with its model)."),
    ] = None,
) -> None:
    """Install services without starting them (once, cached; safe beside a running install).

    What `make test` runs in the background while lint and the first tests
    run, so the builds and downloads overlap with them; each install holds a
    lock, so a test that needs a service meanwhile waits for it, never builds
    it twice.
    """
    import time

    from deploy.process import ServiceError

    wanted = list(names or INSTALL_ORDER)
    stack = _pick([n for n in wanted if n != "ollama"]) if wanted != ["ollama"] else {}
    failed = False
    for name in sorted(wanted, key=lambda n: INSTALL_ORDER.index(n) if n in INSTALL_ORDER else 99):
        started = time.monotonic()
        try:
            if name == "ollama":
                svc = _ollama()
                svc.install()
                svc.install_model()
            else:
                stack[name].install()
        except (ServiceError, OSError) as exc:
            err.print(f"[red]{name}: install failed:[/red] {exc}")
            failed = True
            continue
        console.print(f"{name}: installed ({time.monotonic() - started:.0f} s)")
    if failed:
        raise typer.Exit(1)


def _ollama() -> Any:
    from deploy.ollama.ollama_service import OllamaService

    settings = get_settings()
    return OllamaService(home=settings.stack_home / "ollama", cache=settings.cache_dir)


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
    """Each service's state, URL (or address), pid, log file and credentials file."""
    rows = [svc.status() for svc in _pick(None).values()]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    t = Table(title="marketlake stack")
    for col in ("service", "state", "url", "pid", "log", "credentials"):
        t.add_column(col, overflow="fold")
    for r in rows:
        cells = {**r, "url": r.get("url") or r["address"]}
        t.add_row(
            *(
                str(cells.get(c)) if cells.get(c) is not None else "-"
                for c in ("service", "state", "url", "pid", "log", "credentials")
            )
        )
    console.print(t)
