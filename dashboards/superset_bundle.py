"""The Superset bundle in ``dashboards/superset/``, and the part of it generated from the lake.

The bundle is Superset's own v1 asset format (``metadata.yaml``, ``databases/``,
``datasets/``, ``charts/``, ``dashboards/``), so it imports as is and a running
Superset exports back to it. Two kinds of file live there:

- Generated here, never edited by hand: the database connection and one
  physical dataset per lake table (``datasets/lake/<namespace>.<table>.yaml``).
  The lake's registry (:data:`lake.tables.TABLES`, which reads the dbt marts'
  contracts too) already declares every table's columns and types, so a column
  list written again in YAML could only drift from it. ``python -m
  dashboards.superset_bundle`` rewrites them; ``--check`` (and a unit test)
  fails when the committed files differ from what the registry gives.
- Written by people (or exported from Superset by ``marketlake dashboards
  export``): the virtual datasets a chart needs SQL for (``datasets/views/``),
  the charts and the dashboards.

The connection holds no secret and no machine's path: it names the lake's
read-only Trino catalog and leaves host, port, user and the certificate to
trust as Jinja placeholders (``{{ trino_host }}``, ...) that ``marketlake
dashboards deploy`` fills in for the running stack; the password is masked as
Superset masks it in exports and is sent beside the bundle at import.
Identifiers are stable: a generated dataset's UUID is derived from its table's
name, so a regenerated bundle updates the same Superset objects.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from lake.tables import PARTITION_COLUMN, TABLES, TableDef

BUNDLE_DIR = Path(__file__).with_name("superset")
"""The committed bundle."""

READ_CATALOG = "iceberg_ro"
"""Trino's read-only catalog on the lake (the stack's ``READ_CATALOG``; a unit test ties them)."""

DATABASE_NAME = "marketlake lake"
DATABASE_FILE = "databases/marketlake_lake.yaml"
DATABASE_UUID = "6f1d9a3e-2c4b-4f7e-9a51-3d8c0b7e5a10"
LAKE_DATASETS = "datasets/lake"
"""Where the generated physical datasets live (the rest of ``datasets/`` is written by people)."""

PASSWORD_MASK = "X" * 10
"""How Superset masks a password in an exported connection (``superset.models.core``)."""

TEMPLATE_VARIABLES = ("trino_host", "trino_port", "trino_user", "trino_ca_file")
"""The placeholders of the connection that a deploy fills in."""

GENERATED_HEADER = (
    "# Generated from the lake's table registry (lake/tables.py) by\n"
    "# `python -m dashboards.superset_bundle`: do not edit, regenerate.\n"
)

_UUID_NAMESPACE = uuid.UUID("0b9e8f52-5d0c-4c8e-8f0e-6a7b1f3c2d41")


def dataset_uuid(identifier: str) -> str:
    """The generated dataset's UUID for lake table ``identifier`` (``raw.trades``): stable."""
    return str(uuid.uuid5(_UUID_NAMESPACE, f"dataset:{identifier}"))


def trino_type(dtype: pa.DataType) -> str:
    """The type Trino reports for a lake column of Arrow type ``dtype`` (upper case)."""
    if pa.types.is_list(dtype) or pa.types.is_fixed_size_list(dtype):
        return f"ARRAY({trino_type(dtype.value_type)})"
    if pa.types.is_decimal(dtype):
        return f"DECIMAL({dtype.precision}, {dtype.scale})"
    if pa.types.is_timestamp(dtype):
        digits = {"s": 0, "ms": 3, "us": 6, "ns": 9}[dtype.unit]
        zone = " WITH TIME ZONE" if dtype.tz else ""
        return f"TIMESTAMP({digits}){zone}"
    simple = {
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.float64(): "DOUBLE",
        pa.float32(): "REAL",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
        pa.binary(): "VARBINARY",
        pa.large_binary(): "VARBINARY",
    }
    if dtype in simple:
        return simple[dtype]
    raise ValueError(f"no Trino type for the lake's Arrow type {dtype}")


def is_temporal(type_name: str) -> bool:
    """Is a column of this Trino type one Superset may use as time (``is_dttm``)?"""
    return type_name.upper().startswith(("DATE", "TIMESTAMP"))


def column_config(name: str, type_name: str) -> dict[str, Any]:
    """One dataset column as Superset's bundle writes it."""
    return {
        "column_name": name,
        "verbose_name": None,
        "is_dttm": is_temporal(type_name),
        "is_active": True,
        "type": type_name,
        "advanced_data_type": None,
        "groupby": True,
        "filterable": True,
        "expression": None,
        "description": None,
        "python_date_format": None,
        "extra": {},
    }


