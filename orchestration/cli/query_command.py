"""The ``query`` command: SQL over the lake's Iceberg tables on DuckDB or Trino.

Its own module because it is the lake's read (and, for operators, write) door:
the engine choice, the read-only default and the output formats live here.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from orchestration.cli.cli_shared import console, err
from settings import get_settings


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


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
