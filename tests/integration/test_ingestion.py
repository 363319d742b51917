"""Ingestion over real sockets: real httpx against a local replay server.

Realistic payloads are read at test time from the shared public data (news
feeds, SEC EDGAR, intraday and daily bars turned into Polygon's aggregate
shape here); nothing of it is copied into the repository. Failure modes are
served by the replay server's scenarios. Backoff, rate limits and cool-downs
run on an injected clock whose ``sleep`` advances time instead of waiting,
except one test that waits out a real one-second Retry-After.
"""

from __future__ import annotations

import asyncio
import csv
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from deploy.recorded_http import ReplayServer, http_date, ok
from intelligence.documents import Fetched, SourceType
from intelligence.ingest.ingestion import (
    NS,
    Fetcher,
    IngestionConfig,
    RateLimit,
    SourceState,
    decode_states,
    due_sources,
    encode_states,
    follow_ups,
    is_due,
    parse_retry_after,
)
from intelligence.registry import REGISTRY_YML, Format, Registry, Source, load_registry
from tests.support import free_port

pytestmark = pytest.mark.integration

SEC_UA = "marketlake-test ops@example.com"
RSS = "application/rss+xml; charset=UTF-8"
ATOM = "application/atom+xml"
JSON = "application/json"
HTML = "text/html; charset=utf-8"
T0 = 1_792_567_680 * NS  # 2026-10-21T07:28:00Z
NEW_YORK = ZoneInfo("America/New_York")


class FakeTime:
    """A clock in ns whose ``sleep`` records the delay and moves time forward at once."""

    def __init__(self, start: int = T0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += int(seconds * NS)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * NS)


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as srv:
        yield srv


def _config(server: ReplayServer, **kw: Any) -> IngestionConfig:
    base: dict[str, Any] = {
        "sec_user_agent": SEC_UA,
        "polygon_api_key": "test-key",
        "sec_archives_base": server.base_url,
        "timeout_s": 2.0,
        "connect_timeout_s": 1.0,
        "max_attempts": 3,
        "backoff_initial_s": 0.5,
        "rate_limits": {},
    }
    return IngestionConfig(**(base | kw))


def _registry(server: ReplayServer) -> Registry:
    names = load_registry(REGISTRY_YML, tickers=None).base_urls
    return load_registry(base_urls=dict.fromkeys(names, server.base_url))


def _source(
    server: ReplayServer, target: str, source_type: SourceType = "rss", fmt: Format = "xml"
) -> Source:
    return Source(
        source_id=f"test{target.replace('/', '-')}",
        source_type=source_type,
        url=server.url(target),
        polling_interval_s=60,
        credibility=0.5,
        format=fmt,
    )


def _run(
    config: IngestionConfig,
    source: Source,
    state: SourceState | None = None,
    *,
    clock: FakeTime | None = None,
    params: dict[str, str] | None = None,
) -> tuple[Fetched, SourceState]:
    async def go() -> tuple[Fetched, SourceState]:
        kwargs: dict[str, Any] = {}
        if clock is not None:
            kwargs = {"clock": clock.clock, "sleep": clock.sleep}
        async with Fetcher(config, **kwargs) as fetcher:
            return await fetcher.fetch(source, state, params=params)

    return asyncio.run(go())


# --- realistic payloads from ../shared/data, shaped at test time ------------------------------


def _read(shared: Path, rel: str) -> bytes:
    path = shared / rel
    if not path.is_file():
        pytest.skip(f"{rel} not found under {shared}")
    return path.read_bytes()


def polygon_aggs(
    rows: list[dict[str, str]], ticker: str, *, date_key: str, tz: ZoneInfo, stamp_shift_s: int = 0
) -> bytes:
    """Bars (CSV rows, any order) as Polygon's ``/v2/aggs`` JSON: t in ms UTC, ascending.

    Polygon stamps a bar with its start; Alpha Vantage with its end, hence
    ``stamp_shift_s=-60`` for its one-minute bars.
    """
    results = []
    for r in rows:
        stamp = r[date_key]
        fmt = "%Y-%m-%d %H:%M:%S" if " " in stamp else "%Y-%m-%d"
        t = datetime.strptime(stamp, fmt).replace(tzinfo=tz)
        o, h, low, c = (float(r[k]) for k in ("open", "high", "low", "close"))
        results.append(
            {
                "v": float(r["volume"]),
                "vw": round((h + low + c) / 3, 4),
                "o": o,
                "c": c,
                "h": h,
                "l": low,
                "t": int((t.timestamp() + stamp_shift_s) * 1000),
                "n": 1,
            }
        )
    results.sort(key=lambda b: b["t"])
    return json.dumps(
        {
            "ticker": ticker,
            "queryCount": len(results),
            "resultsCount": len(results),
            "adjusted": True,
            "results": results,
            "status": "OK",
            "request_id": "replay",
            "count": len(results),
        }
    ).encode()


