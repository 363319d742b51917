"""The table registry: every lake table's name, namespace, columns, partitioning and sort.

Columns are never listed here: they come from the event Structs through
``streaming.schema``, so a topic and its table cannot drift apart. Every table
is partitioned by ``trading_day`` (a column the writer adds), which is the
unit the writer replaces atomically and the unit a backfill recomputes.
Types Iceberg lacks are mapped once here: fixed-size lists (book levels)
become plain lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from intelligence import schemas as intel
from streaming.events import (
    AmendOrder,
    Bar,
    BookTop,
    CancelOrder,
    DeadLetter,
    Event,
    ExecutionReport,
    NewOrder,
    SessionControl,
    StrategyDecision,
    Trade,
)
from streaming.schema import arrow_schema, to_table, union_schema, union_to_table
from streaming.topics import TOPIC_SPECS

Namespace = Literal["raw", "core", "intel", "marts"]
PARTITION_COLUMN = "trading_day"
ORDER_KINDS: tuple[type[Event], ...] = (NewOrder, CancelOrder, AmendOrder)


def _lake_type(dtype: pa.DataType) -> pa.DataType:
    if pa.types.is_fixed_size_list(dtype) or pa.types.is_list(dtype):
        return pa.list_(_lake_type(dtype.value_type))
    return dtype


def lake_schema(schema: pa.Schema) -> pa.Schema:
    """An event schema as the lake stores it (Iceberg has no fixed-size lists)."""
    return pa.schema([f.with_type(_lake_type(f.type)) for f in schema])


@dataclass(frozen=True)
class TableDef:
    """One lake table. ``schema`` excludes the partition column the writer adds."""

    namespace: Namespace
    name: str
    schema: pa.Schema
    sort_by: tuple[str, ...] = ()
    kinds: tuple[type[Event], ...] = ()
    description: str = ""

    @property
    def identifier(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def stored_schema(self) -> pa.Schema:
        """The columns as stored: the event columns, then ``trading_day``."""
        return self.schema.append(pa.field(PARTITION_COLUMN, pa.date32(), nullable=False))

    def to_arrow(self, events: list[Any]) -> pa.Table:
        """Events of this table's kinds -> an Arrow table with its schema."""
        if len(self.kinds) == 1:
            table = to_table(events, self.kinds[0]) if events else None
        else:
            table = union_to_table(events, self.kinds) if events else None
        if table is None:
            return self.schema.empty_table()
        return table.cast(self.schema)

    def with_column(self, field: pa.Field) -> TableDef:
        """A later version of this table with one more (nullable) column."""
        return TableDef(
            self.namespace, self.name, self.schema.append(field.with_nullable(True)),
            self.sort_by, self.kinds, self.description,
        )  # fmt: skip


def _event_table(
    name: str, kinds: tuple[type[Event], ...], sort_by: tuple[str, ...], description: str
) -> TableDef:
    schema = arrow_schema(kinds[0]) if len(kinds) == 1 else union_schema(kinds)
    return TableDef("raw", name, lake_schema(schema), sort_by, kinds, description)


TABLES: dict[str, TableDef] = {
    t.identifier: t
    for t in (
        _event_table("orders", ORDER_KINDS, ("symbol", "ts"),
                     "order requests as sent: new, cancel and amend (type column)"),
        _event_table("executions", (ExecutionReport,), ("symbol", "ts"),
                     "execution reports: acks, fills, cancels, rejects with reasons"),
        _event_table("trades", (Trade,), ("symbol", "ts"),
                     "every match, with both members"),
        _event_table("bbo", (BookTop,), ("symbol", "ts"),
                     "best bid and offer with five levels, on every change of the touch"),
        _event_table("bars", (Bar,), ("symbol", "interval", "start"),
                     "OHLCV bars in event time: 1s, 1m, 3m, 5m, 15m"),
        _event_table("dlq", (DeadLetter,), ("source_topic", "ts"),
                     "dead letters: what was refused, why, and the original bytes"),
        _event_table("decisions", (StrategyDecision,), ("member", "ts"),
                     "what members following recommendations did with each: act or skip, why"),
        _event_table("control", (SessionControl,), ("ts",),
                     "the audit of the market's control: every session change, halt, kill "
                     "switch and reference price, who did it and why"),
    )
}  # fmt: skip
"""Every table of the lake by ``namespace.name``; the only place tables are declared."""


