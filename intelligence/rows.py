"""The intelligence contracts as lake rows, both ways: what the Dagster assets write and read.

Each stage's output goes to the lake and the next stage reads it back from
there (see :mod:`intelligence.schemas`, which declares the columns). These
conversions need the contract types of several stages (fetches, documents,
extractions, trends, recommendations), so they sit outside the stage order,
beside the schemas rather than in them: a stage low in the order (the
registry) can then import its columns without importing the stages above it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import pyarrow as pa

from intelligence.aggregate.signals import Evidence, Trend
from intelligence.documents import Document, Fetched, Quarantined
from intelligence.extract.extraction import Extraction, MacroEvent
from intelligence.schemas import (
    DOCUMENTS_SCHEMA,
    EXTRACTIONS_SCHEMA,
    FETCHES_SCHEMA,
    QUARANTINE_SCHEMA,
)
from streaming.events import Recommendation


def fetch_id(f: Fetched) -> str:
    """A stable id for one fetch attempt: source, URL and time."""
    key = f"{f.source_id}\0{f.url}\0{f.fetched_at}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def fetches_table(fetched: Iterable[Fetched]) -> pa.Table:
    """Fetch records -> raw.fetches rows (payload kept only when it is new)."""
    rows = []
    for f in fetched:
        row = msgspec.structs.asdict(f)
        row["fetch_id"] = fetch_id(f)
        new = f.status is not None and not f.not_modified and not f.duplicate
        row["body"] = f.body if new and f.body else None
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=FETCHES_SCHEMA)


def fetches_from_table(table: pa.Table) -> list[Fetched]:
    """raw.fetches rows -> Fetched records (bodies that were not stored come back empty)."""
    names = set(Fetched.__struct_fields__)
    out = []
    for row in table.to_pylist():
        kwargs = {k: v for k, v in row.items() if k in names}
        kwargs["body"] = kwargs.get("body") or b""
        out.append(Fetched(**kwargs))
    return out


def documents_table(docs: Iterable[Document]) -> pa.Table:
    return pa.Table.from_pylist([msgspec.structs.asdict(d) for d in docs], schema=DOCUMENTS_SCHEMA)


def documents_from_table(table: pa.Table) -> list[Document]:
    """intel.documents rows -> Documents; columns left out of the read keep their defaults."""
    names = [n for n in DOCUMENTS_SCHEMA.names if n in table.column_names]
    return [Document(**row) for row in table.select(names).to_pylist()]


def quarantine_table(items: Iterable[Quarantined]) -> pa.Table:
    return pa.Table.from_pylist(
        [msgspec.structs.asdict(q) for q in items], schema=QUARANTINE_SCHEMA
    )


_macro_encoder = msgspec.json.Encoder()
_macro_decoder = msgspec.json.Decoder(list[MacroEvent])


def extractions_table(rows: Iterable[tuple[Document, Extraction]]) -> pa.Table:
    """(document, its extraction) pairs -> intel.extractions rows."""
    out: list[dict[str, Any]] = []
    for doc, ex in rows:
        out.append(
            {
                "doc_id": doc.doc_id,
                "source_id": doc.source_id,
                "published_at": doc.published_at,
                "extractor": ex.extractor,
                "fallback_reason": ex.fallback_reason,
                "sentiment": ex.sentiment,
                "label": ex.label,
                "impact": ex.impact,
                "catalyst": ex.catalyst,
                "confidence": ex.confidence,
                "tickers": list(ex.tickers),
                "evidence": list(ex.evidence),
                "macro_events": _macro_encoder.encode(ex.macro_events).decode(),
            }
        )
    return pa.Table.from_pylist(out, schema=EXTRACTIONS_SCHEMA)


def extractions_from_table(table: pa.Table) -> dict[str, Extraction]:
    """intel.extractions rows -> Extraction by doc_id."""
    out: dict[str, Extraction] = {}
    for row in table.select(EXTRACTIONS_SCHEMA.names).to_pylist():
        out[row["doc_id"]] = Extraction(
            sentiment=row["sentiment"],
            label=row["label"],
            impact=row["impact"],
            catalyst=row["catalyst"],
            confidence=row["confidence"],
            tickers=row["tickers"],
            evidence=row["evidence"],
            macro_events=_macro_decoder.decode(row["macro_events"]),
            extractor=row["extractor"],
            fallback_reason=row["fallback_reason"],
        )
    return out


def first_by_id(docs: Sequence[Document]) -> list[Document]:
    """One document per ``doc_id``: the earliest fetched (ties: first seen), in fetch order.

    The same story reaches us from several fetches of a day (a feed polled
    every 15 minutes lists it each time); it is one document.
    """
    best: dict[str, Document] = {}
    for d in docs:
        kept = best.get(d.doc_id)
        if kept is None or d.fetched_at < kept.fetched_at:
            best[d.doc_id] = d
    return sorted(best.values(), key=lambda d: (d.fetched_at, d.doc_id))


def trends_from_tables(trends: pa.Table, evidence: pa.Table) -> list[Trend]:
    """intel.trends + intel.trend_evidence rows -> Trends with their ranked evidence."""
    items: dict[tuple[str, str, int], list[tuple[int, Evidence]]] = {}
    ev_fields = set(Evidence.__struct_fields__)
    for row in evidence.to_pylist():
        key = (row["ticker"], row["window"], row["as_of"])
        ev = Evidence(**{k: v for k, v in row.items() if k in ev_fields})
        items.setdefault(key, []).append((row["rank"], ev))
    tr_fields = set(Trend.__struct_fields__)
    out = []
    for row in trends.to_pylist():
        key = (row["ticker"], row["window"], row["as_of"])
        ranked = [ev for _, ev in sorted(items.get(key, []), key=lambda p: p[0])]
        out.append(Trend(**{k: v for k, v in row.items() if k in tr_fields}, evidence=ranked))
    return sorted(out, key=lambda t: (t.ticker, t.window, t.as_of))


def recommendations_from_table(table: pa.Table) -> list[Recommendation]:
    """intel.recommendations rows -> the live core's Recommendation events."""
    fields = set(Recommendation.__struct_fields__)
    return [
        Recommendation(**{k: v for k, v in row.items() if k in fields}) for row in table.to_pylist()
    ]