def polygon_news(feed: bytes, publisher: str, next_url: str | None) -> bytes:
    """An RSS feed's items as Polygon's ``/v2/reference/news`` JSON."""
    results = []
    for item in ET.fromstring(feed).iter("item"):
        published = parsedate_to_datetime(item.findtext("pubDate") or "")
        results.append(
            {
                "id": item.findtext("guid"),
                "publisher": {"name": publisher},
                "title": item.findtext("title"),
                "published_utc": published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "article_url": item.findtext("link"),
                "tickers": [c.text for c in item.findall("category") if c.get("type") == "symbol"],
            }
        )
    body: dict[str, Any] = {"results": results, "status": "OK", "count": len(results)}
    if next_url:
        body["next_url"] = next_url
    return json.dumps(body).encode()


def _items(feed: bytes) -> list[str]:
    return [i.findtext("guid") or "" for i in ET.fromstring(feed).iter("item")]


def _feed_with_items(feed: bytes, keep: slice) -> bytes:
    """The same RSS feed keeping only some of its items (for overlapping fetches)."""
    root = ET.fromstring(feed)
    channel = root.find("channel")
    assert channel is not None
    items = channel.findall("item")
    for item in items:
        channel.remove(item)
    for item in items[keep]:
        channel.append(item)
    return bytes(ET.tostring(root, xml_declaration=True, encoding="utf-8"))


# --- each adapter on real recorded payloads ---------------------------------------------------


def test_rss_adapter_fetches_real_feeds(server: ReplayServer, shared_data: Path) -> None:
    cnbc = _read(shared_data, "news_feeds_rss/cnbc.xml")
    sa = _read(shared_data, "news_feeds_rss/seekingalpha.xml")
    server.add("/id/100727362/device/rss/rss.html", ok(cnbc, RSS))
    server.add("/api/sa/combined/AAPL.xml", ok(sa, "text/xml"))
    reg = _registry(server)
    config = _config(server)
    for sid, body in (("cnbc-world-top-news", cnbc), ("aapl-seekingalpha", sa)):
        fetched, state = _run(config, reg.source(sid))
        assert fetched.error is None, fetched.error
        assert (fetched.status, fetched.attempts, fetched.body) == (200, 1, body)
        assert fetched.bytes == len(body) and fetched.sha256 == state.seen_sha256[-1]
        assert fetched.fetched_at > 0 and fetched.duration_ms >= 0
    sent = server.requests("/id/100727362/device/rss/rss.html")[0].headers
    assert "application/rss+xml" in sent["accept"] and sent["user-agent"].startswith("marketlake/")


def test_polygon_news_adapter_follows_next_url_on_its_own_host_only(
    server: ReplayServer, shared_data: Path
) -> None:
    feed = _read(shared_data, "news_feeds_rss/seekingalpha.xml")
    page1 = polygon_news(feed, "Seeking Alpha", server.url("/v2/reference/news?cursor=p2"))
    page2 = polygon_news(_feed_with_items(feed, slice(0, 2)), "Seeking Alpha", None)
    server.add("/v2/reference/news", ok(page1, JSON))
    server.add("/v2/reference/news?cursor=p2", ok(page2, JSON))
    reg = _registry(server)
    config = _config(server)
    source = reg.source("aapl-polygon-news")
    fetched, _ = _run(config, source)
    assert fetched.error is None and fetched.status == 200
    results = json.loads(fetched.body)["results"]
    assert len(results) == 20 and "AAPL" in results[0]["tickers"]
    req = server.requests("/v2/reference/news")[0]
    assert req.target.startswith("/v2/reference/news?ticker=AAPL&")
    assert req.headers["authorization"] == "Bearer test-key"
    assert "test-key" not in fetched.url  # the key never lands in a stored URL
    (nxt,) = follow_ups(source, fetched, config)
    assert nxt == server.url("/v2/reference/news?cursor=p2")

    async def second() -> Fetched:
        async with Fetcher(config) as f:
            return (await f.fetch_url(source, nxt))[0]

    assert len(json.loads(asyncio.run(second()).body)["results"]) == 2
    foreign = msgspec.structs.replace(
        fetched, body=polygon_news(feed, "x", "https://evil.example/v2/reference/news")
    )
    assert follow_ups(source, foreign, config) == []
    assert _run(msgspec.structs.replace(config, polygon_api_key=None), source)[0].error == (
        "config: polygon_api_key is not set"
    )


