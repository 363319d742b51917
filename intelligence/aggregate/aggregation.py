"""Aggregation: scored documents -> one :class:`Trend` per company, window and point in time.

Pure functions: no I/O and no clock. ``as_of`` comes in, and every document
published after it is ignored, so a backfill of a past day computes exactly
what would have been computed that day, whatever arrived since.

**Document weight.** Within a window (``WINDOW_NS``), a document counts with

    weight = recency x credibility x novelty x quality x extraction confidence

- *recency*: ``0.5 ** (age / half_life)``, a half-life per window (2 h
  intraday ... 21 d for 90 d), so a window is a weighted view of its own
  horizon rather than a flat count;
- *credibility*: the source's, from the registry (0..1);
- *novelty*: a story syndicated by several feeds counts once. Titles are
  compared as sets of words and word pairs (Jaccard), after dropping a
  trailing " - Publisher"; a document as similar as ``duplicate_at`` to an
  earlier one of the window (or with the same content fingerprint) gets 0,
  one below ``duplicate_from`` keeps 1, in between a linear share. The
  first-published copy keeps 1 (ties broken by ``doc_id``); only documents of
  the same window are compared, so nothing older than a window affects it;
- *quality*: the parser's verdict on the page (``low`` counts less).

**Layers.** Each gives signed amounts ``weight x value`` per document:

- *company*: documents naming the company; value = sentiment x impact factor
  (low/medium/high).
- *macro*: every document's macro events, through the company's exposure
  (:func:`exposure`): severity x direction x (revenue share in the event's
  regions x sector match) for economy-wide events, severity x price direction
  x the company's signed commodity sensitivity for commodity events, so an
  oil price rise is bad for a fuel buyer and good for an oil major.
- *competitive*: documents naming a company this one lists as a competitor
  (and not this one), value = sentiment x impact x sign x strength of the
  link. Signs (``RELATIONSHIP_SIGN``): a *direct* rival's or a *substitute*'s
  bad news is mildly good for you (share and spend move to you: -1); a
  *supplier*'s, *customer*'s or *partner*'s news is yours too (+1). The
  links are the ones this company lists: the registry says what each
  company is *to the company listing it*. The layer reads the rivals'
  documents, so it works with the company layer switched off.

**Bounding.** A layer's signal is ``tanh(sum of amounts / saturation)``:
bounded in [-1, 1], sign-preserving, linear while evidence is thin and
saturating as it piles up, and monotone: one more positive document never
lowers it. (A weighted mean would let one faint document speak as loudly as
a hundred, and would fall when a mildly positive document joins strongly
positive ones.) The trend's signal is the clipped sum of the enabled layers
times their weights (company 1.0, macro 0.3, competitive 0.2 by default); a
disabled layer contributes 0 and reports 0. A document's ``contribution``
is its share of that: layer weight x amount x ``tanh(S)/S`` of its layer.

**Confidence and contradiction.** From the layer-weighted amounts:
positive mass, negative mass, and the effective number of documents (Kish:
``(sum m)^2 / sum m^2`` over each document's mass). Confidence grows with
the effective number and the mass and shrinks with disagreement. Both sides
holding at least ``contradiction_mass`` and the weaker at least
``contradiction_share`` of the total is a *contradiction*; its score is the
balance ``2 x minority share`` (1: even), scaled down while the weaker side
is below the mass threshold, and a contradiction lowers confidence further.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import pyarrow as pa

from intelligence.aggregate.signals import (
    LAYERS,
    WINDOW_NS,
    WINDOWS,
    Evidence,
    Layer,
    Trend,
    Window,
)
from intelligence.config import as_settings
from intelligence.documents import Document, Quality
from intelligence.extract.extraction import Extraction, Impact, MacroEvent, Severity
from intelligence.registry import Company, Registry, Relationship
from intelligence.schemas import EVIDENCE_SCHEMA, TRENDS_SCHEMA

HOUR_NS: Final = 3600 * 1_000_000_000
DAY_NS: Final = 24 * HOUR_NS

RELATIONSHIP_SIGN: Final[dict[Relationship, float]] = {
    "direct": -1.0,
    "substitute": -1.0,
    "supplier": 1.0,
    "customer": 1.0,
    "partner": 1.0,
}
"""How a linked company's news reads for the company listing it (see the module docstring)."""


