"""Provision the Superset bundle into a running Superset, and export Superset back to it.

``deploy`` imports ``dashboards/superset/`` through Superset's own import API
(``POST /api/v1/assets/import/``, the one its "Import" button and preset-cli's
``sync native`` use) and ``export`` reads the dashboards back through its export
API. Why like this:

- Superset's API, not preset-cli: preset-cli's ``sync native`` renders the
  YAML, zips it and posts it to this same endpoint, but it takes Superset's
  password only on its command line (``--password``) or from a terminal prompt,
  and database passwords likewise (``--db-password``), where ``ps`` shows them;
  it would also add its own dependencies to Superset's locked environment. Here
  the admin's password comes from Superset's credentials file and Trino's
  reader password from Trino's, and both travel only in request bodies to
  127.0.0.1 (the login, and the import's ``passwords`` field).
- Idempotent: every object carries a fixed UUID and the assets import
  overwrites objects with the same UUID, so deploying again updates the same
  dashboards, charts and datasets (same ids, no duplicates).
- Checked before anything is imported: every dataset's table or SQL is asked
  of Trino, as the reader, for its columns (``SELECT * FROM (...) LIMIT 0``, no
  row read), and every column a chart or a native filter names must be one of
  them. A broken dataset refuses the whole bundle with a message naming the
  file, the dataset and the charts and dashboards that use it; Superset itself
  would import it and fail only when someone opens the chart.
- A virtual dataset's columns are what Trino says its SQL returns (attributes
  written in the YAML are kept), so no column list is written by hand for SQL
  that already determines it; physical datasets come from the lake's registry
  (:mod:`dashboards.superset_bundle`).
- Charts written as YAML get the query their parameters mean
  (:mod:`dashboards.superset_queries`), so the chart data API runs them; after
  the import every chart's data is fetched through Superset (``verify``), which
  proves the connection, the certificate and the SQL from Superset's side.
- The connection is the lake's read-only principal on the read-only catalog,
  over HTTPS verified against Trino's certificate: the caller passes a
  :class:`LakeConnection` with the reader's credentials, and the bundle's
  connection must name that catalog.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import jinja2
import yaml

from dashboards import superset_bundle as generated
from dashboards.superset_queries import UnsupportedChart, query_context, referenced_columns
from lake.query import LakeQueryError

ASSET_DIRS = ("databases", "datasets", "charts", "dashboards")


class BundleError(ValueError):
    """The bundle is refused; ``problems`` says what is wrong, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the bundle is refused:\n" + "\n".join(f"- {p}" for p in problems))


class SupersetError(RuntimeError):
    """Superset refused a request, or did not answer; the message is Superset's."""


@dataclass(frozen=True)
class LakeConnection:
    """How Superset reaches the lake: Trino's read-only principal over HTTPS."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    ca_file: Path
    catalog: str


@dataclass(frozen=True)
class SupersetLogin:
    url: str
    username: str
    password: str = field(repr=False)


class ColumnSource(Protocol):
    """What the bundle's SQL is checked against: ``lake.query.TrinoEngine`` as the reader.

    ``columns`` raises ``LakeQueryError`` for SQL that does not run.
    """

    def columns(self, sql: str) -> list[tuple[str, str]]: ...


# -- the bundle ----------------------------------------------------------------------------


def read_files(bundle: Path) -> dict[str, str]:
    """``metadata.yaml`` and every asset YAML of the bundle: relative path -> text."""
    files = {}
    for path in sorted(bundle.rglob("*.yaml")):
        rel = path.relative_to(bundle).as_posix()
        if rel == "metadata.yaml" or rel.split("/")[0] in ASSET_DIRS:
            files[rel] = path.read_text()
    if "metadata.yaml" not in files:
        raise BundleError([f"{bundle}: no metadata.yaml (not a Superset asset bundle)"])
    return files


def render_connection(text: str, lake: LakeConnection) -> str:
    """A database file with its placeholders filled in; an unknown placeholder is an error."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return env.from_string(text).render(
        trino_host=lake.host,
        trino_port=lake.port,
        trino_user=lake.user,
        trino_ca_file=str(lake.ca_file),
    )