def test_polygon_market_adapter_on_real_intraday_and_daily_bars(
    server: ReplayServer, shared_data: Path
) -> None:
    text = _read(shared_data, "intraday_1min_alphavantage_2019/AAPL_1min.csv").decode()
    rows = [r for r in csv.DictReader(text.splitlines()) if r["datetime"].startswith("2019-02-11")]
    server.add(
        "/v2/aggs/ticker/AAPL/range/1/minute/2019-02-11/2019-02-11",
        ok(polygon_aggs(rows, "AAPL", date_key="datetime", tz=NEW_YORK, stamp_shift_s=-60), JSON),
    )
    reg = _registry(server)
    fetched, _ = _run(
        _config(server),
        reg.source("aapl-polygon-aggs-1m"),
        params={"from": "2019-02-11", "to": "2019-02-11"},
    )
    assert fetched.error is None, fetched.error
    assert fetched.url.startswith(
        server.url("/v2/aggs/ticker/AAPL/range/1/minute/2019-02-11/2019-02-11?")
    )
    bars = json.loads(fetched.body)["results"]
    assert 385 <= len(bars) <= 391
    first = datetime.fromtimestamp(bars[0]["t"] / 1000, UTC)
    assert first == datetime(2019, 2, 11, 14, 30, tzinfo=UTC)  # 09:30 New York
    assert all(b["l"] <= min(b["o"], b["c"]) <= max(b["o"], b["c"]) <= b["h"] for b in bars)

    daily = _read(shared_data, "daily_ohlcv/mag7_yfinance_2013_2023/MSFT.csv").decode()
    drows = [
        {k.lower(): v for k, v in r.items()}
        for r in csv.DictReader(daily.splitlines())
        if r["Date"].startswith("2023-12")
    ]
    target = "/v2/aggs/ticker/MSFT/range/1/day/2023-12-01/2023-12-29"
    server.add(target, ok(polygon_aggs(drows, "MSFT", date_key="date", tz=NEW_YORK), JSON))
    src = Source(
        source_id="msft-daily",
        source_type="market_api",
        url=server.url("/v2/aggs/ticker/MSFT/range/1/day/{from}/{to}"),
        polling_interval_s=86400,
        credibility=0.9,
        format="json",
    )
    fetched, _ = _run(_config(server), src, params={"from": "2023-12-01", "to": "2023-12-29"})
    assert fetched.error is None and len(json.loads(fetched.body)["results"]) == len(drows) == 20
    missing, _ = _run(_config(server), src, params={"from": "2023-12-01"})
    assert missing.attempts == 0 and missing.error is not None
    assert missing.error.startswith("config: missing parameter") and "{to}" in missing.error


