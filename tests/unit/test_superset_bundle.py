"""The Superset bundle as committed: generated parts current, references whole, no secrets.

The checks that need Trino (every dataset's SQL runs, every chart's data comes
back through Superset) are in tests/integration/test_dashboards.py; here the
bundle is checked against a stand-in for Trino that answers from the lake's
registry, which is what the physical datasets must agree with.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from assets.platform.stack import READ_CATALOG
from dashboards import superset_bundle as generated
from dashboards.provisioning import (
    Bundle,
    BundleError,
    LakeConnection,
    add_queries,
    check,
    read_files,
    render_connection,
)
from dashboards.superset_queries import TIMESERIES, query_context, referenced_columns
from lake.query import LakeQueryError
from lake.tables import TABLES
from streaming.events import PRICE_SCALE

pytestmark = pytest.mark.unit

LAKE = LakeConnection(
    "127.0.0.1", 18080, "marketlake_reader", "secret", Path("/srv/trino/ca.pem"), READ_CATALOG
)


class RegistryTrino:
    """Answers a physical dataset's columns from the lake's registry; views as told."""

    def __init__(self, views: dict[str, list[tuple[str, str]]] | None = None) -> None:
        self.views = views or {}

    def columns(self, sql: str) -> list[tuple[str, str]]:
        found = re.fullmatch(r'SELECT \* FROM "(\w+)"\."(\w+)"\."(\w+)"', sql)
        if found is None:
            for marker, columns in self.views.items():
                if marker in sql:
                    return columns
            raise LakeQueryError("trino: not answered here (a view)")
        catalog, namespace, name = found.groups()
        assert catalog == READ_CATALOG
        table = TABLES.get(f"{namespace}.{name}")
        if table is None:
            raise LakeQueryError(f"trino: TABLE_NOT_FOUND: {namespace}.{name}")
        return [(f.name, generated.trino_type(f.type).lower()) for f in table.stored_schema]


def _configs(kind: str) -> dict[str, dict]:
    return {
        rel: yaml.safe_load(text)
        for rel, text in read_files(generated.BUNDLE_DIR).items()
        if rel.startswith(f"{kind}/")
    }


def test_generated_files_are_current():
    assert generated.differences() == [], "run: python -m dashboards.superset_bundle"
    assert generated.main(["--check"]) == 0


def test_a_dataset_per_lake_table_in_the_read_only_catalog():
    lake = {rel: c for rel, c in _configs("datasets").items() if rel.startswith("datasets/lake/")}
    assert {f"{c['schema']}.{c['table_name']}" for c in lake.values()} == set(TABLES)
    assert {c["catalog"] for c in _configs("datasets").values()} == {READ_CATALOG}
    trades = yaml.safe_load(
        (generated.BUNDLE_DIR / "datasets/lake/marts.fct_trades.yaml").read_text()
    )
    types = {c["column_name"]: c["type"] for c in trades["columns"]}
    assert types["notional"] == "DECIMAL(18, 4)" and types["traded_at"] == "TIMESTAMP(6)"
    assert [c["column_name"] for c in trades["columns"] if c["is_dttm"]] == [
        "traded_at",
        "trading_day",
    ]
    assert generated.dataset_uuid("marts.fct_trades") == trades["uuid"]  # stable across runs


def test_the_connection_holds_no_secret_and_no_path():
    text = (generated.BUNDLE_DIR / generated.DATABASE_FILE).read_text()
    config = yaml.safe_load(text)
    assert config["sqlalchemy_uri"] == (
        "trino://{{ trino_user }}:XXXXXXXXXX@{{ trino_host }}:{{ trino_port }}/" + READ_CATALOG
    )
    assert config["extra"]["engine_params"]["connect_args"] == {
        "http_scheme": "https", "verify": "{{ trino_ca_file }}",
    }  # fmt: skip
    assert not config["allow_dml"] and not config["allow_file_upload"]
    rendered = yaml.safe_load(render_connection(text, LAKE))
    assert rendered["sqlalchemy_uri"] == (
        f"trino://marketlake_reader:XXXXXXXXXX@127.0.0.1:18080/{READ_CATALOG}"
    )
    assert rendered["extra"]["engine_params"]["connect_args"]["verify"] == "/srv/trino/ca.pem"
    for path in generated.BUNDLE_DIR.rglob("*.yaml"):
        body = path.read_text()
        assert not re.search(r"(/tmp/|/root/|/home/|password:)", body), path
        assert "secret" not in body.lower(), path


def test_every_reference_holds_and_charts_name_real_columns():
    bundle = Bundle.load(generated.BUNDLE_DIR, LAKE)
    views = {
        rel: c for rel, c in bundle.of("datasets").items() if c.get("sql")
    }  # their columns come from Trino: answer with what the charts on them name
    named: dict[str, set[str]] = {}
    for chart in bundle.of("charts").values():
        named.setdefault(chart["dataset_uuid"], set()).update(referenced_columns(chart["params"]))
    for config in bundle.of("dashboards").values():
        for flt in config["metadata"]["native_filter_configuration"]:
            for target in flt["targets"]:
                if "datasetUuid" in target:
                    named.setdefault(target["datasetUuid"], set()).add(target["column"]["name"])
    answers = {
        c["sql"].strip(): [(n, "varchar") for n in sorted(named.get(c["uuid"], {"trading_day"}))]
        for c in views.values()
    }
    check(bundle, LAKE, RegistryTrino(answers))  # raises BundleError if anything is off
    assert len(bundle.of("charts")) == 26 and len(bundle.of("dashboards")) == 4


def test_a_missing_table_refuses_the_bundle_naming_dataset_chart_and_dashboard(tmp_path):
    broken = tmp_path / "bundle"
    shutil.copytree(generated.BUNDLE_DIR, broken)
    path = broken / "datasets/lake/marts.fct_daily_bars.yaml"
    path.write_text(path.read_text().replace("table_name: fct_daily_bars", "table_name: gone"))
    bundle = Bundle.load(broken, LAKE)
    with pytest.raises(BundleError) as refused:
        check(bundle, LAKE, RegistryTrino())
    (problem,) = [p for p in refused.value.problems if "marts.fct_daily_bars.yaml" in p]
    assert "dataset 'gone'" in problem and "TABLE_NOT_FOUND" in problem
    assert "'Daily OHLC, VWAP and volume'" in problem and "'VWAP per symbol'" in problem
    assert "dashboards 'Market'" in problem


def test_a_writer_connection_is_refused():
    bundle = Bundle.load(generated.BUNDLE_DIR, LAKE)
    writer = LakeConnection("127.0.0.1", 18080, "marketlake", "x", Path("/ca.pem"), "iceberg")
    with pytest.raises(BundleError) as refused:
        check(bundle, writer, RegistryTrino())
    assert "dashboards read as 'marketlake' from 'iceberg' only" in str(refused.value)


def test_every_written_chart_gets_the_query_its_parameters_mean():
    bundle = Bundle.load(generated.BUNDLE_DIR, LAKE)
    added = add_queries(bundle)
    assert len(added) == len(bundle.of("charts"))
    for chart in bundle.of("charts").values():
        params = chart["params"]
        context = json.loads(chart["query_context"])
        (query,) = context["queries"]
        assert context["form_data"] == params and query["time_range"] == "No filter"
        assert {"col": "trading_day", "op": "TEMPORAL_RANGE", "val": "No filter"} in query[
            "filters"
        ]
        if params["viz_type"] in TIMESERIES:
            axis = query["columns"][0]
            assert axis["columnType"] == "BASE_AXIS" and axis["sqlExpression"] == params["x_axis"]
            assert axis.get("timeGrain") == params.get("time_grain_sqla")
            assert query["series_columns"] == params["groupby"]
        elif params.get("query_mode") == "raw":
            assert query["columns"] == params["all_columns"] and query["metrics"] == []
        elif params["viz_type"] == "table":
            assert query["columns"] == params["groupby"] and query["metrics"] == params["metrics"]
        else:
            assert query["metrics"] == [params["metric"]]


def test_sql_filters_and_simple_filters_go_where_superset_expects_them():
    query = query_context({
        "viz_type": "big_number_total",
        "metric": {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "n"},
        "adhoc_filters": [
            {"expressionType": "SIMPLE", "clause": "WHERE", "subject": "side", "operator": "==",
             "comparator": "buy"},
            {"expressionType": "SQL", "clause": "WHERE", "sqlExpression": "qty > 10"},
            {"expressionType": "SQL", "clause": "HAVING", "sqlExpression": "COUNT(*) > 1"},
            {"expressionType": "SIMPLE", "clause": "WHERE", "subject": "reason",
             "operator": "IS NULL"},
        ],
    })["queries"][0]  # fmt: skip
    assert query["filters"] == [
        {"col": "side", "op": "==", "val": "buy"}, {"col": "reason", "op": "IS NULL"},
    ]  # fmt: skip
    assert query["extras"] == {"where": "(qty > 10)", "having": "(COUNT(*) > 1)"}


def test_views_convert_prices_with_the_lake_scale():
    # the views divide 1/10,000 price units by 1e4: this breaks if the scale changes
    assert PRICE_SCALE == 10_000
    views = {c["table_name"]: c["sql"] for c in _configs("datasets").values() if c.get("sql")}
    assert '"close" / 1e4' in views["market_intraday_1m"]
    assert "spread_twa / 1e4" in views["market_spreads"]