@dataclass
class Bundle:
    """The bundle's assets, parsed: relative path -> config."""

    configs: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, directory: Path, lake: LakeConnection) -> Bundle:
        configs: dict[str, dict[str, Any]] = {}
        problems = []
        for rel, text in read_files(directory).items():
            if rel.startswith("databases/"):
                try:
                    text = render_connection(text, lake)
                except jinja2.TemplateError as exc:
                    problems.append(f"{rel}: {exc}")
                    continue
            try:
                loaded = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                problems.append(f"{rel}: not YAML: {exc}")
                continue
            if not isinstance(loaded, dict):
                problems.append(f"{rel}: not a mapping")
                continue
            configs[rel] = loaded
        if problems:
            raise BundleError(problems)
        return cls(configs)

    def of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {p: c for p, c in self.configs.items() if p.startswith(f"{kind}/")}

    def to_zip(self) -> bytes:
        """The bundle as Superset imports it (one top directory; metadata dated now)."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel, config in self.configs.items():
                if rel == "metadata.yaml":
                    config = {**config, "timestamp": datetime.now(UTC).isoformat()}
                zf.writestr(f"bundle/{rel}", generated.dump(config))
        return buf.getvalue()


def _users(bundle: Bundle) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Dataset UUID -> names of the charts on it; and -> dashboards that show or filter on it."""
    charts: dict[str, list[str]] = {}
    chart_dataset = {}
    for config in bundle.of("charts").values():
        charts.setdefault(str(config.get("dataset_uuid")), []).append(str(config["slice_name"]))
        chart_dataset[str(config["uuid"])] = str(config.get("dataset_uuid"))
    boards: dict[str, list[str]] = {}
    for config in bundle.of("dashboards").values():
        title = str(config["dashboard_title"])
        used = {chart_dataset.get(u) for u in _dashboard_charts(config)}
        used |= {
            t.get("datasetUuid") for f in _native_filters(config) for t in f.get("targets", [])
        }
        for dataset in used - {None}:
            boards.setdefault(str(dataset), []).append(title)
    return charts, boards


def _dashboard_charts(config: Mapping[str, Any]) -> list[str]:
    return [
        str(item["meta"]["uuid"])
        for item in (config.get("position") or {}).values()
        if isinstance(item, dict) and item.get("type") == "CHART" and "uuid" in item.get("meta", {})
    ]