def test_sec_adapter_sends_the_required_user_agent(server: ReplayServer, shared_data: Path) -> None:
    submissions = _read(shared_data, "sec_edgar/submissions_TSLA_CIK0001318605_2022-11-30.json")
    atom = _read(shared_data, "sec_edgar/edgar_getcurrent_atom_2025-12-12.xml")
    server.add("/submissions/CIK0001318605.json", ok(submissions, JSON))
    server.add("/cgi-bin/browse-edgar", ok(atom, "application/atom+xml; charset=ISO-8859-1"))
    reg = _registry(server)
    config = _config(server)

    tsla = reg.source("tsla-sec-submissions")
    fetched, _ = _run(config, tsla)
    assert fetched.error is None and fetched.body == submissions
    assert server.requests("/submissions/CIK0001318605.json")[0].headers["user-agent"] == SEC_UA
    docs = follow_ups(tsla, fetched, config, limit=5)
    assert len(docs) == 5
    assert all(d.startswith(server.url("/Archives/edgar/data/1318605/")) for d in docs)
    recent = json.loads(submissions)["filings"]["recent"]
    i = next(i for i, f in enumerate(recent["form"]) if f in ("8-K", "10-K", "10-Q"))
    acc = recent["accessionNumber"][i].replace("-", "")
    assert docs[0] == server.url(
        f"/Archives/edgar/data/1318605/{acc}/{recent['primaryDocument'][i]}"
    )

    doc_path = docs[0].removeprefix(server.base_url)
    server.add(
        doc_path, ok(b"<html><body><p>Tesla, Inc. quarterly report.</p></body></html>", HTML)
    )

    async def document(fmt: Format | None) -> Fetched:
        async with Fetcher(config) as f:
            return (await f.fetch_url(tsla, docs[0], fmt=fmt))[0]

    # The submissions source expects JSON; a filing document is HTML or text,
    # so a follow-up is fetched with the format it has ("any").
    wrong = asyncio.run(document(None))
    assert wrong.error is not None and wrong.error.startswith("wrong_content_type")
    doc = asyncio.run(document("any"))
    assert doc.error is None and doc.body.startswith(b"<html>")
    assert {r.headers["user-agent"] for r in server.requests(doc_path)} == {SEC_UA}

    latest = reg.source("sec-latest-filings")
    fetched, _ = _run(config, latest)
    assert fetched.error is None and fetched.body == atom  # ISO-8859-1 bytes kept as sent
    assert server.requests("/cgi-bin/browse-edgar")[0].target == (
        "/cgi-bin/browse-edgar?action=getcurrent&output=atom"
    )
    entries = follow_ups(latest, fetched, config, limit=100)
    assert 40 <= len(entries) <= 100 and len(set(entries)) == len(entries)
    assert entries[0] == server.url(
        "/Archives/edgar/data/2063236/000206323625000004/0002063236-25-000004-index.htm"
    )

    anonymous = msgspec.structs.replace(config, sec_user_agent="marketlake")
    before = len(server.requests())
    refused, state = _run(anonymous, latest)
    assert refused.attempts == 0 and refused.error is not None
    assert "sec_user_agent must be '<app> <contact email>'" in refused.error
    assert len(server.requests()) == before and state.consecutive_failures == 1


def test_web_adapter_fetches_a_page(server: ReplayServer) -> None:
    page = (
        b"<!doctype html><html><head><title>Tesla IR</title></head><body><h1>Q3</h1></body></html>"
    )
    server.add("/", ok(page, HTML))
    fetched, _ = _run(_config(server), _registry(server).source("tsla-investor-relations"))
    assert fetched.error is None and fetched.body == page and fetched.content_type == HTML
    assert server.requests("/")[0].headers["accept"].startswith("text/html")


# --- failure modes: each ends in a Fetched with the right status, error and attempts ----------


def test_429_with_retry_after_seconds_then_200(server: ReplayServer) -> None:
    server.retry_after_then_ok("/feed", b"<rss/>", RSS, retry_after="7")
    clock = FakeTime()
    fetched, state = _run(_config(server), _source(server, "/feed"), clock=clock)
    assert (fetched.status, fetched.attempts, fetched.error) == (200, 2, None)
    assert clock.sleeps == [7.0]  # the server's delay, not our 0.5 s backoff
    assert state.consecutive_failures == 0 and state.skip_until is None


def test_503_with_retry_after_http_date_then_200(server: ReplayServer) -> None:
    when = http_date(T0 / NS + 3)
    server.retry_after_then_ok("/feed", b"<rss/>", RSS, retry_after=when, status=503)
    clock = FakeTime()
    fetched, _ = _run(_config(server), _source(server, "/feed"), clock=clock)
    assert (fetched.status, fetched.attempts) == (200, 2)
    assert clock.sleeps == [3.0]


def test_retry_after_is_honoured_in_real_time(server: ReplayServer) -> None:
    server.retry_after_then_ok("/feed", b"<rss/>", RSS, retry_after="1")
    fetched, _ = _run(_config(server), _source(server, "/feed"))
    first, second = server.requests("/feed")
    assert fetched.status == 200 and fetched.attempts == 2
    assert second.at - first.at >= 0.99
    assert fetched.duration_ms >= 990