def _declared(
    namespace: Namespace,
    name: str,
    columns: list[tuple[str, pa.DataType, bool]],
    sort_by: tuple[str, ...],
    description: str,
) -> TableDef:
    """A table computed by the platform, not landed from a topic: its columns, once."""
    schema = pa.schema([pa.field(n, t, nullable=nullable) for n, t, nullable in columns])
    return TableDef(namespace, name, schema, sort_by, (), description)


_I, _F, _S = pa.int64(), pa.float64(), pa.string()
TABLES.update({
    t.identifier: t
    for t in (
        _declared("core", "market_daily", [
            ("symbol", _S, False), ("trades", _I, True), ("open", _I, True), ("high", _I, True),
            ("low", _I, True), ("close", _I, True), ("volume", _I, True), ("turnover", _I, True),
            ("vwap", _F, True), ("quote_updates", _I, True), ("spread_twa", _F, True),
            ("spread_min", _I, True), ("spread_max", _I, True), ("two_sided_share", _F, True),
        ], ("symbol",), "per symbol and day: OHLCV, VWAP (1/10,000 units), time-weighted spread"),
        _declared("core", "clearing_positions", [
            ("member", _S, False), ("symbol", _S, False), ("opening_qty", _I, False),
            ("closing_qty", _I, False), ("bought", _I, False), ("sold", _I, False),
            ("avg_cost", _F, True), ("settlement_price", _I, True), ("realized_pnl", _I, False),
            ("unrealized_pnl", _I, False), ("fees", _I, False), ("closing_cost", _I, False),
        ], ("member", "symbol"),
            "per member and symbol and day: positions, average cost, P&L at the close, fees"),
        _declared("core", "clearing_members", [
            ("member", _S, False), ("opening_cash", _I, False), ("closing_cash", _I, False),
            ("bought_notional", _I, False), ("sold_notional", _I, False), ("fees", _I, False),
            ("realized_pnl", _I, False), ("unrealized_pnl", _I, False),
            ("holdings_value", _I, False), ("net_worth", _I, False),
            ("securities_traded", _I, False), ("obligation_met", pa.bool_(), False),
        ], ("member",), "per member and day: cash, P&L, net worth, obligation met or failed"),
        _declared("core", "recon_breaks", [
            ("member", _S, False), ("symbol", _S, False), ("side", _S, False),
            ("reason", _S, False), ("trades", _I, False), ("fills", _I, False),
            ("traded_qty", _I, False), ("filled_qty", _I, False), ("traded_notional", _I, False),
            ("filled_notional", _I, False), ("cleared_qty", _I, True),
        ], ("member", "symbol"),
            "per day: where trades, fills and clearing disagree, with a reason code"),
        _declared("marts", "settlement_report", [
            ("member", _S, False), ("opening_cash", _I, False), ("closing_cash", _I, False),
            ("realized_pnl", _I, False), ("unrealized_pnl", _I, False), ("fees", _I, False),
            ("net_worth", _I, False), ("securities_traded", _I, False),
            ("obligation_met", pa.bool_(), False), ("open_positions", _I, False),
            ("breaks", _I, False),
        ], ("member",), "the EOD settlement report: one row per member and day"),
        _declared("raw", "run_failures", [
            ("run_id", _S, False), ("job", _S, False), ("partition", _S, True),
            ("failed_at", _I, False), ("steps", _S, True), ("message", _S, False),
        ], ("failed_at",),
            "failed Dagster runs of the day (the day the run computed, else the day it failed): "
            "job, failed steps, the error; from Dagster's run storage"),
    )
})  # fmt: skip


