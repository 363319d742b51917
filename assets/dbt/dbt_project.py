"""The dbt project as Dagster runs it: its manifest, the day's staging and its marts.

dbt runs on DuckDB over one trading day at a time. Each run gets a scratch
directory holding the dbt artifacts and a DuckDB file into which the day's
partitions of the lake tables the project's sources name are copied (schemas
``raw``, ``core``, ``refdata``); the marts it builds are read back from that
file and published as partitions of ``marts.<model>``. Runs of different days
share nothing, so they can run side by side and a rerun replaces its day.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And, BooleanExpression
from pyiceberg.expressions.parser import parse

from lake.tables import PARTITION_COLUMN, TABLES
from streaming.refdata import Member, Security
from streaming.schema import to_table
from lake.row_filters import at_most, equal_to

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt"
MANIFEST = DBT_DIR / "target" / "manifest.json"
DUCKDB_FILE = "marketlake.duckdb"  # inside the run's target path; see dbt/profiles.yml


class DbtProjectError(RuntimeError):
    """The dbt project does not parse; the message carries dbt's own."""


def _sources_mtime() -> float:
    files = [DBT_DIR / "dbt_project.yml", DBT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        files += [p for p in (DBT_DIR / folder).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in files)


def ensure_manifest() -> Path:
    """``dbt/target/manifest.json``, parsed again when any project file is newer.

    A fresh clone has no manifest; parsing takes a few seconds and happens once.
    The manifest is written to a private directory and moved into place, so
    two processes loading the definitions at once never read half a file.
    """
    if MANIFEST.exists() and MANIFEST.stat().st_mtime >= _sources_mtime():
        return MANIFEST
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=MANIFEST.parent, prefix=".parse-") as scratch:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "dbt"), "parse", "--quiet",
             "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
             "--target-path", scratch, "--log-path", scratch],
            capture_output=True, text=True, env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        )  # fmt: skip
        if proc.returncode != 0:
            raise DbtProjectError(f"dbt parse failed:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}")
        os.replace(Path(scratch) / "manifest.json", MANIFEST)
    return MANIFEST


@dataclass(frozen=True)
class Source:
    """A dbt source as staged: the lake table and how much of its history the marts need."""

    identifier: str
    through_day: bool  # every day up to the partition, not only the partition itself
    where: str | None = None  # a row filter in pyiceberg's syntax: only these rows are staged


def lake_sources(manifest: dict[str, Any]) -> list[Source]:
    """The manifest's sources that are lake tables (``raw``/``core``), as staging needs them.

    A source's ``meta`` says how much to stage: ``stage: through_day`` for
    every day up to the partition, ``stage_where`` for a row filter.
    """
    out = []
    for node in manifest["sources"].values():
        identifier = f"{node['source_name']}.{node['name']}"
        if identifier in TABLES:
            meta = node.get("meta") or {}
            out.append(Source(identifier, through_day=meta.get("stage") == "through_day",
                              where=meta.get("stage_where")))  # fmt: skip
    return sorted(out, key=lambda s: s.identifier)


def _refdata(members: Iterable[Member], securities: Iterable[Security]) -> dict[str, pa.Table]:
    """The reference data as tables, columns derived from its Structs (one definition)."""
    return {
        "refdata.members": to_table(list(members), Member),
        "refdata.securities": to_table(list(securities), Security),
    }


def stage_day(
    catalog: Catalog,
    day: date,
    database: Path,
    sources: list[Source],
    members: Iterable[Member],
    securities: Iterable[Security],
) -> dict[str, int]:
    """Copy the day's lake partitions (and the reference data) into ``database``; rows per table.

    A lake table that does not exist yet is staged empty with its registered
    columns, so the marts of a day without trades are built (empty), not failed.
    """
    import duckdb

    tables: dict[str, pa.Table] = {}
    for source in sources:
        tdef = TABLES[source.identifier]
        if not catalog.table_exists(source.identifier):
            tables[source.identifier] = tdef.stored_schema.empty_table()
            continue
        only = (at_most if source.through_day else equal_to)(PARTITION_COLUMN, day)
        if source.where:
            only = And(only, parse(source.where))
        tables[source.identifier] = (
            catalog.load_table(source.identifier).scan(row_filter=only).to_arrow()
        )
    tables.update(_refdata(members, securities))
    con = duckdb.connect(str(database))
    try:
        for identifier, data in tables.items():
            schema, name = identifier.split(".")
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            con.register("staged", data)
            con.execute(f'CREATE OR REPLACE TABLE "{schema}"."{name}" AS SELECT * FROM staged')
            con.unregister("staged")
    finally:
        con.close()
    return {identifier: data.num_rows for identifier, data in tables.items()}


def read_mart(database: Path, name: str) -> pa.Table:
    """A mart built in ``database`` without its partition column, ready to publish."""
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        table = con.execute(f'SELECT * FROM "marts"."{name}"').to_arrow_table()
    finally:
        con.close()
    return table.drop_columns([PARTITION_COLUMN])


def build_vars(day: date) -> str:
    return json.dumps({"trading_day": day.isoformat()})