def test_retry_after_beyond_the_limit_parks_the_source(server: ReplayServer) -> None:
    server.retry_after_then_ok("/feed", b"<rss/>", RSS, retry_after="3600")
    clock = FakeTime()
    config = _config(server, max_retry_after_s=60)
    source = _source(server, "/feed")
    fetched, state = _run(config, source, clock=clock)
    assert (fetched.status, fetched.attempts) == (429, 1)
    assert fetched.error == "http_429: retry-after 3600s exceeds the limit"
    assert clock.sleeps == [] and state.skip_until == T0 + 3600 * NS
    skipped, _ = _run(config, source, state, clock=clock)
    assert (
        skipped.attempts == 0 and skipped.error is not None and skipped.error.startswith("skipped")
    )
    assert len(server.requests("/feed")) == 1


def test_5xx_then_200_with_exponential_backoff(server: ReplayServer) -> None:
    server.errors_then_ok("/feed", b"<rss/>", RSS, statuses=(500, 502))
    clock = FakeTime()
    fetched, _ = _run(_config(server), _source(server, "/feed"), clock=clock)
    assert (fetched.status, fetched.attempts, fetched.error) == (200, 3, None)
    assert clock.sleeps == [0.5, 1.0]


def test_a_source_that_always_fails(server: ReplayServer) -> None:
    server.always_fail("/dead", 500)
    clock = FakeTime()
    fetched, state = _run(_config(server), _source(server, "/dead"), clock=clock)
    assert (fetched.status, fetched.attempts, fetched.error) == (500, 3, "http_500")
    assert fetched.body == b"" and fetched.sha256 is None
    assert len(server.requests("/dead")) == 3 and state.consecutive_failures == 1


def test_a_client_error_is_not_retried(server: ReplayServer) -> None:
    server.always_fail("/gone", 404)
    fetched, _ = _run(_config(server), _source(server, "/gone"), clock=FakeTime())
    assert (fetched.status, fetched.attempts, fetched.error) == (404, 1, "http_404")


def test_timeout(server: ReplayServer) -> None:
    server.slow("/slow", delay_s=3.0)
    config = _config(server, timeout_s=0.3, max_attempts=2)
    fetched, _ = _run(config, _source(server, "/slow", "web", "any"), clock=FakeTime())
    assert fetched.status is None and fetched.attempts == 2
    assert fetched.error == "timeout: ReadTimeout"


def test_a_server_dripping_bytes_hits_the_total_timeout(server: ReplayServer) -> None:
    server.slow("/drip", delay_s=3.0)
    config = _config(server, timeout_s=5.0, total_timeout_s=0.3, max_attempts=1)
    fetched, _ = _run(config, _source(server, "/drip", "web", "any"), clock=FakeTime())
    assert fetched.status is None and fetched.attempts == 1
    assert fetched.error == "timeout: no complete response in 0.3s"


def test_connection_refused() -> None:
    source = Source(
        source_id="nowhere",
        source_type="web",
        url=f"http://127.0.0.1:{free_port()}/",
        polling_interval_s=60,
        credibility=0.5,
        format="html",
    )
    config = IngestionConfig(max_attempts=2, backoff_initial_s=0.01, rate_limits={})
    fetched, _ = _run(config, source, clock=FakeTime())
    assert fetched.status is None and fetched.attempts == 2
    assert fetched.error is not None and fetched.error.startswith("connect: ConnectError")


def test_truncated_body(server: ReplayServer, shared_data: Path) -> None:
    cnbc = _read(shared_data, "news_feeds_rss/cnbc.xml")
    server.truncated("/cut", cnbc[:4000], RSS, claimed=len(cnbc))
    fetched, _ = _run(_config(server), _source(server, "/cut"), clock=FakeTime())
    assert fetched.status == 200 and fetched.attempts == 3
    assert fetched.error is not None and fetched.error.startswith("truncated: ")
    assert fetched.body == b"" and fetched.sha256 is None


def test_wrong_content_type_keeps_the_body_for_quarantine(server: ReplayServer) -> None:
    server.wrong_content_type("/feed")
    fetched, state = _run(_config(server), _source(server, "/feed"), clock=FakeTime())
    assert (fetched.status, fetched.attempts) == (200, 1)
    assert fetched.error == "wrong_content_type: 'text/html; charset=utf-8', expected xml"
    assert fetched.body.startswith(b"<html>") and fetched.sha256 is not None
    assert state.consecutive_failures == 1 and state.seen_sha256 == ()


