"""Aggregation: hand-computed small cases and properties over random document sets.

Extractions are written by hand (sentiment, confidence, impact, macro
events) so every expected number follows from the documented formula:
amount = recency x credibility x novelty x quality x confidence x value,
layer signal = tanh(sum of amounts), trend signal = weighted sum of layers.
The real registry is used throughout; it has no airline, so Boeing (which
buys nothing but is hurt by dear jet fuel through its customers) stands in
for a fuel buyer, and ExxonMobil for an oil major.
"""

from __future__ import annotations

import functools
import math
import random
from types import SimpleNamespace

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intelligence.aggregate.aggregation import (
    DAY_NS,
    HOUR_NS,
    AggregationConfig,
    Scored,
    aggregate,
    evidence_table,
    exposure,
    novelty,
    shingles,
    trend_history,
    trends_table,
)
from intelligence.aggregate.signals import LAYERS, WINDOW_NS, WINDOWS, Trend, Window
from intelligence.documents import Document
from intelligence.extract.extraction import IMPACTS, Extraction, Impact, MacroEvent, label_for
from intelligence.registry import Registry, load_registry
from intelligence.schemas import EVIDENCE_SCHEMA, TRENDS_SCHEMA

pytestmark = pytest.mark.unit

AS_OF = 1_750_000_000 * 1_000_000_000
CONFIG = AggregationConfig()


@functools.cache
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="module")
def reg() -> Registry:
    return registry()


def ext(
    sentiment: float = 0.5,
    *,
    confidence: float = 1.0,
    impact: Impact = "high",
    events: tuple[MacroEvent, ...] = (),
) -> Extraction:
    return Extraction(
        sentiment=sentiment,
        label=label_for(sentiment),
        impact=impact,
        catalyst="other",
        confidence=confidence,
        macro_events=list(events),
    )


def doc(
    doc_id: str,
    sentiment: float = 0.5,
    *,
    tickers: tuple[str, ...] = ("AAPL",),
    age: int = 0,
    credibility: float = 1.0,
    title: str | None = None,
    source: str = "wire",
    confidence: float = 1.0,
    impact: Impact = "high",
    events: tuple[MacroEvent, ...] = (),
    fingerprint: str | None = None,
) -> Scored:
    return Scored(
        doc_id=doc_id,
        url=f"https://news.example/{doc_id}",
        title=title if title is not None else f"headline {doc_id} {doc_id}x {doc_id}y",
        source_id=source,
        credibility=credibility,
        published_at=AS_OF - age,
        extraction=ext(sentiment, confidence=confidence, impact=impact, events=events),
        tickers=list(tickers),
        quality="high",
        fingerprint=fingerprint,
    )


def trend(trends: list[Trend], ticker: str, window: Window = "1d") -> Trend:
    (t,) = [t for t in trends if t.ticker == ticker and t.window == window]
    return t


OIL_UP = MacroEvent(
    kind="commodity_supply", severity="high", direction=1.0, commodities=["crude_oil"]
)
JET_FUEL_UP = MacroEvent(
    kind="commodity_supply", severity="high", direction=1.0, commodities=["jet_fuel"]
)
CHINA_RECESSION = MacroEvent(kind="growth", severity="high", direction=-1.0, regions=["china"])
CHIP_CURBS = MacroEvent(
    kind="trade_policy", severity="medium", direction=-1.0, regions=["china"],
    sectors=["Information Technology"],
)  # fmt: skip


# --------------------------------------------------------------------------- shape


def test_every_company_and_window_in_order(reg: Registry) -> None:
    trends = aggregate([doc("a")], reg, AS_OF)
    assert [(t.ticker, t.window) for t in trends] == [
        (ticker, w) for ticker in sorted(reg.tickers) for w in WINDOWS
    ]
    quiet = trend(trends, "BA")  # no news, no links to Apple
    assert (quiet.signal, quiet.confidence, quiet.documents, quiet.evidence) == (0.0, 0.0, 0, [])
    assert quiet.driver == "none"


