"""The query a Superset chart runs, built from its parameters, for charts written by hand.

Superset's browser code turns a chart's parameters (its ``form_data``) into the
query it sends, and saves that query with the chart (``query_context``) when
someone presses Save. A chart written as YAML has no such query until then;
without one Superset's chart data API (``GET /api/v1/chart/<id>/data/``), its
cache warm-up and its alerts and reports cannot run the chart. So the deploy
adds the query a chart's parameters mean, for the chart types the bundle uses,
built as Superset's own ``buildQuery`` builds it for them:

- ``table`` (aggregated: group-by columns and metrics; raw: the listed columns
  in the listed order),
- ``echarts_timeseries_line`` and ``echarts_timeseries_bar`` (the x axis as the
  base axis with its time grain, series per group-by column, pivoted),
- ``big_number_total`` (one metric).

A chart exported from Superset keeps the query Superset saved; this module is
only asked for charts without one. The dataset's id is left at 0: the import
points the query at the dataset it imported (``update_chart_config_dataset``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

Params = Mapping[str, Any]
Query = dict[str, Any]

TIMESERIES = ("echarts_timeseries_line", "echarts_timeseries_bar")


class UnsupportedChart(ValueError):
    """A chart type whose query this module does not build."""


def metric_label(metric: Any) -> str:
    """The column name a metric's values come back under."""
    if isinstance(metric, str):
        return metric
    if metric.get("label"):
        return str(metric["label"])
    if metric.get("expressionType") == "SQL":
        return str(metric["sqlExpression"])
    return f"{metric['aggregate']}({metric['column']['column_name']})"


def column_label(column: Any) -> str:
    if isinstance(column, str):
        return column
    return str(column.get("label") or column.get("sqlExpression") or column["column_name"])


def referenced_columns(params: Params) -> list[str]:
    """The dataset columns a chart names directly (not those inside SQL expressions)."""
    names: list[Any] = []
    names += [params["x_axis"]] if isinstance(params.get("x_axis"), str) else []
    for key in ("groupby", "all_columns", "columns"):
        names += [c for c in params.get(key) or [] if isinstance(c, str)]
    for flt in params.get("adhoc_filters") or []:
        if flt.get("expressionType") == "SIMPLE":
            names.append(flt["subject"])
    for entry in params.get("order_by_cols") or []:
        names.append(json.loads(entry)[0])
    for metric in [*(params.get("metrics") or []), params.get("metric")]:
        if isinstance(metric, dict) and metric.get("expressionType") == "SIMPLE":
            names.append(metric["column"]["column_name"])
    return list(dict.fromkeys(str(n) for n in names))


def _filters(params: Params) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Adhoc filters as the query's simple filters and its WHERE/HAVING SQL."""
    simple: list[dict[str, Any]] = []
    sql: dict[str, list[str]] = {"WHERE": [], "HAVING": []}
    for flt in params.get("adhoc_filters") or []:
        if flt.get("expressionType") == "SQL":
            sql[flt.get("clause", "WHERE")].append(f"({flt['sqlExpression']})")
            continue
        entry = {"col": flt["subject"], "op": flt["operator"]}
        if "comparator" in flt and flt["operator"] not in ("IS NULL", "IS NOT NULL"):
            entry["val"] = flt["comparator"]
        simple.append(entry)
    return simple, {"where": " AND ".join(sql["WHERE"]), "having": " AND ".join(sql["HAVING"])}


def _base(params: Params) -> Query:
    filters, extras = _filters(params)
    return {
        "filters": filters,
        "extras": extras,
        "applied_time_extras": {},
        "columns": [],
        "metrics": [],
        "orderby": [],
        "annotation_layers": [],
        "row_limit": int(params.get("row_limit") or 10_000),
        "series_limit": 0,
        "order_desc": bool(params.get("order_desc", True)),
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
        "time_range": params.get("time_range", "No filter"),
    }


def _table(params: Params) -> Query:
    if params.get("query_mode") == "raw":
        return {
            "columns": list(params["all_columns"]),
            "orderby": [json.loads(entry) for entry in params.get("order_by_cols") or []],
        }
    metrics = list(params.get("metrics") or [])
    sort_by = params.get("timeseries_limit_metric") or (metrics[0] if metrics else None)
    ascending = not params.get("order_desc", True)
    return {
        "columns": list(params.get("groupby") or []),
        "metrics": metrics,
        "orderby": [[sort_by, ascending]] if sort_by is not None else [],
    }


def _timeseries(params: Params) -> Query:
    x_axis = params["x_axis"]
    grain = params.get("time_grain_sqla")
    axis: dict[str, Any] = {
        "columnType": "BASE_AXIS",
        "sqlExpression": x_axis,
        "label": x_axis,
        "expressionType": "SQL",
    }
    if grain:
        axis["timeGrain"] = grain
    groupby = list(params.get("groupby") or [])
    metrics = list(params["metrics"])
    labels = [metric_label(m) for m in metrics]
    post: list[dict[str, Any]] = [
        {
            "operation": "pivot",
            "options": {
                "index": [x_axis],
                "columns": [column_label(c) for c in groupby],
                "aggregates": {label: {"operator": "mean"} for label in labels},
                "drop_missing_columns": not params.get("show_empty_columns", True),
            },
        }
    ]
    if groupby and len(metrics) == 1:
        post.append(
            {
                "operation": "rename",
                "options": {"columns": {labels[0]: None}, "level": 0, "inplace": True},
            }
        )
    post.append({"operation": "flatten"})
    return {
        "columns": [axis, *groupby],
        "metrics": metrics,
        "orderby": [[metrics[0], False]],
        "series_columns": groupby,
        "series_limit": int(params.get("limit") or 0),
        "extras": {**_filters(params)[1], **({"time_grain_sqla": grain} if grain else {})},
        "time_offsets": [],
        "post_processing": post,
    }


def _big_number_total(params: Params) -> Query:
    return {"metrics": [params["metric"]]}


BUILDERS: dict[str, Callable[[Params], Query]] = {
    "table": _table,
    "big_number_total": _big_number_total,
    **dict.fromkeys(TIMESERIES, _timeseries),
}


def query_context(params: Params) -> dict[str, Any]:
    """The query context Superset would save for a chart with these parameters."""
    viz = params.get("viz_type")
    builder = BUILDERS.get(str(viz))
    if builder is None:
        raise UnsupportedChart(
            f"no query is built for chart type {viz!r} (known: {', '.join(sorted(BUILDERS))}); "
            "save the chart in Superset and export it"
        )
    return {
        "datasource": {"id": 0, "type": "table"},
        "force": False,
        "queries": [{**_base(params), **builder(params)}],
        "form_data": dict(params),
        "result_format": "json",
        "result_type": "full",
    }