COUNT_METRIC: dict[str, Any] = {
    "metric_name": "count",
    "verbose_name": "COUNT(*)",
    "metric_type": "count",
    "expression": "COUNT(*)",
    "description": None,
    "d3format": None,
    "currency": None,
    "extra": {},
    "warning_text": None,
}


def dataset_config(table: TableDef) -> dict[str, Any]:
    """The physical dataset over lake table ``table`` in the read-only catalog."""
    return {
        "table_name": table.name,
        "main_dttm_col": PARTITION_COLUMN,
        "description": table.description or None,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "catalog": READ_CATALOG,
        "schema": table.namespace,
        "sql": None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "always_filter_main_dttm": False,
        "uuid": dataset_uuid(table.identifier),
        "metrics": [dict(COUNT_METRIC)],
        "columns": [column_config(f.name, trino_type(f.type)) for f in table.stored_schema],
        "version": "1.0.0",
        "database_uuid": DATABASE_UUID,
    }


def database_config() -> dict[str, Any]:
    """The lake as Superset's database: Trino's read-only catalog, its reader, HTTPS.

    ``verify`` makes the Trino client check the server against the stack's own
    certificate (a path on the machine that deploys, hence a placeholder); the
    password in the URI is Superset's mask, replaced at import by the one sent
    beside the bundle. No DML, no CTAS/CVAS, no uploads: the dashboards only read.
    """
    uri = (
        f"trino://{{{{ trino_user }}}}:{PASSWORD_MASK}@{{{{ trino_host }}}}:"
        f"{{{{ trino_port }}}}/{READ_CATALOG}"
    )
    return {
        "database_name": DATABASE_NAME,
        "sqlalchemy_uri": uri,
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_file_upload": False,
        "impersonate_user": False,
        "extra": {
            "allows_virtual_table_explore": True,
            "engine_params": {
                "connect_args": {"http_scheme": "https", "verify": "{{ trino_ca_file }}"}
            },
            "metadata_params": {},
            "schemas_allowed_for_file_upload": [],
        },
        "uuid": DATABASE_UUID,
        "version": "1.0.0",
    }


def dump(config: Mapping[str, Any]) -> str:
    """YAML as the bundle writes it: keys in their given order, block style, wide lines."""
    return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True, width=100)


def generated_files() -> dict[str, str]:
    """Every generated file of the bundle: path relative to the bundle -> text."""
    files = {DATABASE_FILE: GENERATED_HEADER + dump(database_config())}
    for identifier, table in sorted(TABLES.items()):
        files[f"{LAKE_DATASETS}/{identifier}.yaml"] = GENERATED_HEADER + dump(dataset_config(table))
    return files


def _generated_on_disk(bundle: Path) -> set[str]:
    lake = bundle / LAKE_DATASETS
    found = (
        {p.relative_to(bundle).as_posix() for p in lake.glob("*.yaml")} if lake.is_dir() else set()
    )
    if (bundle / DATABASE_FILE).exists():
        found.add(DATABASE_FILE)
    return found


def differences(bundle: Path = BUNDLE_DIR) -> list[str]:
    """Generated files that are missing, differ or should no longer be there ([] if none)."""
    wanted = generated_files()
    problems = []
    for path, text in wanted.items():
        target = bundle / path
        if not target.exists():
            problems.append(f"{path}: missing")
        elif target.read_text() != text:
            problems.append(f"{path}: differs from the lake's registry")
    problems += [
        f"{p}: no such lake table" for p in sorted(_generated_on_disk(bundle) - set(wanted))
    ]
    return problems


def write(bundle: Path = BUNDLE_DIR) -> list[str]:
    """Write the generated files (and drop those of tables no longer registered); what changed."""
    changed = differences(bundle)
    wanted = generated_files()
    for path in _generated_on_disk(bundle) - set(wanted):
        (bundle / path).unlink()
    for path, text in wanted.items():
        target = bundle / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboards.superset_bundle",
        description="Regenerate the Superset bundle's connection and lake datasets from the "
        "lake's table registry.",
    )
    parser.add_argument("--check", action="store_true", help="only report differences")
    parser.add_argument("--bundle", type=Path, default=BUNDLE_DIR)
    args = parser.parse_args(argv)
    if args.check:
        problems = differences(args.bundle)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("regenerate with: python -m dashboards.superset_bundle", file=sys.stderr)
        return 1 if problems else 0
    for change in write(args.bundle):
        print(f"updated {change}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