def test_body_size_guard(server: ReplayServer, shared_data: Path) -> None:
    cnbc = _read(shared_data, "news_feeds_rss/cnbc.xml")
    server.add("/big", ok(cnbc, RSS))
    fetched, _ = _run(
        _config(server, max_body_bytes=1024), _source(server, "/big"), clock=FakeTime()
    )
    assert fetched.attempts == 1 and fetched.body == b""
    assert fetched.error == f"too_large: content-length {len(cnbc)} exceeds 1024 bytes"


def test_non_utf8_bytes_are_kept_byte_for_byte(server: ReplayServer) -> None:
    body = b'<?xml version="1.0" encoding="utf-8"?><rss><channel><item><title>Caf\xe9 \xff\xfe</title></item></channel></rss>'
    server.add("/latin", ok(body, RSS))
    fetched, _ = _run(_config(server), _source(server, "/latin"), clock=FakeTime())
    assert fetched.error is None and fetched.body == body  # decoding is parsing's call
    with pytest.raises(UnicodeDecodeError):
        fetched.body.decode("utf-8")


# --- conditional requests, dedupe, failure backoff, rate limits -------------------------------


def test_etag_gives_a_304_on_the_next_fetch(server: ReplayServer, shared_data: Path) -> None:
    cnbc = _read(shared_data, "news_feeds_rss/cnbc.xml")
    server.conditional("/feed", cnbc, RSS, etag='"abc"', last_modified=None)
    config, source, clock = _config(server), _source(server, "/feed"), FakeTime()
    first, state = _run(config, source, clock=clock)
    assert first.status == 200 and first.etag == '"abc"' and state.etag == '"abc"'
    second, state2 = _run(config, source, state, clock=clock)
    assert (second.status, second.not_modified, second.error, second.body) == (304, True, None, b"")
    assert server.requests("/feed")[1].headers["if-none-match"] == '"abc"'
    assert "if-none-match" not in server.requests("/feed")[0].headers
    assert state2.etag == '"abc"' and state2.seen_sha256 == state.seen_sha256


def test_last_modified_gives_a_304_on_the_next_fetch(server: ReplayServer) -> None:
    lm = "Sun, 08 Mar 2026 22:16:00 GMT"
    server.conditional("/feed", b"<rss/>", RSS, etag=None, last_modified=lm)
    config, source = _config(server), _source(server, "/feed")
    _, state = _run(config, source, clock=FakeTime())
    assert state.last_modified == lm
    second, _ = _run(config, source, state, clock=FakeTime())
    assert second.not_modified and second.status == 304
    assert server.requests("/feed")[1].headers["if-modified-since"] == lm


def test_dedupe_flags_a_body_seen_before(server: ReplayServer, shared_data: Path) -> None:
    cnbc = _read(shared_data, "news_feeds_rss/cnbc.xml")
    server.add("/feed", ok(cnbc, RSS))  # no validators: the body comes back in full
    config, source = _config(server), _source(server, "/feed")
    first, state = _run(config, source, clock=FakeTime())
    second, state2 = _run(config, source, state, clock=FakeTime())
    assert not first.duplicate and second.duplicate and second.error is None
    assert second.sha256 == first.sha256 and second.bytes == len(cnbc) and second.body == b""
    assert state2.seen_sha256 == state.seen_sha256


def test_overlapping_feeds_are_new_bodies_sharing_articles(
    server: ReplayServer, shared_data: Path
) -> None:
    cnbc = _read(shared_data, "news_feeds_rss/cnbc.xml")
    a, b = _feed_with_items(cnbc, slice(0, 10)), _feed_with_items(cnbc, slice(5, 15))
    server.sequence("/feed", [a, b], RSS)
    config, source = _config(server), _source(server, "/feed")
    first, state = _run(config, source, clock=FakeTime())
    second, state = _run(config, source, state, clock=FakeTime())
    third, _ = _run(config, source, state, clock=FakeTime())
    # Body-level dedupe sees a new feed; the five shared articles are for
    # parsing's item-level dedupe (doc_id) to drop.
    assert not second.duplicate and third.duplicate
    shared = set(_items(first.body)) & set(_items(second.body))
    assert len(shared) == 5