def _intelligence_tables() -> list[TableDef]:
    """The intelligence pipeline's tables; columns from ``intelligence.schemas``."""

    def t(ns: Namespace, name: str, schema: pa.Schema, sort: tuple[str, ...], doc: str) -> TableDef:
        return TableDef(ns, name, schema, sort, (), doc)

    return [
        t("intel", "companies", intel.COMPANIES_SCHEMA, ("ticker",),
          "tracked companies (the exchange's securities): names, aliases, sector, CIK"),
        t("intel", "exposures", intel.EXPOSURES_SCHEMA, ("ticker", "kind", "name"),
          "per company: revenue share by region and signed sensitivity to commodity prices"),
        t("intel", "competitors", intel.COMPETITORS_SCHEMA, ("ticker", "competitor"),
          "competitor links: relationship type and strength"),
        t("intel", "sources", intel.SOURCES_SCHEMA, ("source_id",),
          "where news comes from: type, URL, polling interval, credibility"),
        t("raw", "fetches", intel.FETCHES_SCHEMA, ("source_id", "fetched_at"),
          "every fetch of a source: status, hash, bytes, duration, error, and the new payload"),
        t("raw", "source_states", intel.SOURCE_STATES_SCHEMA, ("source_id",),
          "per source at the end of the day: validators, seen hashes, failures, cool-down"),
        t("intel", "documents", intel.DOCUMENTS_SCHEMA, ("published_at", "doc_id"),
          "parsed documents: normalised text, metadata, mentioned tickers, quality"),
        t("intel", "quarantine", intel.QUARANTINE_SCHEMA, ("source_id", "fetched_at"),
          "payloads (or items) that could not be parsed, with the reason and the bytes"),
        t("intel", "extractions", intel.EXTRACTIONS_SCHEMA, ("doc_id",),
          "per document: sentiment, impact, catalyst, confidence, tickers, macro events"),
        t("intel", "trends", intel.TRENDS_SCHEMA, ("ticker", "window", "as_of"),
          "per company, window and time: the signal, its company/macro/competitive layers, "
          "confidence and contradiction"),
        t("intel", "trend_evidence", intel.EVIDENCE_SCHEMA, ("ticker", "window", "as_of", "rank"),
          "the ranked documents behind each trend, with their contributions"),
        t("intel", "recommendations", intel.RECOMMENDATIONS_SCHEMA, ("symbol",),
          "per company: action, confidence, mode, thesis and the evidence links"),
    ]  # fmt: skip


TABLES.update({t.identifier: t for t in _intelligence_tables()})

TOPIC_TABLES: dict[str, str] = {t.name: t.raw_table for t in TOPIC_SPECS if t.raw_table}
"""Which raw table each topic lands in."""


def table(identifier: str) -> TableDef:
    """The registered table, or a KeyError that lists the known ones."""
    try:
        return TABLES[identifier]
    except KeyError:
        raise KeyError(
            f"no lake table {identifier!r}; known: {', '.join(sorted(TABLES))}"
        ) from None


def namespaces(tables: Iterable[TableDef] = TABLES.values()) -> list[str]:
    return sorted({t.namespace for t in tables})


DBT_MARTS = Path(__file__).resolve().parents[1] / "dbt" / "models" / "marts" / "_marts.yml"
_DBT_TYPES: dict[str, pa.DataType] = {
    "varchar": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "decimal(18,4)": pa.decimal128(18, 4),
}


def dbt_marts(path: Path = DBT_MARTS) -> list[TableDef]:
    """The dbt marts as lake tables ``marts.<model>``, from the models' enforced contracts.

    dbt's YAML is where a mart's columns are declared (dbt refuses a model
    that does not match); reading them here keeps the lake table and the model
    from drifting apart. A column with a ``not_null`` test is stored required.
    """
    import yaml

    models = yaml.safe_load(path.read_text())["models"]
    out = []
    for model in models:
        fields = []
        for column in model["columns"]:
            if column["name"] == PARTITION_COLUMN:
                continue
            dtype = _DBT_TYPES.get(column["data_type"].replace(" ", "").lower())
            if dtype is None:
                raise ValueError(
                    f"{path.name}: {model['name']}.{column['name']} has data_type "
                    f"{column['data_type']!r}; the lake maps {', '.join(_DBT_TYPES)}"
                )
            required = "not_null" in (column.get("data_tests") or [])
            fields.append(pa.field(column["name"], dtype, nullable=not required))
        sort_by = tuple(model.get("config", {}).get("meta", {}).get("lake_sort", ()))
        description = " ".join(model.get("description", "").split())
        out.append(TableDef("marts", model["name"], pa.schema(fields), sort_by, (), description))
    return out


TABLES.update({t.identifier: t for t in dbt_marts()})