def test_one_document(reg: Registry) -> None:
    t = trend(aggregate([doc("a", 0.5)], reg, AS_OF), "AAPL")
    assert t.company == pytest.approx(math.tanh(0.5))
    assert t.signal == pytest.approx(math.tanh(0.5))  # company weight 1.0
    assert (t.macro, t.competitive, t.documents, t.sources) == (0.0, 0.0, 1, 1)
    assert t.driver == "company"
    (e,) = t.evidence
    assert (e.doc_id, e.layer, e.via) == ("a", "company", None)
    assert e.contribution == pytest.approx(t.signal)
    assert 0.0 < t.confidence < 1.0
    assert not t.contradiction


def test_decay_at_one_half_life_halves_the_weight(reg: Registry) -> None:
    half = CONFIG.half_life_ns["1d"]
    trends = aggregate([doc("a", 0.8, age=half)], reg, AS_OF)
    assert trend(trends, "AAPL", "1d").company == pytest.approx(math.tanh(0.4))
    # 12 h old is outside the 6.5 h intraday window
    assert trend(trends, "AAPL", "intraday").company == 0.0
    week_half = CONFIG.half_life_ns["7d"]
    assert trend(trends, "AAPL", "7d").company == pytest.approx(
        math.tanh(0.8 * 0.5 ** (half / week_half))
    )


def test_credibility_confidence_and_impact_scale_the_weight(reg: Registry) -> None:
    cases = [
        (doc("a", 0.8, credibility=0.5), 0.4),
        (doc("a", 0.8, confidence=0.25), 0.2),
        (doc("a", 0.8, impact="low"), 0.8 * CONFIG.impact_factor["low"]),
    ]
    for d, amount in cases:
        assert trend(aggregate([d], reg, AS_OF), "AAPL").company == pytest.approx(math.tanh(amount))


def test_syndicated_copies_count_once(reg: Registry) -> None:
    first = doc("z-first", 0.6, age=3 * HOUR_NS, title="Apple beats estimates on iPhone sales")
    copies = [
        doc("a-copy", 0.6, age=2 * HOUR_NS, title="Apple beats estimates on iPhone sales - Reuters",
            source="reuters"),
        doc("b-copy", 0.6, age=HOUR_NS, title="Apple Beats Estimates on iPhone Sales | CNBC",
            source="cnbc"),
    ]  # fmt: skip
    alone = trend(aggregate([first], reg, AS_OF), "AAPL")
    together = trend(aggregate([first, *copies], reg, AS_OF), "AAPL")
    assert together.company == pytest.approx(alone.company)
    assert together.documents == 1
    assert [e.doc_id for e in together.evidence] == ["z-first"]  # the first-published copy


def test_same_fingerprint_is_a_copy_and_ties_go_by_doc_id(reg: Registry) -> None:
    a = doc("a", 0.6, title="Apple beats estimates", fingerprint="sha-1")
    b = doc("b", 0.6, title="Apple tops forecasts again", fingerprint="sha-1")  # same instant
    t = trend(aggregate([b, a], reg, AS_OF), "AAPL")
    assert t.documents == 1 and t.evidence[0].doc_id == "a"
    assert novelty([a, b], CONFIG) == {"a": 1.0, "b": 0.0}


def test_novelty_is_graded_between_the_thresholds() -> None:
    a = doc("a", title="apple beats estimates on strong iphone sales in china")
    b = doc("b", title="apple beats estimates on strong iphone sales in europe", age=-1)
    similarity = len(shingles(a.title) & shingles(b.title)) / len(
        shingles(a.title) | shingles(b.title)
    )
    assert CONFIG.duplicate_from < similarity < CONFIG.duplicate_at
    got = novelty([a, b], CONFIG)
    assert got["a"] == 1.0
    assert got["b"] == pytest.approx(
        1 - (similarity - CONFIG.duplicate_from) / (CONFIG.duplicate_at - CONFIG.duplicate_from)
    )
    unrelated = doc("c", title="Exxon raises dividend")
    assert novelty([a, unrelated], CONFIG)["c"] == 1.0


