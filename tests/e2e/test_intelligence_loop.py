"""The intelligence loop end to end, over recorded sources on a local server.

Every registry provider points at a replay server that serves the real feeds
and filings of the shared data (CNBC, Seeking Alpha's AAPL feed, EDGAR's
latest filings and Tesla's submissions), our own fixtures (a newsroom feed
and Polygon-shaped news about Apple), and bad input: a malformed feed, a page
without text, non-UTF-8 bytes, a duplicate feed and a source that always
fails. The day's intelligence assets run through Dagster with the clock set
after that day's close; the next day's session is then simulated and landed.

Checked: documents, quarantine (with reasons), extractions, trends and
recommendations are in the lake; a company-driven recommendation reaches the
next session, where a following member decides to act, sends the order and
trades; macro-only or competitive-only views stay informational; running the
day again changes no lake table and sends nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from dagster import AssetSelection, DagsterInstance, materialize

from assets.platform.resources import PlatformResource
from deploy.recorded_http import ReplayServer, Response
from intelligence.registry import load_registry
from lake.reader import read_days
from orchestration.definitions import ALL_ASSETS, resources_for
from settings import Settings
from tests.support import sent_recommendations, short_calendar

pytestmark = pytest.mark.e2e

DAY, NEXT = date(2026, 3, 9), date(2026, 3, 10)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "intel"
SEC_UA = "marketlake-tests tests@example.com"
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}
INTEL = AssetSelection.groups("intelligence")
SESSION = AssetSelection.assets("simulated_session") | AssetSelection.groups("landing")


def _shared(rel: str) -> bytes:
    path = Settings().shared_data_dir / rel
    if not path.is_file():
        pytest.skip(f"shared data not found: {path} (set MARKETLAKE_SHARED_DATA_DIR)")
    return path.read_bytes()


def _polygon(request: Any) -> Response:
    """Polygon news: our Apple stories for AAPL, an empty page for anything else."""
    if "ticker=AAPL" in request.target:
        body = (FIXTURES / "polygon_news_aapl.json").read_bytes()
    else:
        body = json.dumps({"status": "OK", "count": 0, "results": []}).encode()
    return Response(200, body, {"Content-Type": "application/json"})


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    cnbc = _shared("news_feeds_rss/cnbc.xml")
    with ReplayServer() as srv:
        srv.add("/id/100727362/device/rss/rss.html", Response(200, cnbc, RSS))
        srv.add("/rss/RSSMarketsMain.xml", Response(200, cnbc, RSS))  # the same stories again
        srv.add(
            "/api/sa/combined/AAPL.xml",
            Response(200, _shared("news_feeds_rss/seekingalpha.xml"), RSS),
        )
        srv.add(
            "/cgi-bin/browse-edgar",
            Response(
                200,
                _shared("sec_edgar/edgar_getcurrent_atom_2025-12-12.xml"),
                {"Content-Type": "application/atom+xml"},
            ),
        )
        srv.add(
            "/submissions/CIK0001318605.json",
            Response(
                200,
                _shared("sec_edgar/submissions_TSLA_CIK0001318605_2022-11-30.json"),
                {"Content-Type": "application/json"},
            ),
        )
        srv.add(
            "/newsroom/rss-feed.rss", Response(200, (FIXTURES / "newsroom.rss").read_bytes(), RSS)
        )
        srv.add("/v2/reference/news", _polygon)
        srv.add("/feed/", Response(200, (FIXTURES / "malformed.rss").read_bytes(), RSS))
        srv.add(
            "/",
            Response(
                200,
                (FIXTURES / "no_text.html").read_bytes(),
                {"Content-Type": "text/html; charset=utf-8"},
            ),
        )
        srv.add(
            "/feeds/press_all.xml",
            Response(
                200,
                b'<?xml version="1.0" encoding="utf-8"?><rss><channel><item>'
                b"<title>Caf\xe9 \xff\xfe rates</title></item></channel></rss>",
                RSS,
            ),
        )
        srv.add("/rss/press.html", Response(500, b"internal error", {"Content-Type": "text/plain"}))
        yield srv  # fmt: skip


@pytest.fixture
def env(tmp_path, monkeypatch, server: ReplayServer) -> Path:
    bases = dict.fromkeys(load_registry().base_urls, server.base_url)
    monkeypatch.setenv("MARKETLAKE_CALENDAR_TOML", str(short_calendar(tmp_path)))
    monkeypatch.setenv("MARKETLAKE_INTEL_BASE_URLS", json.dumps(bases))
    monkeypatch.setenv("MARKETLAKE_SEC_USER_AGENT", SEC_UA)
    monkeypatch.setenv("MARKETLAKE_SEC_ARCHIVES_BASE", server.base_url)
    monkeypatch.setenv("MARKETLAKE_POLYGON_API_KEY", "test-key")
    monkeypatch.setenv("MARKETLAKE_INGEST_TIMEOUT_S", "3")
    # the local server has no provider's limits (Polygon's free tier allows 5 calls a minute)
    rates = dict.fromkeys(["rss", "news_api", "market_api", "sec_edgar", "web"], 200.0)
    monkeypatch.setenv("MARKETLAKE_INGEST_RATE_LIMITS", json.dumps(rates))
    return tmp_path / "data"


def _run(platform: PlatformResource, selection: AssetSelection, day: date) -> Any:
    result = materialize(
        ALL_ASSETS, selection=selection, partition_key=day.isoformat(),
        resources=resources_for(platform), instance=DagsterInstance.ephemeral(),
    )  # fmt: skip
    assert result.success
    return result


def _rows(platform: PlatformResource, identifier: str, day: date = DAY) -> list[dict[str, Any]]:
    return read_days(platform.catalog(), identifier, day).to_pylist()


def _snapshot(platform: PlatformResource) -> dict[str, list[str]]:
    tables = [
        "raw.fetches",
        "intel.documents",
        "intel.quarantine",
        "intel.extractions",
        "intel.trends",
        "intel.trend_evidence",
        "intel.recommendations",
        "intel.companies",
    ]
    out = {}
    for t in tables:
        tbl: pa.Table = read_days(platform.catalog(), t, DAY)
        out[t] = sorted(map(str, tbl.to_pylist()))
    return out


def test_recorded_news_becomes_a_recommendation_an_order_and_a_trade(env: Path, server) -> None:
    evening = PlatformResource(data_dir=str(env), now="2026-03-09T18:00:00+01:00")
    result = _run(evening, INTEL, DAY)

    # ingestion: every attempt recorded, the always-failing source retried with its reason
    fetches = _rows(evening, "raw.fetches")
    by_source = {f["source_id"]: f for f in fetches}
    ecb = by_source["ecb-press"]
    assert ecb["status"] == 500 and ecb["attempts"] > 1 and "500" in ecb["error"]
    assert by_source["cnbc-world-top-news"]["status"] == 200
    assert by_source["cnbc-world-top-news"]["body"]  # the payload is kept
    sec = [f for f in fetches if f["source_type"] == "sec_edgar"]
    assert sec and all(r["status"] is not None for r in sec)
    assert all(req.headers.get("user-agent") == SEC_UA
               for req in server.requests("/cgi-bin/browse-edgar"))  # fmt: skip
    # parsing: documents with mentions; bad input quarantined with a reason, not dropped
    docs = _rows(evening, "intel.documents")
    assert len(docs) >= 40
    assert len({d["doc_id"] for d in docs}) == len(docs)  # the duplicate feed counted once
    assert any("AAPL" in d["tickers"] for d in docs)
    reasons = {q["source_id"]: q["reason"] for q in _rows(evening, "intel.quarantine")}
    assert reasons["msft-official-blog"] == "malformed_xml"
    assert reasons["tsla-investor-relations"] == "empty_text"
    assert reasons["fed-press-releases"] in {"not_utf8", "bad_encoding"}
    # extraction: every readable document, none of the low-quality ones
    extractions = _rows(evening, "intel.extractions")
    readable = {d["doc_id"] for d in docs if d["quality"] != "low"}
    assert {e["doc_id"] for e in extractions} == readable
    assert all(e["extractor"] == "lexicon" for e in extractions)
    assert any(json.loads(e["macro_events"]) for e in extractions)  # oil, war, tariffs ...
    # aggregation: every company and window, as of the day's close
    trends = _rows(evening, "intel.trends")
    assert len(trends) == 24 * 5
    _, close_ns = evening.calendar().session_bounds(DAY)
    assert {t["as_of"] for t in trends} == {close_ns}
    aapl = {t["window"]: t for t in trends if t["ticker"] == "AAPL"}
    assert aapl["7d"]["signal"] > 0 and aapl["7d"]["company"] > 0
    assert _rows(evening, "intel.trend_evidence")
    # recommendations: Apple to buy, eligible for paper trading; macro-only stays informational
    recs = {r["symbol"]: r for r in _rows(evening, "intel.recommendations")}
    apple = recs["AAPL"]
    assert apple["action"] == "buy" and apple["mode"] in {"paper_eligible", "live_eligible"}
    assert apple["evidence"] and "Apple" in apple["thesis"]
    for r in recs.values():
        if r["driver"] in {"macro", "competitive"}:
            assert r["mode"] == "informational" and r["reason"], r
    meta = result.asset_materializations_for_node("intel__recommendations")[0].metadata
    assert meta["session"].value == NEXT.isoformat() and meta["published"].value == len(recs)

    # the next session: the recommendation is on its topic before the open ...
    sent = sent_recommendations(evening, NEXT)
    assert {r.rec_id for r in sent} == {r["rec_id"] for r in recs.values()}
    # ... a following member acts on it, the order trades, and every decision is landed
    next_evening = PlatformResource(data_dir=str(env), now="2026-03-10T18:00:00+01:00")
    _run(next_evening, SESSION, NEXT)
    decisions = _rows(next_evening, "raw.decisions", NEXT)
    acts = [d for d in decisions if d["outcome"] == "act" and d["rec_id"] == apple["rec_id"]]
    assert acts, decisions
    skips = [d for d in decisions if d["outcome"] == "skip"]
    assert all(d["reason"] for d in skips)
    orders = {o["order_id"]: o for o in _rows(next_evening, "raw.orders", NEXT)}
    act = acts[0]
    assert orders[act["order_id"]]["member"] == act["member"]
    assert orders[act["order_id"]]["symbol"] == "AAPL" and orders[act["order_id"]]["side"] == "buy"
    trades = _rows(next_evening, "raw.trades", NEXT)
    assert any(t["buy_order_id"] == act["order_id"] and t["buy_member"] == act["member"]
               for t in trades)  # fmt: skip

    # running the day again: the lake is unchanged and the session gets nothing twice
    before = _snapshot(evening)
    _run(evening, INTEL, DAY)
    assert _snapshot(evening) == before
    log = evening.session_log(NEXT)
    try:
        again = sum(1 for p in sorted(log.end_offsets("recommendations"))
                    for _ in log.read("recommendations", p))  # fmt: skip
    finally:
        log.close()
    assert again == len(sent)