def _default_half_lives() -> dict[Window, int]:
    return {
        "intraday": 2 * HOUR_NS,
        "1d": 12 * HOUR_NS,
        "7d": 2 * DAY_NS,
        "30d": 7 * DAY_NS,
        "90d": 21 * DAY_NS,
    }


class Scored(msgspec.Struct, frozen=True, kw_only=True):
    """One document with its extraction: what aggregation reads.

    ``credibility`` is the source's (0..1), ``published_at`` ns (the fetch
    time when a page gives none), ``tickers`` the companies it names.
    ``fingerprint`` (optional, e.g. the content hash) marks exact copies.
    """

    doc_id: str
    url: str
    title: str
    source_id: str
    credibility: float
    published_at: int
    extraction: Extraction
    tickers: list[str] = msgspec.field(default_factory=list)
    quality: Quality = "medium"
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.credibility <= 1.0:
            raise ValueError(f"credibility {self.credibility} is outside [0, 1]")

    @classmethod
    def from_document(cls, doc: Document, extraction: Extraction, credibility: float) -> Scored:
        """A parsed document and its extraction; tickers are both sides' (in order, once)."""
        return cls(
            doc_id=doc.doc_id,
            url=doc.canonical_url or doc.url,
            title=doc.title,
            source_id=doc.source_id,
            credibility=credibility,
            published_at=doc.published_at if doc.published_at is not None else doc.fetched_at,
            extraction=extraction,
            tickers=list(dict.fromkeys([*doc.tickers, *extraction.tickers])),
            quality=doc.quality,
            fingerprint=doc.content_sha256 or None,
        )


class AggregationConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Every knob of aggregation; :meth:`from_settings` reads the switchable ones from Settings."""

    company_layer: bool = True
    macro_layer: bool = True
    competitive_layer: bool = True
    company_weight: float = 1.0
    macro_weight: float = 0.3
    competitive_weight: float = 0.2
    windows: tuple[Window, ...] = WINDOWS
    half_life_ns: dict[Window, int] = msgspec.field(default_factory=_default_half_lives)
    impact_factor: dict[Impact, float] = msgspec.field(
        default_factory=lambda: {"low": 0.5, "medium": 0.75, "high": 1.0}
    )
    severity_factor: dict[Severity, float] = msgspec.field(
        default_factory=lambda: {"low": 0.33, "medium": 0.67, "high": 1.0}
    )
    quality_factor: dict[Quality, float] = msgspec.field(
        default_factory=lambda: {"high": 1.0, "medium": 0.9, "low": 0.7}
    )
    relationship_sign: dict[Relationship, float] = msgspec.field(
        default_factory=lambda: dict(RELATIONSHIP_SIGN)
    )
    off_sector: float = 0.25  # share of a sector-specific event reaching other sectors
    saturation: float = 1.0  # layer signal = tanh(sum / saturation)
    duplicate_from: float = 0.4  # title similarity below which a document is new
    duplicate_at: float = 0.9  # ... at or above which it is a copy (novelty 0)
    contradiction_mass: float = 0.15
    contradiction_share: float = 0.3
    contradiction_penalty: float = 0.5
    confidence_documents: float = 3.0  # effective documents for ~63% of full confidence
    confidence_mass: float = 0.5  # evidence mass for ~63%
    top_evidence: int = 5

    def __post_init__(self) -> None:
        missing = [w for w in self.windows if w not in self.half_life_ns]
        if missing:
            raise ValueError(f"no half-life for windows {missing}")
        if any(v <= 0 for v in self.half_life_ns.values()) or self.saturation <= 0:
            raise ValueError("half-lives and saturation must be positive")
        if not 0.0 <= self.duplicate_from < self.duplicate_at <= 1.0:
            raise ValueError("need 0 <= duplicate_from < duplicate_at <= 1")

    @classmethod
    def from_settings(cls, settings: object, **overrides: Any) -> AggregationConfig:
        """The layer switches and weights of the platform's Settings, defaults otherwise.

        ``intel_company_layer``, ``intel_macro_layer``, ``intel_competitive_layer``,
        ``intel_macro_weight`` and ``intel_competitive_weight`` (the company
        layer's weight is no setting: it keeps its default). ``overrides``
        replace any field.
        """
        s = as_settings(settings)
        values: dict[str, Any] = {
            "company_layer": s.intel_company_layer,
            "macro_layer": s.intel_macro_layer,
            "competitive_layer": s.intel_competitive_layer,
            "macro_weight": s.intel_macro_weight,
            "competitive_weight": s.intel_competitive_weight,
        }
        return cls(**(values | overrides))

    def enabled(self, layer: Layer) -> bool:
        return {
            "company": self.company_layer,
            "macro": self.macro_layer,
            "competitive": self.competitive_layer,
        }[layer]

    def weight(self, layer: Layer) -> float:
        return {
            "company": self.company_weight,
            "macro": self.macro_weight,
            "competitive": self.competitive_weight,
        }[layer]


# --------------------------------------------------------------------------- exposure


def exposure(company: Company, event: MacroEvent, config: AggregationConfig) -> float:
    """The signed effect of one macro event on one company, in [-1, 1].

    Commodity events carry the price direction, which the company's signed
    sensitivity turns into good or bad news (the event's regions are where
    the news came from, not who pays the world price). Other events reach a
    company by its revenue share in the named regions (all of it when none is
    named) and by sector (``off_sector`` for companies outside the named ones).
    """
    severity = config.severity_factor[event.severity]
    if event.kind == "commodity_supply":
        sensitivity = sum(company.commodities.get(c, 0.0) for c in event.commodities)
        reach = _clip(sensitivity)
    else:
        overlap = sum(company.regions.get(r, 0.0) for r in event.regions) if event.regions else 1.0
        sector = 1.0 if not event.sectors or company.sector in event.sectors else config.off_sector
        reach = min(1.0, overlap) * sector
    return _clip(severity * event.direction * reach)


# --------------------------------------------------------------------------- novelty

_SUFFIX_RE: Final = re.compile(r"\s+[-|\u2013\u2014]\s+[^-|\u2013\u2014]{1,40}$")
_WORDS_RE: Final = re.compile(r"[a-z0-9]+")


def shingles(title: str) -> frozenset[str]:
    """A title as words and word pairs, without a trailing " - Publisher" (for similarity)."""
    words = _WORDS_RE.findall(_SUFFIX_RE.sub("", title.lower()))
    return frozenset([*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))])


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def novelty(docs: Sequence[Scored], config: AggregationConfig) -> dict[str, float]:
    """doc_id -> novelty in [0, 1], each document against the earlier ones of ``docs``.

    ``docs`` in publication order (ties by ``doc_id``). An inverted index on
    the shingles keeps this near linear: only documents sharing a word pair
    or word are compared.
    """
    out: dict[str, float] = {}
    index: dict[str, list[int]] = {}
    seen_prints: set[str] = set()
    sets: list[frozenset[str]] = []
    lo, hi = config.duplicate_from, config.duplicate_at
    for i, d in enumerate(docs):
        sh = shingles(d.title)
        best = 1.0 if d.fingerprint is not None and d.fingerprint in seen_prints else 0.0
        if best < hi:
            candidates = {j for s in sh for j in index.get(s, ())}
            for j in candidates:
                best = max(best, _jaccard(sh, sets[j]))
        out[d.doc_id] = 1.0 - min(1.0, max(0.0, (best - lo) / (hi - lo)))
        sets.append(sh)
        for s in sh:
            index.setdefault(s, []).append(i)
        if d.fingerprint is not None:
            seen_prints.add(d.fingerprint)
    return out


# --------------------------------------------------------------------------- aggregation


@dataclass(frozen=True, slots=True)
class _Amount:
    """One signed amount of one document in one layer (before the layer's bounding)."""

    doc: Scored
    layer: Layer
    amount: float
    via: str | None = None


def _clip(x: float, lo: float = -1.0, hi: float = 1.0) -> float:
    return min(hi, max(lo, x)) + 0.0  # + 0.0: no -0.0 in the output


def _canonical(scored: Iterable[Scored]) -> list[Scored]:
    """One document per ``doc_id``, in publication order: the input order never matters."""
    best: dict[str, tuple[int, bytes, Scored]] = {}
    for d in scored:
        key = (d.published_at, msgspec.json.encode(d))
        old = best.get(d.doc_id)
        if old is None or key < old[:2]:
            best[d.doc_id] = (*key, d)
    return sorted((v[2] for v in best.values()), key=lambda d: (d.published_at, d.doc_id))


def _tickers(d: Scored) -> frozenset[str]:
    return frozenset([*d.tickers, *d.extraction.tickers])


def _in_window(docs: Sequence[Scored], as_of: int, window: Window) -> list[Scored]:
    start = as_of - WINDOW_NS[window]
    return [d for d in docs if start <= d.published_at <= as_of]


def _base_weights(
    docs: Sequence[Scored], as_of: int, window: Window, config: AggregationConfig
) -> dict[str, float]:
    """Recency x credibility x novelty x quality x confidence of every document of a window."""
    half_life = config.half_life_ns[window]
    new = novelty(docs, config)
    return {
        d.doc_id: 0.5 ** ((as_of - d.published_at) / half_life)
        * d.credibility
        * new[d.doc_id]
        * config.quality_factor[d.quality]
        * d.extraction.confidence
        for d in docs
    }


def _layer_amounts(
    company: Company,
    docs: Sequence[Scored],
    weights: Mapping[str, float],
    tickers: Mapping[str, frozenset[str]],
    config: AggregationConfig,
) -> dict[Layer, list[_Amount]]:
    out: dict[Layer, list[_Amount]] = {layer: [] for layer in LAYERS}
    links = {k.ticker: k for k in company.competitors}
    for d in docs:
        w = weights[d.doc_id]
        if w == 0.0:
            continue
        x = d.extraction
        tone = x.sentiment * config.impact_factor[x.impact]
        named = tickers[d.doc_id]
        if company.ticker in named:
            if config.company_layer and tone:
                out["company"].append(_Amount(d, "company", w * tone))
        elif config.competitive_layer and tone:
            for rival in sorted(named & links.keys()):
                link = links[rival]
                sign = config.relationship_sign[link.relationship]
                amount = w * tone * sign * link.strength
                if amount:
                    out["competitive"].append(_Amount(d, "competitive", amount, rival))
        if config.macro_layer and x.macro_events:
            effects = [(exposure(company, e, config), e.kind) for e in x.macro_events]
            total = _clip(sum(v for v, _ in effects))
            if total:
                # the event that moved this company most names the link
                kind = max(effects, key=lambda vk: abs(vk[0]))[1]
                out["macro"].append(_Amount(d, "macro", w * total, kind))
    return out


def _confidence(
    amounts: Sequence[tuple[_Amount, float]], config: AggregationConfig
) -> tuple[float, bool, float]:
    """(confidence, contradiction, contradiction score) from layer-weighted amounts."""
    pos = math.fsum(q for _, q in amounts if q > 0)
    neg = math.fsum(-q for _, q in amounts if q < 0)
    mass = pos + neg
    if mass <= 0.0:
        return 0.0, False, 0.0
    per_doc: dict[str, float] = {}
    for a, q in amounts:
        per_doc[a.doc.doc_id] = per_doc.get(a.doc.doc_id, 0.0) + abs(q)
    effective = 1.0 / math.fsum((m / mass) ** 2 for m in per_doc.values())  # no underflow
    coverage = (1.0 - math.exp(-effective / config.confidence_documents)) * (
        1.0 - math.exp(-mass / config.confidence_mass)
    )
    minority = min(pos, neg)
    share = minority / mass
    balance = 2.0 * share
    contradiction = minority >= config.contradiction_mass and share >= config.contradiction_share
    score = balance * min(1.0, minority / config.contradiction_mass)
    confidence = coverage * (1.0 - 0.5 * balance)
    if contradiction:
        confidence *= 1.0 - config.contradiction_penalty * score
    return _clip(confidence, 0.0, 1.0), contradiction, _clip(score, 0.0, 1.0)


def _trend(
    company: Company,
    window: Window,
    as_of: int,
    layers: Mapping[Layer, Sequence[_Amount]],
    config: AggregationConfig,
) -> Trend:
    signals: dict[Layer, float] = {}
    weighted: list[tuple[_Amount, float]] = []
    evidence: list[Evidence] = []
    for layer in LAYERS:
        items = layers[layer]
        total = math.fsum(a.amount for a in items)
        signal = math.tanh(total / config.saturation)
        signals[layer] = _clip(signal)
        # each document's share of the bounded signal: tanh(S)/S (-> 1/saturation at 0)
        share = signal / total if total else 1.0 / config.saturation
        weight = config.weight(layer)
        for a in items:
            weighted.append((a, weight * a.amount))
            contribution = weight * a.amount * share
            if contribution:
                evidence.append(
                    Evidence(
                        doc_id=a.doc.doc_id,
                        url=a.doc.url,
                        title=a.doc.title,
                        layer=layer,
                        contribution=contribution,
                        published_at=a.doc.published_at,
                        source_id=a.doc.source_id,
                        via=a.via,
                    )
                )
    confidence, contradiction, score = _confidence(weighted, config)
    used = {a.doc.doc_id: a.doc.source_id for a, q in weighted if q}
    evidence.sort(
        key=lambda e: (-abs(e.contribution), e.doc_id, LAYERS.index(e.layer), e.via or "")
    )
    return Trend(
        ticker=company.ticker,
        window=window,
        as_of=as_of,
        signal=_clip(math.fsum(config.weight(la) * signals[la] for la in LAYERS)),
        company=signals["company"],
        macro=signals["macro"],
        competitive=signals["competitive"],
        confidence=confidence,
        contradiction=contradiction,
        contradiction_score=score,
        documents=len(used),
        sources=len(set(used.values())),
        evidence=evidence[: config.top_evidence],
    )


def _aggregate_at(
    docs: Sequence[Scored],
    tickers: Mapping[str, frozenset[str]],
    registry: Registry,
    as_of: int,
    config: AggregationConfig,
) -> list[Trend]:
    per_window: dict[Window, tuple[list[Scored], dict[str, float]]] = {}
    for window in config.windows:
        in_window = _in_window(docs, as_of, window)
        per_window[window] = (in_window, _base_weights(in_window, as_of, window, config))
    out: list[Trend] = []
    for company in sorted(registry.companies, key=lambda c: c.ticker):
        for window in sorted(config.windows, key=WINDOWS.index):
            in_window, weights = per_window[window]
            layers = _layer_amounts(company, in_window, weights, tickers, config)
            out.append(_trend(company, window, as_of, layers, config))
    return out


def aggregate(
    scored: Iterable[Scored],
    registry: Registry,
    as_of: int,
    config: AggregationConfig | None = None,
) -> list[Trend]:
    """Every tracked company x every configured window, as of ``as_of`` (ns).

    Ordered by ticker, then window (``intraday`` ... ``90d``). A company
    without evidence gets signal 0, confidence 0 and no documents.
    """
    return trend_history(scored, registry, [as_of], config)


def trend_history(
    scored: Iterable[Scored],
    registry: Registry,
    as_ofs: Iterable[int],
    config: AggregationConfig | None = None,
) -> list[Trend]:
    """:func:`aggregate` at several points in time (e.g. each close of a backfill).

    Each point sees only the documents published by then. Ordered by
    ``as_of`` (each once), then as :func:`aggregate`.
    """
    cfg = config or AggregationConfig()
    docs = _canonical(scored)
    tickers = {d.doc_id: _tickers(d) for d in docs}
    out: list[Trend] = []
    for as_of in sorted(set(as_ofs)):
        out += _aggregate_at(docs, tickers, registry, as_of, cfg)
    return out


# --------------------------------------------------------------------------- lake tables


def trends_table(trends: Iterable[Trend]) -> pa.Table:
    """Trends as rows of :data:`TRENDS_SCHEMA` (evidence goes to :func:`evidence_table`)."""
    rows = [
        {
            "ticker": t.ticker,
            "window": t.window,
            "as_of": t.as_of,
            "signal": t.signal,
            "company": t.company,
            "macro": t.macro,
            "competitive": t.competitive,
            "confidence": t.confidence,
            "contradiction": t.contradiction,
            "contradiction_score": t.contradiction_score,
            "documents": t.documents,
            "sources": t.sources,
            "driver": t.driver,
        }
        for t in trends
    ]
    return pa.Table.from_pylist(rows, schema=TRENDS_SCHEMA)


def evidence_table(trends: Iterable[Trend]) -> pa.Table:
    """The evidence of ``trends`` as rows of :data:`EVIDENCE_SCHEMA`."""
    rows = [
        {
            "ticker": t.ticker,
            "window": t.window,
            "as_of": t.as_of,
            "rank": rank,
            "doc_id": e.doc_id,
            "url": e.url,
            "title": e.title,
            "layer": e.layer,
            "contribution": e.contribution,
            "published_at": e.published_at,
            "source_id": e.source_id,
            "via": e.via,
        }
        for t in trends
        for rank, e in enumerate(t.evidence, 1)
    ]
    return pa.Table.from_pylist(rows, schema=EVIDENCE_SCHEMA)
