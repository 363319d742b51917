"""The intelligence pipeline as daily assets: registry -> fetches -> documents -> extractions
-> trends -> recommendations.

Each asset reads its inputs back from the lake and replaces its day's
partition, like the market assets, so any stage can be re-run or backfilled
alone. Ingestion is the one stage with side effects on the outside world;
``intelligence.ingest.polling`` decides what a day may fetch (a live day
polls what is due, a past day only date-ranged APIs) and the day's fetches
accumulate in its partition, so re-materialising a past day changes nothing.
"""

import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from pydantic import Field

from assets.platform.partitions import ONE_DAY_PER_RUN, TRADING_DAYS
from assets.platform.resources import PlatformResource
from intelligence.aggregate.signals import Trend
from intelligence.documents import Document, Quarantined
from intelligence.ingest.ingestion import IngestionConfig, SourceState, missing_config
from intelligence.ingest.polling import poll, sources_for_day
from intelligence.parse.parsing import parse
from intelligence.registry import Registry, RegistryConfig, company_names, registry_tables
from intelligence.rows import (
    documents_from_table,
    documents_table,
    extractions_from_table,
    extractions_table,
    fetches_from_table,
    fetches_table,
    first_by_id,
    quarantine_table,
    recommendations_from_table,
    trends_from_tables,
)
from lake.reader import latest_day_through, read_days
from lake.tables import TABLES
from lake.writer import publish
from streaming.events import Recommendation, decode_as, encode

GROUP = "intelligence"
REGISTRY_TABLES = ("companies", "exposures", "competitors", "sources")
SEEN_LOOKBACK = timedelta(days=7)  # a story still listed by a feed is not new again


def intel_key(name: str) -> AssetKey:
    return AssetKey(["intel", name])