def _native_filters(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((config.get("metadata") or {}).get("native_filter_configuration") or [])


def _dataset_sql(config: Mapping[str, Any]) -> str:
    if config.get("sql"):
        return str(config["sql"]).strip().rstrip(";")
    parts = [config.get("catalog"), config.get("schema"), config["table_name"]]
    return "SELECT * FROM " + ".".join('"' + str(p).replace('"', '""') + '"' for p in parts if p)


def check(bundle: Bundle, lake: LakeConnection, source: ColumnSource) -> None:
    """Raise :class:`BundleError` unless every reference holds and every dataset runs on Trino.

    Fills in the columns of virtual datasets from what Trino says their SQL
    returns (keeping what the YAML says of a column it also lists).
    """
    problems = _check_connection(bundle, lake)
    columns = _check_datasets(bundle, source, problems)
    _check_charts(bundle, columns, problems)
    _check_dashboards(bundle, columns, problems)
    if problems:
        raise BundleError(problems)


def _check_connection(bundle: Bundle, lake: LakeConnection) -> list[str]:
    """The bundle's connections must be the reader's, on the read-only catalog."""
    problems = []
    for rel, config in bundle.of("databases").items():
        uri = urlsplit(str(config.get("sqlalchemy_uri", "")))
        if uri.username != lake.user or uri.path.strip("/") != lake.catalog:
            problems.append(
                f"{rel}: connects as {uri.username!r} to catalog {uri.path.strip('/')!r}; "
                f"dashboards read as {lake.user!r} from {lake.catalog!r} only"
            )
    return problems


def _check_datasets(
    bundle: Bundle, source: ColumnSource, problems: list[str]
) -> dict[str, set[str]]:
    """Ask Trino for every dataset's columns; dataset UUID -> column names of those that run."""
    database_uuids = {str(c["uuid"]) for c in bundle.of("databases").values()}
    charts_on, boards_on = _users(bundle)
    columns: dict[str, set[str]] = {}
    for rel, config in bundle.of("datasets").items():
        key = str(config.get("uuid"))
        charts = ", ".join(map(repr, sorted(charts_on.get(key, [])))) or "(none)"
        boards = ", ".join(map(repr, sorted(boards_on.get(key, [])))) or "(none)"
        where = (
            f"{rel} (dataset {config.get('table_name')!r}, used by charts {charts}; "
            f"dashboards {boards})"
        )
        if str(config.get("database_uuid")) not in database_uuids:
            problems.append(
                f"{where}: its database {config.get('database_uuid')} is not in the bundle"
            )
            continue
        try:
            found = source.columns(_dataset_sql(config))
        except LakeQueryError as exc:  # Trino's message names what is wrong
            problems.append(f"{where}: {exc}")
            continue
        declared = {c["column_name"]: c for c in config.get("columns") or []}
        actual = dict(found)
        missing = [n for n in declared if n not in actual and not declared[n].get("expression")]
        if missing:
            problems.append(f"{where}: no column {', '.join(missing)} in what Trino returns")
            continue
        if config.get("sql"):
            config["columns"] = [
                declared.get(name) or generated.column_config(name, type_name.upper())
                for name, type_name in found
            ] + [c for n, c in declared.items() if n not in actual]
        columns[key] = {c["column_name"] for c in config.get("columns") or []}
    return columns


def _check_charts(bundle: Bundle, columns: Mapping[str, set[str]], problems: list[str]) -> None:
    """Each chart's dataset is in the bundle and has every column the chart names."""
    datasets = {str(d.get("uuid")) for d in bundle.of("datasets").values()}
    for rel, config in bundle.of("charts").items():
        dataset = str(config.get("dataset_uuid"))
        name = f"{rel} (chart {config.get('slice_name')!r})"
        if dataset not in datasets:
            problems.append(f"{name}: its dataset {dataset} is not in the bundle")
            continue
        named = referenced_columns(config.get("params") or {})
        unknown = [c for c in named if dataset in columns and c not in columns[dataset]]
        if unknown:
            problems.append(f"{name}: its dataset has no column {', '.join(unknown)}")


def _check_dashboards(bundle: Bundle, columns: Mapping[str, set[str]], problems: list[str]) -> None:
    """Each dashboard's charts are in the bundle, and each filter's dataset and column."""
    charts = {str(c.get("uuid")) for c in bundle.of("charts").values()}
    datasets = {str(d.get("uuid")) for d in bundle.of("datasets").values()}
    for rel, config in bundle.of("dashboards").items():
        name = f"{rel} (dashboard {config.get('dashboard_title')!r})"
        missing = [u for u in _dashboard_charts(config) if u not in charts]
        if missing:
            problems.append(f"{name}: shows charts not in the bundle: {', '.join(missing)}")
        for flt in _native_filters(config):
            for target in flt.get("targets", []):
                dataset = target.get("datasetUuid")
                column = (target.get("column") or {}).get("name")
                if dataset is None:
                    continue
                if dataset not in datasets:
                    problems.append(
                        f"{name}: filter {flt.get('name')!r} is on a dataset not in the bundle"
                    )
                elif dataset in columns and column not in columns[dataset]:
                    problems.append(
                        f"{name}: filter {flt.get('name')!r}: its dataset has no column {column!r}"
                    )


def add_queries(bundle: Bundle) -> list[str]:
    """Give every chart without a saved query the one its parameters mean; their names."""
    added = []
    for rel, config in bundle.of("charts").items():
        if config.get("query_context"):
            continue
        try:
            config["query_context"] = json.dumps(query_context(config.get("params") or {}))
        except UnsupportedChart as exc:
            raise BundleError([f"{rel} (chart {config.get('slice_name')!r}): {exc}"]) from None
        added.append(str(config["slice_name"]))
    return added


# -- Superset's API -------------------------------------------------------------------------


class SupersetClient:
    """Superset's REST API as its admin: a JWT from the login, a CSRF token for writes."""

    def __init__(self, login: SupersetLogin, timeout: float = 300.0) -> None:
        # trust_env off: no proxy variables between us and 127.0.0.1
        self.http = httpx.Client(base_url=login.url, timeout=timeout, trust_env=False)
        response = self._send(
            "POST",
            "/api/v1/security/login",
            json={"username": login.username, "password": login.password, "provider": "db",
                  "refresh": False},
        )  # fmt: skip
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        self.http.headers["X-CSRFToken"] = self.get("/api/v1/security/csrf_token/")["result"]
        self.http.headers["Referer"] = login.url

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SupersetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise SupersetError(f"Superset at {self.http.base_url} did not answer: {exc}") from exc
        if response.status_code >= 400:
            raise SupersetError(f"{method} {path}: {response.status_code} {_message(response)}")
        return response

    def get(self, path: str, **params: str) -> dict[str, Any]:
        result: dict[str, Any] = self._send("GET", path, params=params or None).json()
        return result

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._send("POST", path, json=dict(body)).json()
        return result

    def delete(self, path: str) -> None:
        self._send("DELETE", path)

    def listing(self, kind: str, columns: Iterable[str]) -> list[dict[str, Any]]:
        """Every ``kind`` (chart, dashboard, dataset) with these columns, page by page."""
        order = {"chart": "slice_name", "dashboard": "dashboard_title", "dataset": "table_name"}
        rows: list[dict[str, Any]] = []
        page = 0
        while True:
            q = (
                f"(columns:!({','.join(columns)}),page:{page},page_size:100,"
                f"order_column:{order[kind]},order_direction:asc)"
            )
            found = self.get(f"/api/v1/{kind}/", q=q)
            rows += found["result"]
            if not found["result"] or len(rows) >= found["count"]:
                return rows
            page += 1

    def import_bundle(self, bundle: bytes, passwords: Mapping[str, str]) -> None:
        self._send(
            "POST",
            "/api/v1/assets/import/",
            files={"bundle": ("bundle.zip", bundle, "application/zip")},
            data={"passwords": json.dumps(dict(passwords)), "overwrite": "true"},
        )

    def export_dashboards(self, ids: Iterable[int]) -> bytes:
        q = f"!({','.join(str(i) for i in ids)})"
        return self._send("GET", "/api/v1/dashboard/export/", params={"q": q}).content

    def chart_data(self, chart_id: int) -> dict[str, Any]:
        """The chart's saved query, run on the lake (not from Superset's cache): its ``result``s."""
        return self.get(f"/api/v1/chart/{chart_id}/data/", force="true")


def _message(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith("text/html"):
        return "(an error page: Superset's log says why)"
    try:
        body = response.json()
    except ValueError:
        return response.text[:2000]
    if isinstance(body, dict):
        if "errors" in body:
            return "; ".join(_error_text(e) for e in body["errors"])
        if "message" in body:
            return (
                json.dumps(body["message"])
                if not isinstance(body["message"], str)
                else body["message"]
            )
    return json.dumps(body)[:2000]


def _error_text(error: Mapping[str, Any]) -> str:
    extra = error.get("extra") or {}
    details = {k: v for k, v in extra.items() if k not in ("issue_codes",)}
    return f"{error.get('message')}" + (f" {json.dumps(details)}" if details else "")


# -- deploy and export ----------------------------------------------------------------------


@dataclass
class Deployed:
    """One dashboard or chart as Superset holds it after the import."""

    uuid: str
    id: int
    name: str


@dataclass
class Check:
    """One query run through Superset after the import: a chart's, or a native filter's."""

    kind: str  # "chart" or "filter"
    name: str  # the chart's name; the filter's name and dashboard
    id: int  # the chart's id; the filter's dataset's id
    rows: int | None  # None: Superset reported an error
    error: str = ""
    seconds: float = 0.0


@dataclass
class DeployReport:
    url: str
    dashboards: list[Deployed]
    charts: list[Deployed]
    datasets: int
    queries_added: list[str]  # charts given the query their parameters mean
    checks: list[Check] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # "<kind> <name>": deployed before, gone now

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.rows is None]


# what a deploy may remove, dependants first (a dashboard holds charts, a chart a dataset)
_PRUNED = (("dashboards", "dashboard", "dashboard_title"), ("charts", "chart", "slice_name"),
           ("datasets", "dataset", "table_name"))  # fmt: skip


def _bundle_uuids(bundle: Bundle) -> dict[str, list[str]]:
    return {kind: sorted(str(c["uuid"]) for c in bundle.of(kind).values()) for kind, *_ in _PRUNED}


def read_deployed(state: Path) -> dict[str, list[str]]:
    """The UUIDs the last deploy into this Superset imported, by kind (none if never)."""
    try:
        loaded = json.loads(state.read_text())
    except FileNotFoundError:
        return {}
    return {str(k): [str(u) for u in v] for k, v in loaded.items()}


def prune(
    client: SupersetClient, before: Mapping[str, Sequence[str]], now: Mapping[str, Sequence[str]]
) -> list[str]:
    """Delete what an earlier deploy imported and the bundle no longer has; what went.

    Only objects of the bundle's own UUIDs are candidates: whatever a person made
    in Superset's UI was never deployed, so it is never removed.
    """
    removed = []
    for kind, api, title in _PRUNED:
        gone = set(before.get(kind, ())) - set(now.get(kind, ()))
        if not gone:
            continue
        for row in client.listing(api, ("id", "uuid", title)):
            if str(row["uuid"]) in gone:
                client.delete(f"/api/v1/{api}/{int(row['id'])}")
                removed.append(f"{api} {row[title]}")
    return removed


def deploy(
    directory: Path,
    lake: LakeConnection,
    login: SupersetLogin,
    source: ColumnSource,
    *,
    verify: bool = True,
    state: Path | None = None,
    on_step: Callable[[str], None] = lambda _: None,
) -> DeployReport:
    """Check the bundle against the lake, import it into Superset, then run what it shows.

    Raises :class:`BundleError` (nothing imported) or :class:`SupersetError`.
    ``state``: a file (beside Superset's data) naming what the last deploy imported;
    what it names and the bundle no longer has is deleted from Superset, so a chart
    or dashboard removed from the repository goes away (``removed``).
    ``verify``: afterwards, run every chart's query and the query that lists each
    native filter's values through Superset (``checks``), as a browser would.
    """
    on_step("checking the bundle against the lake")
    bundle = Bundle.load(directory, lake)
    check(bundle, lake, source)
    added = add_queries(bundle)
    passwords = {rel: lake.password for rel in bundle.of("databases")}
    with SupersetClient(login) as client:
        on_step("importing into Superset")
        client.import_bundle(bundle.to_zip(), passwords)
        removed: list[str] = []
        if state is not None:
            now = _bundle_uuids(bundle)
            removed = prune(client, read_deployed(state), now)
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps(now, indent=1) + "\n")
        report = DeployReport(
            login.url,
            _deployed(client, "dashboard", "dashboard_title", bundle.of("dashboards")),
            _deployed(client, "chart", "slice_name", bundle.of("charts")),
            len(bundle.of("datasets")),
            added,
            removed=removed,
        )
        if verify:
            for chart in report.charts:
                on_step(f"running chart {chart.name!r}")
                report.checks.append(run_chart(client, chart))
            datasets = {
                str(r["uuid"]): int(r["id"]) for r in client.listing("dataset", ("id", "uuid"))
            }
            for config in bundle.of("dashboards").values():
                for flt in _native_filters(config):
                    for target in flt.get("targets", []):
                        if target.get("datasetUuid") in datasets:
                            name = f"{flt.get('name')} ({config['dashboard_title']})"
                            on_step(f"listing the values of filter {name!r}")
                            column = str(target["column"]["name"])
                            dataset = datasets[target["datasetUuid"]]
                            report.checks.append(run_filter(client, name, dataset, column))
    return report