def test_a_document_after_as_of_is_ignored(reg: Registry) -> None:
    past = doc("a", 0.5, age=HOUR_NS)
    future = doc("b", -0.9, age=-1)
    assert aggregate([past, future], reg, AS_OF) == aggregate([past], reg, AS_OF)
    later = trend_history([past, future], reg, [AS_OF + HOUR_NS, AS_OF], CONFIG)
    assert [t.as_of for t in later[:: len(WINDOWS) * len(reg.tickers)]] == [AS_OF, AS_OF + HOUR_NS]
    before, after = (
        trend([t for t in later if t.as_of == x], "AAPL") for x in (AS_OF, AS_OF + HOUR_NS)
    )
    assert before.company > 0 > after.company  # the future doc counts once its time has come


# --------------------------------------------------------------------------- macro


def test_exposure_of_an_oil_price_rise(reg: Registry) -> None:
    assert reg.company("XOM").commodities["crude_oil"] > 0  # an oil major
    assert exposure(reg.company("XOM"), OIL_UP, CONFIG) == pytest.approx(0.9)
    assert exposure(reg.company("PG"), OIL_UP, CONFIG) == pytest.approx(-0.2)
    assert exposure(reg.company("JPM"), OIL_UP, CONFIG) == 0.0
    falling = msgspec.structs.replace(OIL_UP, direction=-1.0, severity="low")
    assert exposure(reg.company("XOM"), falling, CONFIG) == pytest.approx(-0.9 * 0.33)


def test_oil_shock_hurts_fuel_buyers_and_helps_the_oil_major(reg: Registry) -> None:
    news = [
        doc("oil", 0.0, tickers=(), events=(OIL_UP,)),
        doc("jet", 0.0, tickers=(), events=(JET_FUEL_UP,)),
    ]
    trends = aggregate(news, reg, AS_OF)
    xom, ba, pg = (trend(trends, t) for t in ("XOM", "BA", "PG"))
    assert xom.macro == pytest.approx(math.tanh(0.9 + 0.3))  # crude and jet fuel both help
    assert ba.macro == pytest.approx(math.tanh(-0.2))  # Boeing: jet fuel only
    assert pg.macro == pytest.approx(math.tanh(-0.2))
    assert xom.signal == pytest.approx(0.3 * xom.macro)  # macro weight 0.3
    assert (xom.company, xom.driver) == (0.0, "macro")
    assert {e.via for e in xom.evidence} == {"commodity_supply"}
    assert trend(trends, "JPM").macro == 0.0


def test_regional_and_sector_events_follow_revenue_and_sector(reg: Registry) -> None:
    trends = aggregate([doc("r", 0.0, tickers=(), events=(CHINA_RECESSION,))], reg, AS_OF)
    intc, nvda, jpm = (trend(trends, t) for t in ("INTC", "NVDA", "JPM"))
    assert intc.macro == pytest.approx(math.tanh(-reg.company("INTC").regions["china"]))
    assert intc.macro < nvda.macro < 0.0  # Intel sells more in China than Nvidia
    assert jpm.macro == 0.0  # no China revenue
    curbs = aggregate([doc("c", 0.0, tickers=(), events=(CHIP_CURBS,))], reg, AS_OF)
    ko_share = reg.company("KO").regions["china"] * CONFIG.off_sector
    assert trend(curbs, "INTC").macro == pytest.approx(math.tanh(-0.67 * 0.27))
    assert trend(curbs, "KO").macro == pytest.approx(math.tanh(-0.67 * ko_share))


def test_a_global_event_reaches_everyone(reg: Registry) -> None:
    hike = MacroEvent(kind="monetary_policy", severity="medium", direction=-1.0)
    trends = aggregate([doc("h", 0.0, tickers=(), events=(hike,))], reg, AS_OF)
    assert all(t.macro == pytest.approx(math.tanh(-0.67)) for t in trends if t.window == "1d")


