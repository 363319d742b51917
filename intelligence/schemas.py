"""Every intelligence table's columns, declared once: the lake's side of each contract.

The lake is the journal of the intelligence pipeline: each stage reads the
previous stage's partition back from it, never an in-memory hand-off, so a
stage can be re-run, backfilled or inspected in Trino on its own. Times stay
integer nanoseconds since the epoch, as everywhere else in the lake; lists
(tickers, evidence terms) are Arrow lists, and macro events a JSON column so
SQL can reach into them without a nested type every engine reads differently.

This module imports no stage, so every stage (the registry at the bottom as
much as aggregation) and ``lake.tables`` import their columns from here
without a cycle or a breach of the stage order. The conversions between the
contracts and these rows live with the code that owns each contract
(:mod:`intelligence.rows`, ``registry_tables``, ``trends_table``,
``recommendations_table``).
"""

from __future__ import annotations

import pyarrow as pa

from streaming.events import Recommendation
from streaming.schema import arrow_schema

_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()
_LS = pa.list_(pa.string())


def columns(*fields: tuple[str, pa.DataType, bool]) -> pa.Schema:
    """A schema from (name, type, nullable) triples: how every intelligence table is declared."""
    return pa.schema([pa.field(n, t, nullable=nullable) for n, t, nullable in fields])


# --- the registry (intelligence.registry.registry_tables) ------------------------------------

COMPANIES_SCHEMA = columns(
    ("ticker", _S, False), ("legal_name", _S, False), ("aliases", _LS, False),
    ("sector", _S, False), ("industry", _S, False), ("cik", _S, True),
)  # fmt: skip
"""intel.companies: one row per tracked company, in the registry file's order."""

EXPOSURES_SCHEMA = columns(
    ("ticker", _S, False), ("kind", _S, False), ("name", _S, False), ("weight", _F, False),
)  # fmt: skip
"""intel.exposures: one row per company and region or commodity (``kind``)."""

COMPETITORS_SCHEMA = columns(
    ("ticker", _S, False), ("competitor", _S, False), ("relationship", _S, False),
    ("strength", _F, False),
)  # fmt: skip
"""intel.competitors: one row per link a company lists."""

SOURCES_SCHEMA = columns(
    ("source_id", _S, False), ("source_type", _S, False), ("ticker", _S, True),
    ("url", _S, False), ("polling_interval_s", _I, False), ("credibility", _F, False),
    ("format", _S, False),
)  # fmt: skip
"""intel.sources: one row per resolved source (``ticker`` null for a global one)."""

# --- ingestion and parsing (intelligence.rows) -----------------------------------------------

FETCHES_SCHEMA = columns(
    ("fetch_id", _S, False), ("source_id", _S, False), ("source_type", _S, False),
    ("url", _S, False), ("fetched_at", _I, False), ("status", _I, True),
    ("content_type", _S, True), ("sha256", _S, True), ("bytes", _I, False),
    ("duration_ms", _F, False), ("attempts", _I, False), ("etag", _S, True),
    ("last_modified", _S, True), ("not_modified", _B, False), ("duplicate", _B, False),
    ("error", _S, True), ("body", pa.binary(), True),
)  # fmt: skip
"""raw.fetches: every fetch attempt with its payload (``body`` null when nothing new came)."""

SOURCE_STATES_SCHEMA = columns(("source_id", _S, False), ("state", _S, False))
"""raw.source_states: one row per source, ``state`` a SourceState as JSON."""

DOCUMENTS_SCHEMA = columns(
    ("doc_id", _S, False), ("source_id", _S, False), ("source_type", _S, False),
    ("url", _S, False), ("canonical_url", _S, True), ("title", _S, False), ("text", _S, False),
    ("author", _S, True), ("publisher", _S, True), ("published_at", _I, True),
    ("fetched_at", _I, False), ("tickers", _LS, False), ("quality", _S, False),
    ("quality_score", _F, False), ("content_sha256", _S, False),
)  # fmt: skip
"""intel.documents: one row per parsed document."""

QUARANTINE_SCHEMA = columns(
    ("source_id", _S, False), ("url", _S, False), ("fetched_at", _I, False),
    ("reason", _S, False), ("detail", _S, False), ("body", pa.binary(), False),
)  # fmt: skip
"""intel.quarantine: what could not be parsed, with the reason and the bytes."""

# --- extraction (intelligence.rows) ----------------------------------------------------------

EXTRACTIONS_SCHEMA = columns(
    ("doc_id", _S, False), ("source_id", _S, False), ("published_at", _I, True),
    ("extractor", _S, False), ("fallback_reason", _S, True), ("sentiment", _F, False),
    ("label", _S, False), ("impact", _S, False), ("catalyst", _S, False),
    ("confidence", _F, False), ("tickers", _LS, False), ("evidence", _LS, False),
    ("macro_events", _S, False),
)  # fmt: skip
"""intel.extractions; ``macro_events`` is a JSON array of MacroEvent objects."""

# --- aggregation (intelligence.aggregate.aggregation) ----------------------------------------

TRENDS_SCHEMA = columns(
    ("ticker", _S, False), ("window", _S, False), ("as_of", _I, False),
    ("signal", _F, False), ("company", _F, False), ("macro", _F, False),
    ("competitive", _F, False), ("confidence", _F, False), ("contradiction", _B, False),
    ("contradiction_score", _F, False), ("documents", _I, False), ("sources", _I, False),
    ("driver", _S, False),
)  # fmt: skip
"""intel.trends: one row per company, window and ``as_of`` (ns since the epoch)."""

EVIDENCE_SCHEMA = columns(
    ("ticker", _S, False), ("window", _S, False), ("as_of", _I, False), ("rank", _I, False),
    ("doc_id", _S, False), ("url", _S, False), ("title", _S, False), ("layer", _S, False),
    ("contribution", _F, False), ("published_at", _I, False), ("source_id", _S, False),
    ("via", _S, True),
)  # fmt: skip
"""intel.trend_evidence: the evidence of each trend, one row per item, ``rank`` 1 = strongest."""

# --- recommendations (intelligence.recommend.recommendations) --------------------------------

RECOMMENDATIONS_SCHEMA: pa.Schema = arrow_schema(Recommendation)
"""intel.recommendations: derived from the live core's event (one definition of the contract).

Like every lake table, ``ts`` is integer nanoseconds since the epoch (UTC)
and ``session_date`` the ISO trading day; ``evidence`` is a list of links.
"""