def _deployed(
    client: SupersetClient, kind: str, title: str, configs: Mapping[str, Mapping[str, Any]]
) -> list[Deployed]:
    """The bundle's objects of ``kind`` as Superset has them now, in the bundle's order."""
    ids = {str(row["uuid"]): row for row in client.listing(kind, ("id", "uuid", title))}
    found = []
    for rel, config in configs.items():
        row = ids.get(str(config["uuid"]))
        if row is None:
            raise SupersetError(f"{rel}: imported, yet Superset has no {kind} {config['uuid']}")
        found.append(Deployed(str(config["uuid"]), int(row["id"]), str(row[title])))
    return found


def _answer(kind: str, name: str, id_: int, fetch: Callable[[], dict[str, Any]]) -> Check:
    """Superset's answer to one query as a check: its rows, or the error it reports."""
    started = time.perf_counter()
    try:
        answer = fetch()
    except SupersetError as exc:
        return Check(kind, name, id_, None, str(exc), time.perf_counter() - started)
    results = answer.get("result", [])
    errors = [str(r["error"]) for r in results if r.get("error")]
    rows = sum(int(r.get("rowcount") or 0) for r in results)
    seconds = time.perf_counter() - started
    return Check(kind, name, id_, None if errors else rows, "; ".join(errors), seconds)