# --------------------------------------------------------------------------- competitive


def test_competitive_propagation_sign_and_strength(reg: Registry) -> None:
    links = {k.ticker: k for k in reg.company("PEP").competitors}
    assert (links["KO"].relationship, links["KO"].strength) == ("direct", 0.9)
    supplier = {k.ticker: k for k in reg.company("WMT").competitors}["KO"]
    assert supplier.relationship == "supplier"

    trends = aggregate([doc("k", -0.8, tickers=("KO",))], reg, AS_OF)
    ko, pep, wmt = (trend(trends, t) for t in ("KO", "PEP", "WMT"))
    assert ko.company == pytest.approx(math.tanh(-0.8))
    # a direct rival's bad news is mildly good: -0.8 x -1 x 0.9
    assert pep.competitive == pytest.approx(math.tanh(0.72))
    assert pep.signal == pytest.approx(0.2 * math.tanh(0.72))
    assert (pep.company, pep.driver) == (0.0, "competitive")
    assert pep.evidence[0].via == "KO"
    # a supplier's bad news is bad: -0.8 x +1 x strength
    assert wmt.competitive == pytest.approx(math.tanh(-0.8 * supplier.strength))
    assert trend(trends, "JPM").competitive == 0.0


def test_news_naming_both_companies_is_company_news(reg: Registry) -> None:
    t = trend(aggregate([doc("b", -0.8, tickers=("KO", "PEP"))], reg, AS_OF), "PEP")
    assert t.company == pytest.approx(math.tanh(-0.8))
    assert t.competitive == 0.0


# --------------------------------------------------------------------------- switches


@pytest.mark.parametrize("layer", LAYERS)
def test_a_disabled_layer_reports_and_contributes_zero(reg: Registry, layer: str) -> None:
    news = [
        doc("a", 0.7, tickers=("KO",)),
        doc("o", 0.0, tickers=(), events=(OIL_UP,), title="oil jumps"),
    ]
    on = aggregate(news, reg, AS_OF)
    off = aggregate(news, reg, AS_OF, msgspec.structs.replace(CONFIG, **{f"{layer}_layer": False}))
    assert any(getattr(t, layer) != 0.0 for t in on)
    for a, b in zip(on, off, strict=True):
        assert getattr(b, layer) == 0.0
        assert all(e.layer != layer for e in b.evidence)
        for other in LAYERS:
            if other != layer:
                assert getattr(b, other) == getattr(a, other)


def test_config_from_settings() -> None:
    cfg = AggregationConfig.from_settings(
        SimpleNamespace(
            intel_macro_layer=False, intel_macro_weight=0.5, intel_competitive_weight=0.1
        )
    )
    assert (cfg.company_layer, cfg.macro_layer, cfg.competitive_layer) == (True, False, True)
    assert (cfg.company_weight, cfg.macro_weight, cfg.competitive_weight) == (1.0, 0.5, 0.1)
    assert AggregationConfig.from_settings(object()) == AggregationConfig()
    assert AggregationConfig.from_settings(object(), top_evidence=2).top_evidence == 2
    with pytest.raises(ValueError, match="half-life"):
        AggregationConfig(windows=("1d",), half_life_ns={"7d": DAY_NS})


# --------------------------------------------------------------------------- contradiction


def test_contradiction_on_balanced_strong_evidence(reg: Registry) -> None:
    split = [doc("p", 0.8), doc("n", -0.8)]
    agreed = [doc("p", 0.8), doc("q", 0.8)]
    t = trend(aggregate(split, reg, AS_OF), "AAPL")
    one_sided = trend(aggregate(agreed, reg, AS_OF), "AAPL")
    assert t.contradiction and t.contradiction_score == pytest.approx(1.0)
    assert t.signal == pytest.approx(0.0, abs=1e-12)
    assert not one_sided.contradiction and one_sided.contradiction_score == 0.0
    assert t.confidence < one_sided.confidence