def _day(context: AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def _md_table(rows: Sequence[Mapping[str, object]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _registry(platform: PlatformResource) -> Registry:
    """The registry of the platform's settings (file and base-URL overrides)."""
    return RegistryConfig.from_settings(platform.settings()).load()


# --- registry -------------------------------------------------------------------------------


@multi_asset(
    specs=[
        AssetSpec(intel_key(name), group_name=GROUP, kinds={"iceberg"},
                  description=TABLES[f"intel.{name}"].description)
        for name in REGISTRY_TABLES
    ],
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
)  # fmt: skip
def intel_registry(
    context: AssetExecutionContext, platform: PlatformResource
) -> Iterator[MaterializeResult[None]]:
    """The source registry (YAML in the repo) as the day's snapshot in the lake."""
    registry = _registry(platform)
    catalog = platform.catalog()
    for name, tbl in registry_tables(registry).items():
        pub = publish(catalog, TABLES[f"intel.{name}"], _day(context), tbl)
        yield MaterializeResult(asset_key=intel_key(name), metadata={"rows": pub.rows})


# --- ingestion ------------------------------------------------------------------------------


class FetchConfig(Config):
    """Which source types this run polls (empty: all); the polling sensors set one each."""

    source_types: list[str] = Field(default_factory=list)


def _states_before(platform: PlatformResource, day: date) -> dict[str, SourceState]:
    catalog = platform.catalog()
    latest = latest_day_through(catalog, "raw.source_states", day)
    if latest is None:
        return {}
    rows = read_days(catalog, "raw.source_states", latest).to_pylist()
    return {r["source_id"]: msgspec.json.decode(r["state"], type=SourceState) for r in rows}


@multi_asset(
    specs=[
        AssetSpec(AssetKey(["raw", "fetches"]), deps=[intel_key("sources")], group_name=GROUP,
                  kinds={"iceberg", "python"}, description=TABLES["raw.fetches"].description),
        AssetSpec(AssetKey(["raw", "source_states"]), deps=[intel_key("sources")],
                  group_name=GROUP, kinds={"iceberg"},
                  description=TABLES["raw.source_states"].description),
    ],
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
)  # fmt: skip
def intel_fetches(
    context: AssetExecutionContext, config: FetchConfig, platform: PlatformResource
) -> Iterator[MaterializeResult[None]]:
    """Poll the sources due now (a live day) or the date-ranged APIs (a past day).

    The day's earlier fetches stay: the partition is replaced by old plus new
    rows, so intraday polls accumulate and a past day that has nothing left to
    fetch is rewritten unchanged.
    """
    day = _day(context)
    settings = platform.settings()
    calendar = platform.calendar()
    catalog = platform.catalog()
    registry = RegistryConfig.from_settings(settings).load()
    clock = platform.clock()
    now = clock()
    today = datetime.fromtimestamp(now / 1e9, calendar.tz).date()
    live = day == today
    _, close_ns = calendar.session_bounds(day)
    if not live:  # a past day's fetch stands in for what that day would have seen
        start, base = close_ns, time.monotonic_ns()

        def clock() -> int:
            return start + (time.monotonic_ns() - base)

        now = clock()
    existing = read_days(catalog, "raw.fetches", day)
    ok = {
        r["source_id"]
        for r in existing.select(["source_id", "error"]).to_pylist()
        if r["error"] is None
    }
    states = _states_before(platform, day)
    ingest = IngestionConfig.from_settings(settings)
    problems = {s.source_id: missing_config(s, ingest) for s in registry.sources}
    unconfigured = Counter(p for p in problems.values() if p is not None)
    candidates = [s for s in registry.sources if problems[s.source_id] is None]
    sources = sources_for_day(candidates, states, now, live, ok, config.source_types)
    started = time.perf_counter()
    result = poll(sources, states, ingest, clock, day)
    seconds = time.perf_counter() - started
    new = fetches_table(result.fetched)
    rows = pa.concat_tables([existing.select(new.schema.names).cast(new.schema), new])
    pub = publish(catalog, TABLES["raw.fetches"], day, rows)
    state_rows = pa.Table.from_pylist(
        [{"source_id": k, "state": msgspec.json.encode(v).decode()}
         for k, v in sorted(result.states.items())],
        schema=TABLES["raw.source_states"].schema,
    )  # fmt: skip
    publish(catalog, TABLES["raw.source_states"], day, state_rows)
    errors = Counter((f.error or "").split(":")[0] for f in result.fetched if f.error is not None)
    yield MaterializeResult(
        asset_key=AssetKey(["raw", "fetches"]),
        metadata={
            "live": live,
            "sources_polled": len(sources),
            "fetches": len(result.fetched),
            "new_payloads": sum(1 for b in new.column("body").to_pylist() if b),
            "not_modified": sum(1 for f in result.fetched if f.not_modified),
            "duplicates": sum(1 for f in result.fetched if f.duplicate),
            "failed": sum(errors.values()),
            "errors": MetadataValue.json(dict(errors.most_common())),
            "not_configured": MetadataValue.json(dict(unconfigured)),
            "rows": pub.rows,
            "seconds": round(seconds, 3),
        },
    )
    parked = sum(1 for s in result.states.values() if s.skip_until and s.skip_until > now)
    yield MaterializeResult(
        asset_key=AssetKey(["raw", "source_states"]),
        metadata={"sources": len(result.states), "parked": parked},
    )


# --- parsing --------------------------------------------------------------------------------


@multi_asset(
    specs=[
        AssetSpec(intel_key("documents"), deps=[AssetKey(["raw", "fetches"])], group_name=GROUP,
                  kinds={"iceberg", "python"}, description=TABLES["intel.documents"].description),
        AssetSpec(intel_key("quarantine"), deps=[AssetKey(["raw", "fetches"])], group_name=GROUP,
                  kinds={"iceberg"}, description=TABLES["intel.quarantine"].description),
    ],
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
)  # fmt: skip
def intel_documents(
    context: AssetExecutionContext, platform: PlatformResource
) -> Iterator[MaterializeResult[None]]:
    """The day's payloads parsed into documents; what cannot be parsed is quarantined."""
    day = _day(context)
    catalog = platform.catalog()
    registry = _registry(platform)
    names = company_names(registry)
    fetched = fetches_from_table(read_days(catalog, "raw.fetches", day))
    docs: list[Document] = []
    bad: list[Quarantined] = []
    started = time.perf_counter()
    for f in sorted(fetched, key=lambda f: (f.fetched_at, f.source_id, f.url)):
        for item in parse(f, names):
            if isinstance(item, Document):
                docs.append(item)
            else:
                bad.append(item)
    seconds = time.perf_counter() - started
    seen = set(
        read_days(catalog, "intel.documents", day - SEEN_LOOKBACK, day - timedelta(days=1),
                  columns=["doc_id"]).column("doc_id").to_pylist()
    )  # fmt: skip
    unique = first_by_id(docs)
    new_docs = [d for d in unique if d.doc_id not in seen]
    pub = publish(catalog, TABLES["intel.documents"], day, documents_table(new_docs))
    publish(catalog, TABLES["intel.quarantine"], day, quarantine_table(bad))
    quality: Counter[str] = Counter(d.quality for d in new_docs)
    mentions = Counter(t for d in new_docs for t in d.tickers)
    preview = [
        {"quality": d.quality, "tickers": ",".join(d.tickers), "title": d.title[:80]}
        for d in new_docs[:10]
    ]
    yield MaterializeResult(
        asset_key=intel_key("documents"),
        metadata={
            "rows": pub.rows,
            "parsed": len(docs),
            "repeats_within_day": len(docs) - len(unique),
            "seen_on_earlier_days": len(unique) - len(new_docs),
            "quality": MetadataValue.json(dict(quality)),
            "mentions": MetadataValue.json(dict(mentions.most_common())),
            "docs_per_s": round(len(docs) / seconds, 1) if seconds > 0 else 0.0,
            "preview": MetadataValue.md(_md_table(preview, ["quality", "tickers", "title"])),
        },
    )
    reasons = Counter(q.reason for q in bad)
    yield MaterializeResult(
        asset_key=intel_key("quarantine"),
        metadata={"rows": len(bad), "reasons": MetadataValue.json(dict(reasons))},
    )


# --- extraction -----------------------------------------------------------------------------


@asset(
    key=intel_key("extractions"),
    deps=[intel_key("documents")],
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
    group_name=GROUP,
    kinds={"iceberg", "python"},
    description=TABLES["intel.extractions"].description,
)
def intel_extractions(
    context: AssetExecutionContext, platform: PlatformResource
) -> MaterializeResult[None]:
    """Sentiment, impact, catalyst and macro events per document (low quality is not read)."""
    from intelligence.extract.ollama_extractor import OllamaConfig, extractor_for

    day = _day(context)
    catalog = platform.catalog()
    docs = documents_from_table(read_days(catalog, "intel.documents", day))
    readable = [d for d in docs if d.quality != "low"]
    settings = platform.settings()
    extractor = extractor_for(
        OllamaConfig.from_settings(settings), RegistryConfig.from_settings(settings)
    )
    started = time.perf_counter()
    pairs = [(d, extractor.extract(_text_of(d), d.tickers)) for d in readable]
    seconds = time.perf_counter() - started
    pub = publish(catalog, TABLES["intel.extractions"], day, extractions_table(pairs))
    labels: Counter[str] = Counter(ex.label for _, ex in pairs)
    fallbacks = Counter(
        (ex.fallback_reason or "").split(":")[0] for _, ex in pairs if ex.fallback_reason
    )
    macro: Counter[str] = Counter(m.kind for _, ex in pairs for m in ex.macro_events)
    strongest = sorted(pairs, key=lambda p: (-abs(p[1].sentiment), p[0].doc_id))[:10]
    preview = [
        {"sentiment": f"{ex.sentiment:+.2f}", "catalyst": ex.catalyst,
         "tickers": ",".join(ex.tickers), "title": d.title[:70]}
        for d, ex in strongest
    ]  # fmt: skip
    return MaterializeResult(
        metadata={
            "rows": pub.rows,
            "low_quality_skipped": len(docs) - len(readable),
            "extractor": getattr(extractor, "name", type(extractor).__name__),
            "labels": MetadataValue.json(dict(labels)),
            "fallbacks": MetadataValue.json(dict(fallbacks)),
            "macro_events": MetadataValue.json(dict(macro)),
            "docs_per_s": round(len(pairs) / seconds, 1) if seconds > 0 else 0.0,
            "strongest": MetadataValue.md(
                _md_table(preview, ["sentiment", "catalyst", "tickers", "title"])
            ),
        }
    )


def _text_of(doc: Document) -> str:
    """What the extractor reads: the headline, then the text (a headline carries the news)."""
    if doc.title and doc.text.startswith(doc.title):
        return doc.text
    return f"{doc.title}. {doc.text}" if doc.title else doc.text


# --- aggregation ----------------------------------------------------------------------------

TRENDS = intel_key("trends")
EVIDENCE = intel_key("trend_evidence")
LOOKBACK = timedelta(days=91)  # the longest window (90 d) plus the day itself


def _as_of(platform: PlatformResource, day: date) -> int:
    """A day's trends are as of its close, or as of now while the day is still going."""
    _, close_ns = platform.calendar().session_bounds(day)
    return min(platform.clock()(), close_ns)


@multi_asset(
    specs=[
        AssetSpec(TRENDS, deps=[intel_key("extractions"), intel_key("documents"),
                                intel_key("companies"), intel_key("exposures"),
                                intel_key("competitors"), intel_key("sources")],
                  group_name=GROUP, kinds={"iceberg", "python"},
                  description=TABLES["intel.trends"].description),
        AssetSpec(EVIDENCE, deps=[intel_key("extractions")], group_name=GROUP,
                  kinds={"iceberg"}, description=TABLES["intel.trend_evidence"].description),
    ],
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
)  # fmt: skip
def intel_trends(
    context: AssetExecutionContext, platform: PlatformResource
) -> Iterator[MaterializeResult[None]]:
    """Per company and window (intraday .. 90d): the weighted signal of its three layers.

    Reads the documents and extractions of the last 90 days from the lake;
    only documents published by the day's close count, so a backfill computes
    what that day would have seen.
    """
    from intelligence.aggregate.aggregation import (
        AggregationConfig,
        Scored,
        aggregate,
        evidence_table,
        trends_table,
    )

    day = _day(context)
    settings = platform.settings()
    catalog = platform.catalog()
    registry = RegistryConfig.from_settings(settings).load()
    credibility = {s.source_id: s.credibility for s in registry.sources}
    no_text = [n for n in TABLES["intel.documents"].schema.names if n != "text"]  # 90 days of it
    docs = {
        d.doc_id: d
        for d in documents_from_table(
            read_days(catalog, "intel.documents", day - LOOKBACK, day, columns=no_text)
        )
    }
    extractions = extractions_from_table(
        read_days(catalog, "intel.extractions", day - LOOKBACK, day)
    )
    scored = [
        Scored.from_document(docs[doc_id], ex, credibility.get(docs[doc_id].source_id, 0.5))
        for doc_id, ex in sorted(extractions.items())
        if doc_id in docs
    ]
    as_of = _as_of(platform, day)
    config = AggregationConfig.from_settings(settings)
    trends = aggregate(scored, registry, as_of, config)
    pub = publish(catalog, TABLES["intel.trends"], day, trends_table(trends))
    ev = publish(catalog, TABLES["intel.trend_evidence"], day, evidence_table(trends))
    moving = sorted(
        (t for t in trends if t.window == "7d" and t.documents),
        key=lambda t: (-abs(t.signal), t.ticker),
    )[:12]
    preview = [
        {"ticker": t.ticker, "signal": f"{t.signal:+.3f}", "company": f"{t.company:+.2f}",
         "macro": f"{t.macro:+.2f}", "competitive": f"{t.competitive:+.2f}",
         "confidence": f"{t.confidence:.2f}", "docs": t.documents,
         "contradiction": "yes" if t.contradiction else ""}
        for t in moving
    ]  # fmt: skip
    columns = ["ticker", "signal", "company", "macro", "competitive", "confidence", "docs",
               "contradiction"]  # fmt: skip
    metadata: dict[str, int | str | MetadataValue[Any]] = {
        "rows": pub.rows,
        "documents_in_lookback": len(scored),
        "as_of": datetime.fromtimestamp(as_of / 1e9, platform.calendar().tz).isoformat(),
        "layers": MetadataValue.json(
            {"company": config.company_layer, "macro": config.macro_layer,
             "competitive": config.competitive_layer}
        ),
        "contradictions": sum(1 for t in trends if t.contradiction),
        "strongest_7d": MetadataValue.md(_md_table(preview, columns)),
    }  # fmt: skip
    if moving:
        weights = {"company": config.company_weight, "macro": config.macro_weight,
                   "competitive": config.competitive_weight}  # fmt: skip
        metadata["signal_plot"] = MetadataValue.md(_signal_plot(moving, weights))
    yield MaterializeResult(asset_key=TRENDS, metadata=metadata)
    yield MaterializeResult(asset_key=EVIDENCE, metadata={"rows": ev.rows})


def _signal_plot(trends: Sequence[Trend], weights: Mapping[str, float]) -> str:
    """The 7-day signal per company, split into its weighted layers, as an inline PNG."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tickers = [t.ticker for t in trends]
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    bottom_pos = [0.0] * len(trends)
    bottom_neg = [0.0] * len(trends)
    for layer, color in (("company", "#1f77b4"), ("macro", "#ff7f0e"),
                         ("competitive", "#2ca02c")):  # fmt: skip
        values = [getattr(t, layer) * weights[layer] for t in trends]
        base = [
            bp if v >= 0 else bn for v, bp, bn in zip(values, bottom_pos, bottom_neg, strict=True)
        ]
        ax.bar(tickers, values, bottom=base, color=color, label=layer)
        for i, v in enumerate(values):
            if v >= 0:
                bottom_pos[i] += v
            else:
                bottom_neg[i] += v
    ax.scatter(tickers, [t.signal for t in trends], color="black", zorder=3, s=12,
               label="signal")  # fmt: skip
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_ylabel("7-day signal")
    ax.legend(fontsize=7, ncols=4, loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return f"![7-day signal](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"


# --- recommendations ------------------------------------------------------------------------


def target_session(platform: PlatformResource, day: date, as_of: int) -> date:
    """The session a recommendation as of ``as_of`` reaches: the day's own while it is open,
    else the next trading day's."""
    calendar = platform.calendar()
    _, close_ns = calendar.session_bounds(day)
    return day if as_of < close_ns else calendar.next_trading_day(day)


def publish_to_session(
    platform: PlatformResource, session: date, recs: Sequence[Recommendation]
) -> dict[str, int]:
    """Append the recommendations the session's ``recommendations`` topic does not hold yet.

    A session that already ran (its log holds orders) and is not today's is
    history: it is left alone, so re-materialising a past day changes no log.
    """
    from streaming.transport.base import Output

    log = platform.session_log(session)
    try:
        log.create_topics(["orders", "recommendations"])
        now_day = datetime.fromtimestamp(platform.clock()() / 1e9, platform.calendar().tz).date()
        if sum(log.end_offsets("orders").values()) and session != now_day:
            return {"published": 0, "already_there": 0, "session_ran": 1}
        held = {
            decode_as(r.value, Recommendation).rec_id
            for part in sorted(log.end_offsets("recommendations"))
            for r in log.read("recommendations", part)
        }
        new = [r for r in recs if r.rec_id not in held]
        if new:
            log.produce([Output("recommendations", r.symbol, encode(r), r.ts) for r in new])
        return {"published": len(new), "already_there": len(recs) - len(new), "session_ran": 0}
    finally:
        log.close()


@asset(
    key=intel_key("recommendations"),
    deps=[TRENDS, EVIDENCE],
    partitions_def=TRADING_DAYS,
    backfill_policy=ONE_DAY_PER_RUN,
    group_name=GROUP,
    kinds={"iceberg", "python"},
    description="per company: action, confidence, mode and thesis with evidence; "
    "also sent to the next session's recommendations topic",
)
def intel_recommendations(
    context: AssetExecutionContext, platform: PlatformResource
) -> MaterializeResult[None]:
    """Trends -> recommendations, deduplicated against the latest earlier ones, then published
    to the lake and into the live core (the session they reach)."""
    from intelligence.recommend.recommendations import recommend, recommendations_table

    day = _day(context)
    catalog = platform.catalog()
    registry = _registry(platform)
    trends = trends_from_tables(
        read_days(catalog, "intel.trends", day), read_days(catalog, "intel.trend_evidence", day)
    )
    as_of = max((t.as_of for t in trends), default=_as_of(platform, day))
    earlier = recommendations_from_table(
        read_days(catalog, "intel.recommendations", day - LOOKBACK, day - timedelta(days=1))
    )
    sectors = {c.ticker: c.sector for c in registry.companies}
    recs = recommend(trends, as_of, earlier, trading_day=day, sectors=sectors)
    pub = publish(catalog, TABLES["intel.recommendations"], day, recommendations_table(recs))
    session = target_session(platform, day, as_of)
    sent = publish_to_session(platform, session, recs)
    preview = [
        {"symbol": r.symbol, "action": r.action, "mode": r.mode,
         "confidence": f"{r.confidence:.2f}", "driver": r.driver, "thesis": r.thesis[:90]}
        for r in recs[:15]
    ]  # fmt: skip
    return MaterializeResult(
        metadata={
            "rows": pub.rows,
            "actions": MetadataValue.json(dict(Counter(r.action for r in recs))),
            "modes": MetadataValue.json(dict(Counter(r.mode for r in recs))),
            "forced_informational": sum(1 for r in recs if r.reason),
            "unchanged_since_earlier": len({t.ticker for t in trends}) - len(recs),
            "session": session.isoformat(),
            **sent,
            "preview": MetadataValue.md(
                _md_table(preview, ["symbol", "action", "mode", "confidence", "driver", "thesis"])
            ),
        }
    )