def run_chart(client: SupersetClient, chart: Deployed) -> Check:
    """Run one chart's saved query through Superset (on the lake, not from its cache)."""
    return _answer("chart", chart.name, chart.id, lambda: client.chart_data(chart.id))


def run_filter(client: SupersetClient, name: str, dataset: int, column: str) -> Check:
    """List a select filter's values through Superset, as the dashboard's filter bar does."""
    body = {
        "datasource": {"id": dataset, "type": "table"},
        "force": True,
        "queries": [{
            "columns": [column], "metrics": [], "orderby": [[column, True]], "filters": [],
            "extras": {}, "applied_time_extras": {}, "row_limit": 1000, "time_range": "No filter",
            "url_params": {}, "custom_params": {}, "custom_form_data": {},
        }],
        "form_data": {"viz_type": "filter_select", "groupby": [column], "datasource": f"{dataset}__table"},
        "result_format": "json",
        "result_type": "full",
    }  # fmt: skip
    return _answer("filter", name, dataset, lambda: client.post("/api/v1/chart/data", body))


# what export leaves out of a chart's parameters: they say which Superset it came from
# (its dataset's and its own ids) and the import sets them again from dataset_uuid
_INSTANCE_PARAMS = ("datasource", "slice_id", "dashboards")


@dataclass
class ExportReport:
    written: list[str]
    skipped: list[str]  # generated files, left to the generator
    only_in_bundle: list[str]  # charts and dashboards Superset no longer has


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unnamed"