def test_failure_backoff_parks_a_dead_source_and_lets_it_back(server: ReplayServer) -> None:
    server.always_fail("/flaky", 503)
    config = _config(server, max_attempts=1, failure_threshold=3, cooldown_s=60)
    source, clock = _source(server, "/flaky"), FakeTime()
    state = None
    for _ in range(3):
        fetched, state = _run(config, source, state, clock=clock)
        assert fetched.error == "http_503" and fetched.attempts == 1
    assert state is not None and state.consecutive_failures == 3
    assert state.skip_until == T0 + 60 * NS
    skipped, same = _run(config, source, state, clock=clock)
    assert skipped.attempts == 0 and skipped.status is None and same == state
    assert skipped.error is not None and "parked after 3 failure(s)" in skipped.error
    assert len(server.requests("/flaky")) == 3
    assert not is_due(source, state, clock.now)

    clock.advance(
        61
    )  # the trial after the cool-down fails again: parked at once, for twice as long
    fetched, state = _run(config, source, state, clock=clock)
    assert fetched.attempts == 1 and state.trips == 2
    assert state.skip_until == clock.now + 120 * NS

    server.add("/flaky", ok(b"<rss/>", RSS))
    clock.advance(121)
    assert is_due(source, state, clock.now)
    fetched, state = _run(config, source, state, clock=clock)
    assert fetched.error is None and fetched.status == 200
    assert (state.consecutive_failures, state.trips, state.skip_until) == (0, 0, None)
    assert len(server.requests("/flaky")) == 5


def test_rate_limit_per_source_type(server: ReplayServer) -> None:
    server.add("/a", ok(b"<rss/>", RSS))
    server.add("/b", ok(b"<rss>b</rss>", RSS))
    server.add("/page", ok(b"<html></html>", HTML))
    config = _config(server, rate_limits={"rss": RateLimit(per_second=2.0, burst=1)})
    clock = FakeTime()
    a, b = _source(server, "/a"), _source(server, "/b")
    page = _source(server, "/page", "web", "html")

    async def go() -> list[tuple[Fetched, SourceState]]:
        async with Fetcher(config, clock=clock.clock, sleep=clock.sleep) as f:
            return await f.fetch_many([(a, None), (b, None), (a, None), (page, None)])

    results = asyncio.run(go())
    assert all(r[0].error is None for r in results)
    assert clock.sleeps == [0.5, 0.5]  # three rss fetches at 2/s; the web one is not limited


def test_state_round_trips_and_due_sources(server: ReplayServer) -> None:
    server.conditional("/feed", b"<rss/>", RSS)
    source, clock = _source(server, "/feed"), FakeTime()
    _, state = _run(_config(server), source, clock=clock)
    states = {source.source_id: state}
    assert decode_states(encode_states(states)) == states
    assert decode_states(b"") == {}
    other = msgspec.structs.replace(source, source_id="other")
    assert due_sources([source, other], states, clock.now + 30 * NS) == [other]
    assert due_sources([source, other], states, clock.now + 60 * NS) == [source, other]


def test_parse_retry_after() -> None:
    assert parse_retry_after("120", T0) == 120.0
    assert parse_retry_after(http_date(T0 / NS + 30), T0) == 30.0
    assert parse_retry_after(http_date(T0 / NS - 30), T0) == 0.0
    assert parse_retry_after("soon", T0) is None and parse_retry_after(None, T0) is None


def test_config_from_settings_reads_optional_fields() -> None:
    class S:
        sec_user_agent = "marketlake ops@example.com"
        ingest_timeout_s = 5.0

    config = IngestionConfig.from_settings(S(), max_attempts=2)
    assert (config.sec_user_agent, config.timeout_s, config.max_attempts) == (
        "marketlake ops@example.com",
        5.0,
        2,
    )
    assert IngestionConfig.from_settings(object()) == IngestionConfig()


def test_replay_server_serves_unknown_paths_as_404(server: ReplayServer) -> None:
    fetched, _ = _run(_config(server), _source(server, "/nothing"), clock=FakeTime())
    assert (fetched.status, fetched.error, fetched.attempts) == (404, "http_404", 1)
