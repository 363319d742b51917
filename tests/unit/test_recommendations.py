"""Recommendations from trends: action, confidence, mode, the forced-informational rule, dedupe."""

from __future__ import annotations

from datetime import date

import msgspec
import pyarrow as pa
import pytest

from intelligence.aggregate.signals import Evidence, Trend
from intelligence.recommend.recommendations import (
    RecommendConfig,
    rec_id,
    recommend,
    recommendations_table,
)
from intelligence.schemas import RECOMMENDATIONS_SCHEMA
from streaming.events import Recommendation, decode, encode

pytestmark = pytest.mark.unit

AS_OF = 1_795_161_600_000_000_000  # 2026-11-20 07:00 UTC
DAY = date(2026, 11, 20)


def _ev(doc: str, contribution: float, layer: str = "company", via: str | None = None) -> Evidence:
    return Evidence(
        doc_id=doc, url=f"https://news.example/{doc}", title=f"Headline {doc}", layer=layer,
        contribution=contribution, published_at=AS_OF - 3_600_000_000_000, source_id="wire",
        via=via,
    )  # fmt: skip


def _trend(ticker: str, window: str, signal: float, **kw) -> Trend:
    fields = {
        "company": signal, "macro": 0.0, "competitive": 0.0, "confidence": 0.8,
        "contradiction": False, "contradiction_score": 0.0, "documents": 6, "sources": 4,
        "evidence": [], "as_of": AS_OF,
    }  # fmt: skip
    fields.update(kw)
    return Trend(ticker=ticker, window=window, signal=signal, **fields)


def _one(trends, **kw) -> Recommendation:
    (rec,) = recommend(trends, AS_OF, trading_day=DAY, **kw)
    return rec


def test_strong_company_trend_is_a_live_eligible_buy_with_confidence_from_both_windows():
    rec = _one(
        [_trend("AAPL", "7d", 0.4, confidence=0.8), _trend("AAPL", "1d", 0.6, confidence=0.85)]
    )
    # signal 0.6*0.4 + 0.4*0.6 = 0.48; trend confidence 0.6*0.8 + 0.4*0.85 = 0.82;
    # strength 0.48/0.5 = 0.96 -> confidence 0.82 * (0.5 + 0.48) = 0.8036
    assert (rec.action, rec.mode, rec.signal, rec.confidence) == (
        "buy",
        "live_eligible",
        0.48,
        0.8036,
    )
    assert (rec.window, rec.driver, rec.reason) == ("7d+1d", "company", "")
    assert rec.session_date == "2026-11-20" and rec.ts == AS_OF


def test_negative_signal_is_a_sell_and_medium_confidence_is_paper_eligible():
    rec = _one(
        [_trend("XOM", "7d", -0.3, confidence=0.6), _trend("XOM", "1d", -0.3, confidence=0.6)]
    )
    # strength 0.6 -> confidence 0.6 * 0.8 = 0.48: paper (>= 0.45), not live (< 0.70)
    assert (rec.action, rec.mode, rec.confidence) == ("sell", "paper_eligible", 0.48)


def test_few_sources_keep_a_confident_buy_off_live():
    rec = _one([_trend("AAPL", "7d", 0.6, sources=2), _trend("AAPL", "1d", 0.6, sources=2)])
    assert (rec.action, rec.mode) == ("buy", "paper_eligible")


def test_low_confidence_action_is_informational_with_the_reason():
    rec = _one(
        [_trend("AAPL", "7d", 0.2, confidence=0.5), _trend("AAPL", "1d", 0.2, confidence=0.5)]
    )
    # 0.5 * (0.5 + 0.5 * 0.4) = 0.35: acts (>= 0.35) but under the paper threshold
    assert (rec.action, rec.mode, rec.confidence, rec.reason) == (
        "buy", "informational", 0.35, "low_confidence",
    )  # fmt: skip