def export(directory: Path, login: SupersetLogin) -> ExportReport:
    """Write Superset's dashboards, with their charts and virtual datasets, into the bundle.

    A file whose object is already in the bundle (same UUID) is rewritten in
    place; a new one gets a file named after it. The connection and the
    physical datasets are generated from the lake's registry and are not
    written (``skipped``); nor is anything of the bundle deleted: what Superset
    no longer has is listed (``only_in_bundle``). What a deploy would add again
    is left out, so an unchanged dashboard exports to an unchanged file: a
    chart's query when it is the one its parameters mean, a virtual dataset's
    columns as Trino reports them, empty fields the file did not have.
    """
    existing: dict[str, tuple[str, dict[str, Any]]] = {}
    for rel, text in read_files(directory).items():
        if rel == "metadata.yaml" or rel.startswith("databases/"):
            continue
        loaded = yaml.safe_load(text)
        if isinstance(loaded, dict) and "uuid" in loaded:
            existing[str(loaded["uuid"])] = (rel, loaded)
    with SupersetClient(login) as client:
        ids = [int(d["id"]) for d in client.listing("dashboard", ("id",))]
        archive = client.export_dashboards(ids) if ids else b""
    written: list[str] = []
    skipped: list[str] = []
    exported: set[str] = set()
    files: list[tuple[str, bytes]] = []
    if archive:
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            files = [(name, zf.read(name)) for name in sorted(zf.namelist())]
    for name, data in files:
        rel = name.split("/", 1)[-1]
        kind = rel.split("/")[0]
        if kind not in ("datasets", "charts", "dashboards"):
            continue
        config = yaml.safe_load(data)
        key = str(config.get("uuid"))
        exported.add(key)
        target, before = existing.get(key, (_new_path(kind, config), None))
        if target.startswith(generated.LAKE_DATASETS + "/") or (
            kind == "datasets" and not config.get("sql")
        ):
            skipped.append(target)  # physical datasets come from the lake's registry
            continue
        _normalise(kind, config, before)
        path = directory / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(generated.dump(config))
        written.append(target)
    only = sorted(
        rel for key, (rel, _) in existing.items()
        if key not in exported and rel.split("/")[0] in ("charts", "dashboards")
    )  # fmt: skip
    return ExportReport(written, sorted(set(skipped)), only)


def _new_path(kind: str, config: Mapping[str, Any]) -> str:
    if kind == "charts":
        return f"charts/{_slug(str(config['slice_name']))}.yaml"
    if kind == "dashboards":
        return f"dashboards/{_slug(str(config['dashboard_title']))}.yaml"
    return f"datasets/views/{_slug(str(config['table_name']))}.yaml"


def _without_datasource(value: Any) -> Any:
    """A query context with every reference to its dataset's id removed (for comparing)."""
    if isinstance(value, dict):
        return {k: _without_datasource(v) for k, v in value.items() if k != "datasource"}
    if isinstance(value, list):
        return [_without_datasource(v) for v in value]
    return value