def test_no_contradiction_when_one_side_is_weak_or_small(reg: Registry) -> None:
    faint = trend(aggregate([doc("p", 0.05), doc("n", -0.05)], reg, AS_OF), "AAPL")
    assert not faint.contradiction  # both below the mass threshold
    assert faint.contradiction_score < 1.0
    lopsided = trend(aggregate([doc("p", 0.8), doc("q", 0.8), doc("n", -0.3)], reg, AS_OF), "AAPL")
    assert not lopsided.contradiction  # the minority holds under 30%


def test_more_agreeing_documents_raise_confidence(reg: Registry) -> None:
    confidences = [
        trend(aggregate([doc(f"d{i}", 0.6) for i in range(n)], reg, AS_OF), "AAPL").confidence
        for n in (1, 2, 5)
    ]
    assert confidences == sorted(confidences) and confidences[0] < confidences[-1]


# --------------------------------------------------------------------------- evidence and tables


def test_evidence_ranked_by_contribution_ties_by_doc_id(reg: Registry) -> None:
    news = [doc("c", 0.3), doc("b", 0.9), doc("a", 0.3), doc("d", -0.5)]
    t = trend(aggregate(news, reg, AS_OF, AggregationConfig(top_evidence=3)), "AAPL")
    assert [e.doc_id for e in t.evidence] == ["b", "d", "a"]
    assert t.documents == 4


def test_tables(reg: Registry) -> None:
    news = [
        doc("a", 0.5),
        doc("k", -0.8, tickers=("KO",)),
        doc("o", 0.0, tickers=(), events=(OIL_UP,)),
    ]
    trends = aggregate(news, reg, AS_OF)
    table = trends_table(trends)
    assert table.schema == TRENDS_SCHEMA
    assert table.num_rows == len(trends)
    (pep_1d,) = [r for r in table.to_pylist() if r["ticker"] == "PEP" and r["window"] == "1d"]
    assert pep_1d["driver"] == "mixed"  # competitive (KO) and macro (oil)
    ev = evidence_table(trends)
    assert ev.schema == EVIDENCE_SCHEMA
    assert ev.num_rows == sum(len(t.evidence) for t in trends)
    pep = [r for r in ev.to_pylist() if r["ticker"] == "PEP" and r["window"] == "1d"]
    assert [r["rank"] for r in pep] == [1, 2]
    assert {r["via"] for r in pep} == {"KO", "commodity_supply"}
    assert all(r["as_of"] == AS_OF for r in pep)
    assert trends_table([]).schema == TRENDS_SCHEMA and evidence_table([]).num_rows == 0


def test_scored_from_document() -> None:
    d = Document(
        doc_id="x", source_id="wire", source_type="rss", url="https://a/1",
        canonical_url="https://a/canonical", title="T", fetched_at=5, tickers=["AAPL"],
        quality="high", content_sha256="abc",
    )  # fmt: skip
    x = msgspec.structs.replace(ext(0.2), tickers=["AAPL", "MSFT"])
    s = Scored.from_document(d, x, 0.8)
    assert (s.url, s.published_at, s.tickers, s.fingerprint) == (
        "https://a/canonical", 5, ["AAPL", "MSFT"], "abc",
    )  # fmt: skip
    with pytest.raises(ValueError, match="credibility"):
        Scored.from_document(d, x, 1.5)


# --------------------------------------------------------------------------- properties

TICKERS = ("AAPL", "MSFT", "KO", "PEP", "XOM", "BA", "NVDA", "WMT")
EVENTS = (OIL_UP, JET_FUEL_UP, CHINA_RECESSION, CHIP_CURBS)


