"""The intelligence benchmark: documents per second through parsing and lexicon extraction.

The corpus is what ingestion hands to parsing: fetched payloads. It is built
in memory before the clock starts, from two parts:

- the real feeds in the shared data directory when it is there (CNBC and
  Seeking Alpha RSS, the Bloomberg news sitemap, SEC EDGAR's latest-filings
  Atom feed), each fetched payload repeated under its own URL so the corpus
  reaches the requested size;
- seeded news feeds and article pages of our own (headlines about the
  tracked companies from templates), so the benchmark also runs on a clone
  without the shared data.

Timed: ``parse`` of every payload into documents, then ``extract`` of every
document's headline and text, on one core (the process is pinned to one CPU
where the OS allows it). Figures: documents/s overall and per payload kind.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from intelligence.documents import Document, Fetched
from intelligence.extract.lexicon import LexiconExtractor
from intelligence.parse.parsing import CompanyNames, parse
from intelligence.registry import company_names, load_registry

SHARED_FEEDS = {
    "news_feeds_rss/cnbc.xml": ("rss", "application/rss+xml"),
    "news_feeds_rss/seekingalpha.xml": ("rss", "application/rss+xml"),
    "news_feeds_rss/bloomberg.xml": ("rss", "application/xml"),
    "sec_edgar/edgar_getcurrent_atom_2025-12-12.xml": ("sec_edgar", "application/atom+xml"),
}
T0 = datetime(2026, 3, 9, 12, tzinfo=UTC)

_EVENTS = (
    "{name} beats quarterly profit estimates as demand stays strong",
    "{name} shares slump after it cuts full-year revenue guidance",
    "{name} announces a $10 billion share buyback",
    "Regulators open an antitrust probe into {name}",
    "{name} wins a multi-year supply contract",
    "{name} recalls vehicles over a braking fault",
    "Analysts upgrade {name} to buy, citing margin expansion",
    "{name} chief executive to step down at year end",
    "{name} losses widen as costs rise",
    "{name} agrees to acquire a rival in an all-stock deal",
    "Oil prices jump as OPEC extends output cuts; {name} in focus",
    "{name} reports record deliveries for the quarter",
)
_BODY = (
    "The company said results reflected {adj} demand in its core markets.",
    "Shares moved {move} in early trading after the announcement.",
    "Management expects margins to {trend} over the coming quarters.",
    "Analysts said the figures were {adj} than the consensus had assumed.",
)


@dataclass(frozen=True)
class Corpus:
    payloads: list[Fetched]
    kinds: dict[str, str]  # source_id -> kind (shared_feed, generated_feed, generated_page)


def _fetched(source_id: str, source_type: Any, url: str, ctype: str, body: bytes) -> Fetched:
    return Fetched(
        source_id=source_id, source_type=source_type, url=url, status=200,
        fetched_at=int(T0.timestamp() * 1e9), content_type=ctype, body=body, bytes=len(body),
    )  # fmt: skip


def _generated_feed(rng: random.Random, names: list[tuple[str, str]], n: int, k: int) -> bytes:
    items = []
    for i in range(n):
        ticker, name = rng.choice(names)
        title = rng.choice(_EVENTS).format(name=name)
        body = " ".join(
            rng.choice(_BODY).format(
                adj=rng.choice(("stronger", "weaker", "steady", "softer")),
                move=rng.choice(("higher", "lower", "sharply lower", "slightly higher")),
                trend=rng.choice(("improve", "narrow", "recover", "deteriorate")),
            )
            for _ in range(3)
        )
        when = format_datetime(T0 - timedelta(minutes=7 * i + k))
        items.append(
            f"<item><title>{escape(title)}</title>"
            f"<link>https://news.example.com/{k}/{i}/{ticker.lower()}</link>"
            f"<description>{escape(body)}</description><pubDate>{when}</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Generated markets feed {k}</title>{''.join(items)}</channel></rss>"
    ).encode()


def _generated_page(rng: random.Random, names: list[tuple[str, str]], k: int) -> bytes:
    _, name = rng.choice(names)
    title = rng.choice(_EVENTS).format(name=name)
    paras = "".join(
        f"<p>{escape(rng.choice(_BODY).format(adj='stronger', move='higher', trend='improve'))}"
        f" {escape(title)}.</p>"
        for _ in range(12)
    )
    return (
        f"<!doctype html><html><head><title>{escape(title)}</title>"
        f'<meta name="author" content="Newsroom {k}"></head><body><nav>Home | Markets</nav>'
        f"<article><h1>{escape(title)}</h1>{paras}</article><footer>(c)</footer></body></html>"
    ).encode()


def build_corpus(shared_data: Path | None, target_docs: int, seed: int) -> Corpus:
    """Payloads holding about ``target_docs`` documents (see the module docstring)."""
    rng = random.Random(seed)
    registry = load_registry()
    names = [(c.ticker, c.aliases[0] if c.aliases else c.legal_name) for c in registry.companies]
    payloads: list[Fetched] = []
    kinds: dict[str, str] = {}
    shared: list[tuple[str, Any, str, bytes]] = []
    if shared_data is not None:
        for rel, (stype, ctype) in SHARED_FEEDS.items():
            path = shared_data / rel
            if path.is_file():
                shared.append((Path(rel).stem, stype, ctype, path.read_bytes()))
    per_round = 0
    k = 0
    while per_round * k < target_docs or k == 0:
        count_before = len(payloads)
        for name, stype, ctype, body in shared:
            sid = f"shared-{name}-{k}"
            payloads.append(_fetched(sid, stype, f"https://mirror.example/{k}/{name}", ctype, body))
            kinds[sid] = "shared_feed"
        sid = f"gen-feed-{k}"
        payloads.append(
            _fetched(sid, "rss", f"https://news.example.com/feed/{k}", "application/rss+xml",
                     _generated_feed(rng, names, 50, k))
        )  # fmt: skip
        kinds[sid] = "generated_feed"
        for j in range(5):
            sid = f"gen-page-{k}-{j}"
            payloads.append(
                _fetched(sid, "web", f"https://news.example.com/a/{k}/{j}", "text/html",
                         _generated_page(rng, names, k))
            )  # fmt: skip
            kinds[sid] = "generated_page"
        if k == 0:  # documents per round, from a dry parse of the first round
            companies = company_names(registry)
            per_round = sum(len(parse(f, companies)) for f in payloads[count_before:]) or 1
        k += 1
    return Corpus(payloads, kinds)


def _pin_one_core() -> tuple[int | None, set[int] | None]:
    """Pin this process to one CPU; returns it and the affinity to restore."""
    try:
        before = set(os.sched_getaffinity(0))
        cpu = max(before)
        os.sched_setaffinity(0, {cpu})
        return cpu, before
    except (AttributeError, OSError):
        return None, None


def bench_intelligence(
    shared_data: Path | None, target_docs: int = 20_000, seed: int = 1
) -> dict[str, Any]:
    """Parse and extract the corpus on one core; documents/s overall and per payload kind."""
    corpus = build_corpus(shared_data, target_docs, seed)
    registry = load_registry()
    companies = company_names(registry)
    extractor = LexiconExtractor()
    parse(corpus.payloads[0], companies)  # compile the mention matcher outside the clock
    cpu, before = _pin_one_core()
    try:
        figures = _timed(corpus, companies, extractor)
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)
    return {**figures, "pinned_cpu": cpu, "target_docs_per_s": 500}


def _timed(
    corpus: Corpus, companies: list[CompanyNames], extractor: LexiconExtractor
) -> dict[str, Any]:
    per_kind: dict[str, dict[str, float]] = {}
    docs_total = quarantined = 0
    wall = time.perf_counter()
    cpu_start = time.process_time()
    for f in corpus.payloads:
        t = time.perf_counter()
        parsed = parse(f, companies)
        docs = [d for d in parsed if isinstance(d, Document)]
        quarantined += len(parsed) - len(docs)
        for d in docs:
            extractor.extract(f"{d.title}. {d.text}", d.tickers)
        kind = corpus.kinds[f.source_id]
        k = per_kind.setdefault(kind, {"documents": 0, "seconds": 0.0, "bytes": 0})
        k["documents"] += len(docs)
        k["seconds"] += time.perf_counter() - t
        k["bytes"] += f.bytes
        docs_total += len(docs)
    seconds = time.perf_counter() - wall
    cpu_seconds = time.process_time() - cpu_start
    return {
        "documents": docs_total,
        "payloads": len(corpus.payloads),
        "quarantined": quarantined,
        "megabytes": round(sum(f.bytes for f in corpus.payloads) / 1e6, 2),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "docs_per_s": round(docs_total / seconds, 1),
        "shared_data": any(v == "shared_feed" for v in corpus.kinds.values()),
        "by_kind": {
            kind: {
                "documents": int(v["documents"]),
                "docs_per_s": round(v["documents"] / v["seconds"], 1) if v["seconds"] else 0.0,
                "kb_per_doc": round(v["bytes"] / 1e3 / max(1, v["documents"]), 2),
            }
            for kind, v in sorted(per_kind.items())
        },
    }