def _normalise(kind: str, config: dict[str, Any], before: Mapping[str, Any] | None) -> None:
    """Leave out what a deploy adds again or what only names the Superset it came from."""
    config.pop("is_managed_externally", None)
    config.pop("external_url", None)
    if kind == "charts":
        params = config.get("params") or {}
        for key in _INSTANCE_PARAMS:
            params.pop(key, None)
        if params.get("annotation_layers") == []:
            params.pop("annotation_layers")
        saved = config.get("query_context")
        if saved:
            try:
                derived = query_context(params)
            except UnsupportedChart:
                derived = None
            if derived is not None and _without_datasource(json.loads(saved)) == (
                _without_datasource(derived)
            ):
                config["query_context"] = None
    if kind == "datasets" and config.get("sql"):
        declared = {c["column_name"]: c for c in (before or {}).get("columns") or []}
        config["columns"] = [
            c for c in config.get("columns") or []
            if c["column_name"] in declared or _customised(c)
        ]  # fmt: skip
        for column in config["columns"]:
            if column.get("datetime_format") is None:
                column.pop("datetime_format", None)
    if kind == "dashboards":
        _renumber_charts(config, before)
    if before is not None:
        for key in [k for k, v in config.items() if v is None and k not in before]:
            del config[key]


def _renumber_charts(config: dict[str, Any], before: Mapping[str, Any] | None) -> None:
    """Give the dashboard's charts the numbers the bundle's file gave them, not Superset's ids.

    A dashboard refers to its charts by number in its layout and in filter and
    cross-filter scopes; the import maps those numbers to the ids it assigns,
    so any numbers will do as long as they agree. Keeping the bundle's makes an
    unchanged dashboard export unchanged, whatever ids this Superset gave.
    """
    kept = {} if before is None else {
        str(item["meta"]["uuid"]): int(item["meta"]["chartId"])
        for item in (before.get("position") or {}).values()
        if isinstance(item, dict) and item.get("type") == "CHART" and "uuid" in item.get("meta", {})
    }  # fmt: skip
    fresh = max(kept.values(), default=0)
    mapping: dict[int, int] = {}
    for item in (config.get("position") or {}).values():
        if (
            isinstance(item, dict)
            and item.get("type") == "CHART"
            and "chartId" in item.get("meta", {})
        ):
            meta = item["meta"]
            if str(meta.get("uuid")) not in kept:
                fresh += 1
                kept[str(meta.get("uuid"))] = fresh
            mapping[int(meta["chartId"])] = kept[str(meta.get("uuid"))]
            meta["chartId"] = mapping[int(meta["chartId"])]

    def ids(values: Iterable[Any]) -> list[int]:
        return sorted(mapping.get(int(v), int(v)) for v in values)

    metadata = config.get("metadata") or {}
    for flt in metadata.get("native_filter_configuration") or []:
        scope = flt.get("scope") or {}
        if scope.get("excluded"):
            scope["excluded"] = ids(scope["excluded"])
        if flt.get("chartsInScope"):
            flt["chartsInScope"] = ids(flt["chartsInScope"])
        for target in flt.get("targets") or []:
            if "datasetUuid" in target:  # the bundle's key order: column, then dataset
                target["datasetUuid"] = target.pop("datasetUuid")
    if metadata.get("timed_refresh_immune_slices"):
        metadata["timed_refresh_immune_slices"] = ids(metadata["timed_refresh_immune_slices"])
    if metadata.get("expanded_slices"):
        metadata["expanded_slices"] = {
            str(mapping.get(int(k), int(k))): v for k, v in metadata["expanded_slices"].items()
        }
    global_scope = (metadata.get("global_chart_configuration") or {}).get("scope") or {}
    if global_scope.get("excluded"):
        global_scope["excluded"] = ids(global_scope["excluded"])
    if metadata.get("chart_configuration"):
        renumbered = {}
        for key, chart in metadata["chart_configuration"].items():
            new = mapping.get(int(key), int(key))
            if isinstance(chart, dict):
                chart["id"] = new
                scope = (chart.get("crossFilters") or {}).get("scope") or {}
                if isinstance(scope, dict) and scope.get("excluded"):
                    scope["excluded"] = ids(scope["excluded"])
            renumbered[str(new)] = chart
        metadata["chart_configuration"] = renumbered


def _customised(column: Mapping[str, Any]) -> bool:
    """Does a column say more than the deploy derives from Trino's answer?"""
    default = generated.column_config(str(column["column_name"]), str(column.get("type") or ""))
    return (
        any(column.get(k) != v for k, v in default.items() if k != "type")
        or column.get("datetime_format") is not None
    )