@st.composite
def documents(draw: st.DrawFn, min_size: int = 0, max_size: int = 8) -> list[Scored]:
    """Distinct stories: unique ids and titles with no words in common."""
    n = draw(st.integers(min_size, max_size))
    out = []
    for i in range(n):
        out.append(
            doc(
                f"d{i}",
                draw(st.floats(-1, 1)),
                tickers=tuple(draw(st.lists(st.sampled_from(TICKERS), max_size=2, unique=True))),
                age=draw(st.integers(-HOUR_NS, 100 * DAY_NS)),
                credibility=draw(st.floats(0, 1)),
                confidence=draw(st.floats(0, 1)),
                impact=draw(st.sampled_from(IMPACTS)),
                events=tuple(draw(st.lists(st.sampled_from(EVENTS), max_size=2))),
                source=draw(st.sampled_from(("wire", "blog", "feed"))),
                title=f"s{i}a s{i}b s{i}c",
            )
        )
    return out


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(documents())
def test_signal_and_confidence_always_in_range(news: list[Scored]) -> None:
    for t in aggregate(news, registry(), AS_OF):
        for layer in ("signal", *LAYERS):
            assert -1.0 <= getattr(t, layer) <= 1.0
        assert 0.0 <= t.confidence <= 1.0 and 0.0 <= t.contradiction_score <= 1.0
        assert t.sources <= t.documents
        strengths = [abs(e.contribution) for e in t.evidence]
        assert (
            strengths == sorted(strengths, reverse=True) and len(strengths) <= CONFIG.top_evidence
        )


@PROPERTY
@given(documents(), st.randoms(use_true_random=False))
def test_independent_of_input_order(news: list[Scored], rnd: random.Random) -> None:
    shuffled = list(news)
    rnd.shuffle(shuffled)
    assert aggregate(shuffled, registry(), AS_OF) == aggregate(news, registry(), AS_OF)


@PROPERTY
@given(
    documents(),
    st.floats(0.01, 1),
    st.integers(0, 100 * DAY_NS),
    st.floats(0.01, 1),
)
def test_a_positive_document_never_lowers_the_company_layer(
    news: list[Scored], sentiment: float, age: int, credibility: float
) -> None:
    extra = doc("extra", sentiment, tickers=("AAPL",), age=age, credibility=credibility,
                title="extra story words")  # fmt: skip
    before = [t for t in aggregate(news, registry(), AS_OF) if t.ticker == "AAPL"]
    after = [t for t in aggregate([*news, extra], registry(), AS_OF) if t.ticker == "AAPL"]
    for b, a in zip(before, after, strict=True):
        assert a.company >= b.company


@PROPERTY
@given(documents(), st.sampled_from(WINDOWS), st.floats(-1, 1))
def test_a_document_older_than_a_window_does_not_affect_it(
    news: list[Scored], window: Window, sentiment: float
) -> None:
    old = doc("old", sentiment, tickers=TICKERS[:3], age=WINDOW_NS[window] + 1,
              events=(OIL_UP,), title=news[0].title if news else "old")  # fmt: skip
    before = [t for t in aggregate(news, registry(), AS_OF) if t.window == window]
    after = [t for t in aggregate([*news, old], registry(), AS_OF) if t.window == window]
    assert after == before


@PROPERTY
@given(documents(), st.sampled_from(LAYERS))
def test_disabling_a_layer_zeroes_only_that_layer(news: list[Scored], layer: str) -> None:
    on = aggregate(news, registry(), AS_OF)
    off = aggregate(
        news, registry(), AS_OF, msgspec.structs.replace(CONFIG, **{f"{layer}_layer": False})
    )
    for a, b in zip(on, off, strict=True):
        assert getattr(b, layer) == 0.0
        assert all(getattr(a, o) == getattr(b, o) for o in LAYERS if o != layer)


@PROPERTY
@given(documents(), st.lists(st.integers(-2 * DAY_NS, 0), min_size=1, max_size=3))
def test_same_inputs_give_identical_tables(news: list[Scored], offsets: list[int]) -> None:
    as_ofs = [AS_OF + o for o in offsets]
    a = trend_history(news, registry(), as_ofs)
    b = trend_history(list(reversed(news)), registry(), list(reversed(as_ofs)))
    assert trends_table(a).equals(trends_table(b))
    assert evidence_table(a).equals(evidence_table(b))