def test_weak_signal_is_hold_contradiction_and_thin_evidence_are_watch():
    weak = _one([_trend("KO", "7d", 0.05), _trend("KO", "1d", 0.1)])
    assert (weak.action, weak.mode, weak.reason) == ("hold", "informational", "weak_signal")
    flagged = _one([_trend("KO", "7d", 0.5, contradiction=True, contradiction_score=0.9)])
    assert (flagged.action, flagged.mode, flagged.reason) == (
        "watch",
        "informational",
        "contradiction",
    )
    opposite = _one([_trend("KO", "7d", 0.5), _trend("KO", "1d", -0.4)])
    assert (opposite.action, opposite.reason) == ("watch", "contradiction")
    thin = _one([_trend("KO", "7d", 0.6, documents=1, sources=1)])
    assert (thin.action, thin.mode, thin.reason) == ("watch", "informational", "thin_evidence")


def test_macro_only_shift_is_forced_informational_with_the_reason():
    base = _trend("XOM", "7d", 0.3, company=0.4)
    shift = _trend("XOM", "1d", 0.7, company=0.0, macro=0.9, confidence=0.95,
                   evidence=[_ev("opec", 0.6, "macro", via="oil_supply")])  # fmt: skip
    rec = _one([base, shift])
    assert rec.action == "buy" and rec.confidence >= 0.7  # would be live if company-driven
    assert rec.mode == "informational"
    assert rec.driver == "macro"
    assert rec.reason.startswith("forced_informational: 1d driven by macro only")
    assert "macro signals, not from the company" in rec.thesis
    assert "“Headline opec” (via oil_supply)" in rec.thesis


def test_competitive_only_shift_is_forced_informational_and_negligible_company_counts_as_none():
    # company share 0.05 / (0.05 + 0.9) < 0.10: negligible
    shift = _trend("AMD", "1d", -0.6, company=0.05, competitive=-0.9,
                   evidence=[_ev("nv", -0.5, "competitive", via="NVDA")])  # fmt: skip
    rec = _one([_trend("AMD", "7d", -0.5), shift])
    assert (rec.action, rec.mode, rec.driver) == ("sell", "informational", "competitive")
    assert "competitive only (company share 0.05 < 0.10)" in rec.reason


def test_company_share_above_negligible_is_not_forced():
    shift = _trend("AMD", "1d", 0.6, company=0.2, competitive=0.8)  # company share 0.2
    rec = _one([_trend("AMD", "7d", 0.5), shift])
    assert rec.mode == "paper_eligible"  # not company-led enough for live, but not forced
    assert rec.driver == "company+competitive" and rec.reason == ""


def test_thesis_names_signal_windows_driver_and_top_evidence_with_links():
    base = _trend("AAPL", "7d", 0.4, evidence=[_ev("a", 0.2), _ev("b", 0.5), _ev("c", 0.05)])
    shift = _trend("AAPL", "1d", 0.6, evidence=[_ev("d", 0.4), _ev("b", 0.3)])
    rec = _one([base, shift], config=RecommendConfig(max_evidence=3, thesis_titles=2))
    assert rec.evidence == [
        "https://news.example/b", "https://news.example/d", "https://news.example/a",
    ]  # fmt: skip
    assert "7d signal +0.40" in rec.thesis and "1d shift +0.60" in rec.thesis
    assert "driven by company" in rec.thesis
    assert "“Headline b”; “Headline d”" in rec.thesis and "Headline a" not in rec.thesis


def test_evidence_without_url_links_to_the_document_id():
    ev = Evidence(doc_id="doc-9", url="", title="", layer="company", contribution=0.5,
                  published_at=AS_OF, source_id="s")  # fmt: skip
    rec = _one([_trend("AAPL", "7d", 0.6, evidence=[ev])])
    assert rec.evidence == ["doc-9"] and "“doc-9”" in rec.thesis


def test_latest_trend_at_or_before_as_of_is_used_and_later_ones_ignored():
    old = _trend("AAPL", "7d", -0.6, as_of=AS_OF - 10)
    new = _trend("AAPL", "7d", 0.6, as_of=AS_OF - 5)
    future = _trend("AAPL", "7d", -0.9, as_of=AS_OF + 1)
    assert _one([new, future, old]).action == "buy"


def test_rec_id_is_stable_and_depends_on_ticker_day_action_and_mode():
    trends = [_trend("AAPL", "7d", 0.6), _trend("AAPL", "1d", 0.6)]
    first, again = _one(trends), _one(list(reversed(trends)))
    assert first.rec_id == again.rec_id == rec_id("AAPL", DAY, "buy", "live_eligible")
    assert len({
        rec_id("AAPL", DAY, "buy", "live_eligible"), rec_id("AAPL", DAY, "buy", "paper_eligible"),
        rec_id("AAPL", DAY, "sell", "live_eligible"), rec_id("MSFT", DAY, "buy", "live_eligible"),
        rec_id("AAPL", date(2026, 11, 23), "buy", "live_eligible"),
    }) == 5  # fmt: skip


def test_dedupe_against_the_most_recent_previous_recommendation_per_ticker():
    trends = [_trend("AAPL", "7d", 0.6), _trend("MSFT", "7d", -0.6)]
    first = recommend(trends, AS_OF, trading_day=DAY)
    assert [r.symbol for r in first] == ["AAPL", "MSFT"]
    assert recommend(trends, AS_OF + 1, previous=first, trading_day=DAY) == []
    # an older identical one does not count: the most recent (a sell) differs
    aapl = first[0]
    later_sell = msgspec.structs.replace(aapl, action="sell", ts=aapl.ts + 10)
    again = recommend(trends, AS_OF + 20, previous=[later_sell, *first], trading_day=DAY)
    assert [r.symbol for r in again] == ["AAPL"]
    # a change of mode is a new view: re-issued
    weaker = [_trend("AAPL", "7d", 0.6, sources=1), _trend("MSFT", "7d", -0.6)]
    changed = recommend(weaker, AS_OF + 1, previous=first, trading_day=DAY)
    assert [(r.symbol, r.mode) for r in changed] == [("AAPL", "paper_eligible")]


def test_one_recommendation_per_ticker_per_run_with_sectors():
    trends = [_trend("AAPL", "7d", 0.6), _trend("AAPL", "1d", 0.5), _trend("AAPL", "30d", -0.9)]
    recs = recommend(trends, AS_OF, trading_day=DAY, sectors={"AAPL": "Information Technology"})
    assert len(recs) == 1 and recs[0].sector == "Information Technology"


def test_event_round_trips_and_old_payloads_still_decode():
    rec = _one([_trend("AAPL", "7d", 0.6, evidence=[_ev("a", 0.5)])])
    assert decode(encode(rec)) == rec
    old = b'{"type":"recommendation","rec_id":"r","symbol":"AAPL","action":"buy",' \
          b'"confidence":0.7,"mode":"paper_eligible","ts":1}'  # fmt: skip
    legacy = decode(old)
    assert isinstance(legacy, Recommendation)
    assert (legacy.evidence, legacy.session_date, legacy.driver) == ([], None, "")


def test_recommendations_table_has_the_declared_schema():
    recs = recommend([_trend("AAPL", "7d", 0.6, evidence=[_ev("a", 0.5)]),
                      _trend("XOM", "7d", 0.02)], AS_OF, trading_day=DAY)  # fmt: skip
    table = recommendations_table(recs)
    assert table.schema == RECOMMENDATIONS_SCHEMA
    assert table.schema.field("ts").type == pa.int64()  # ns since the epoch, as in the lake
    assert table.schema.field("evidence").type == pa.list_(pa.string())
    rows = table.to_pylist()
    assert [(r["symbol"], r["action"], r["ts"]) for r in rows] == [
        ("AAPL", "buy", AS_OF), ("XOM", "hold", AS_OF),
    ]  # fmt: skip
    assert rows[0]["session_date"] == "2026-11-20"
    assert rows[0]["evidence"] == ["https://news.example/a"]
    assert [msgspec.convert(r, Recommendation) for r in rows] == recs
    assert recommendations_table([]).num_rows == 0
