"""Parsing: real feeds and filings from ../shared/data, plus small hand-written payloads.

The real files are read at test time through the ``shared_data`` fixture
(``Settings().shared_data_dir``) and skipped with the reason when a clone
lacks them; they are publishers' content and never copied here. Every
quarantine reason the module documents is produced by at least one test.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgspec
import pytest

from intelligence.documents import Document, Fetched, Quarantined, SourceType
from intelligence.parse import parsing
from intelligence.parse.parsing import (
    HIGH_QUALITY_FROM,
    MEDIUM_QUALITY_FROM,
    REASONS,
    CompanyNames,
    canonical_url,
    find_mentions,
    normalise_text,
    parse,
    parse_timestamp,
    score_quality,
)

pytestmark = pytest.mark.unit

COMPANIES = (
    CompanyNames(ticker="AAPL", names=("Apple Inc.", "Apple")),
    CompanyNames(ticker="MSFT", names=("Microsoft Corp.",)),
    CompanyNames(ticker="V", names=("Visa Inc. Class A",)),
    CompanyNames(ticker="KO", names=("Coca-Cola Co.",)),
    CompanyNames(ticker="PG", names=("Procter & Gamble Co.",)),
    CompanyNames(ticker="TSLA", names=("Tesla Inc.", "Tesla")),
    CompanyNames(ticker="JPM", names=("JPMorgan Chase & Co.",)),
    CompanyNames(ticker="CVNA", names=("Carvana Co.",), cik=1690820),
)
FETCHED_AT = 1_773_000_000_000_000_000


def fetch(
    body: bytes,
    source_type: SourceType = "rss",
    content_type: str | None = None,
    url: str = "https://news.example.com/feed",
    **extra: object,
) -> Fetched:
    return Fetched(
        source_id=f"test-{source_type}",
        source_type=source_type,
        url=url,
        fetched_at=FETCHED_AT,
        status=200,
        content_type=content_type,
        body=body,
        sha256=hashlib.sha256(body).hexdigest(),
        bytes=len(body),
        **extra,  # type: ignore[arg-type]
    )


def documents(records: list[Document | Quarantined]) -> list[Document]:
    assert all(isinstance(r, Document) for r in records), records
    return [r for r in records if isinstance(r, Document)]


def quarantined(records: list[Document | Quarantined], reason: str) -> Quarantined:
    assert len(records) == 1, records
    (record,) = records
    assert isinstance(record, Quarantined), record
    assert record.reason == reason, (record.reason, record.detail)
    assert record.reason in REASONS
    return record


# --------------------------------------------------------------------------- real data


def real(shared_data: Path, relative: str) -> bytes:
    path = shared_data / relative
    if not path.is_file():
        pytest.skip(f"{relative} not found under {shared_data}")
    return path.read_bytes()


def test_cnbc_rss_gives_thirty_dated_documents(shared_data: Path) -> None:
    body = real(shared_data, "news_feeds_rss/cnbc.xml")
    docs = documents(parse(fetch(body, content_type="application/rss+xml"), COMPANIES))
    assert len(docs) == 30
    first = docs[0]
    assert first.title.startswith("Oil surges above $100 a barrel; Trump says 'small price to pay'")
    assert "&apos;" not in first.title and "Strait of Hormuz" in first.text
    assert first.publisher == "cnbc.com"
    assert (
        first.canonical_url
        == "https://www.cnbc.com/2026/03/08/crude-oil-prices-today-iran-war.html"
    )
    assert first.doc_id == hashlib.sha256(first.canonical_url.encode()).hexdigest()
    assert parse_timestamp("Sun, 08 Mar 2026 23:58:37 GMT") == first.published_at
    assert all(d.published_at is not None and d.title and d.text for d in docs)
    assert len({d.doc_id for d in docs}) == 30
    assert {d.quality for d in docs} <= {"high", "medium"}  # headline + summary: extracted
    assert any("MSFT" in d.tickers for d in docs)  # "Amazon joined Microsoft and Google ..."


def test_seeking_alpha_symbol_categories_are_mentions(shared_data: Path) -> None:
    body = real(shared_data, "news_feeds_rss/seekingalpha.xml")
    docs = documents(parse(fetch(body, content_type="text/xml"), COMPANIES))
    assert len(docs) == 20
    assert all("AAPL" in d.tickers for d in docs)  # the feed is Seeking Alpha's AAPL feed
    week_ahead = docs[0]
    assert {"ORCL", "NVDA", "KO", "XOM", "BA"} <= set(week_ahead.tickers)
    assert week_ahead.tickers == sorted(set(week_ahead.tickers))
    assert "Wall Street Breakfast" not in week_ahead.tickers  # an author category
    assert week_ahead.author == "Wall Street Breakfast"
    # ?source=feed_symbol_AAPL is tracking: the same article from the NVDA feed is one document
    assert week_ahead.url.endswith("?source=feed_symbol_AAPL")
    assert (
        week_ahead.canonical_url
        == "https://seekingalpha.com/article/4879882-wall-street-week-ahead"
    )


def test_bloomberg_google_news_sitemap_is_not_rss_but_parses(shared_data: Path) -> None:
    body = real(shared_data, "news_feeds_rss/bloomberg.xml")
    docs = documents(parse(fetch(body, content_type="application/xml"), COMPANIES))
    assert len(docs) == body.count(b"<news:title>")
    first = docs[0]
    assert first.title == "Trump Wants Countries to Send Warships, UAE Port Suspends, More"
    assert first.publisher == "Bloomberg"
    assert first.published_at == parse_timestamp("2026-03-15T00:48:24.900Z")
    assert first.published_at == 1_773_535_704_900_000_000
    assert all(d.quality == "medium" for d in docs)  # headline, date, publisher
    assert any(d.tickers for d in docs)  # news:stock_tickers, exchange prefix removed
    assert all(":" not in t for d in docs for t in d.tickers)
    assert any(
        d.title.startswith("Weekend Law: Iran War, Live Nation Back On & War Bets") for d in docs
    )


def test_edgar_latest_filings_atom(shared_data: Path) -> None:
    body = real(shared_data, "sec_edgar/edgar_getcurrent_atom_2025-12-12.xml")
    assert body.startswith(b'<?xml version="1.0" encoding="ISO-8859-1" ?>')
    records = parse(fetch(body, "sec_edgar", "application/atom+xml"), COMPANIES)
    docs = documents(records)
    assert len(docs) == 100
    first = docs[0]
    assert first.title == "4 - Perez Daniel Antonio (0002063236) (Reporting)"
    assert (
        first.text == "Filed: 2025-12-12 AccNo: 0002063236-25-000004 Size: 10 KB"
    )  # HTML stripped
    assert first.published_at == parse_timestamp("2025-12-12T18:02:43-05:00")
    assert first.url.startswith("https://www.sec.gov/Archives/edgar/data/2063236/")
    carvana = [d for d in docs if "CARVANA" in d.title]
    assert carvana and all(d.tickers == ["CVNA"] for d in carvana)  # by alias and by CIK


def test_tesla_submissions_one_document_per_recent_filing(shared_data: Path) -> None:
    body = real(shared_data, "sec_edgar/submissions_TSLA_CIK0001318605_2022-11-30.json")
    recent = json.loads(body)["filings"]["recent"]
    docs = documents(parse(fetch(body, "sec_edgar", "application/json"), COMPANIES))
    assert len(docs) == len(recent["accessionNumber"]) == 1001
    first = docs[0]
    assert first.url == (
        "https://www.sec.gov/Archives/edgar/data/1318605/000179056522000015/xslF345X03/edgardoc.xml"
    )
    assert first.title == "Tesla, Inc. files Form 4: statement of changes in beneficial ownership"
    assert first.published_at == parse_timestamp("2022-11-30T16:42:36.000Z")
    assert first.publisher == "SEC EDGAR"
    assert all(d.tickers == ["TSLA"] for d in docs)
    eight_k = next(d for d, items in zip(docs, recent["items"], strict=True) if "2.02" in items)
    assert "Results of Operations and Financial Condition" in eight_k.text
    assert len({d.doc_id for d in docs}) == 1001


def test_real_feeds_cut_anywhere_are_truncated(shared_data: Path) -> None:
    body = real(shared_data, "news_feeds_rss/cnbc.xml")
    body = body.replace(
        b"</title>", "</title><!-- \u00e9\u20ac -->".encode(), 1
    )  # multi-byte chars
    cuts = [*range(200, len(body) - 20, 997), body.index(b"\xe2\x82\xac") + 1]
    for cut in cuts:
        record = quarantined(parse(fetch(body[:cut]), COMPANIES), "truncated")
        assert record.body == body[:cut]


def test_parsing_is_deterministic(shared_data: Path) -> None:
    body = real(shared_data, "news_feeds_rss/seekingalpha.xml")
    assert parse(fetch(body), COMPANIES) == parse(fetch(body), list(COMPANIES))


# --------------------------------------------------------------------------- feeds by hand

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>T</title>
<item><title>Apple &amp; Tesla rally&nbsp;again</title>
<link>https://news.example.com/a?utm_source=rss&amp;id=7#top</link>
<description><![CDATA[<p>Shares of <b>Apple</b>, and  <a href="/t">Tesla</a> rose.</p><script>x()</script>]]></description>
<dc:creator>Jane Roe</dc:creator><pubDate>Mon, 09 Mar 2026 14:30:00 +0100</pubDate></item>
<item><title></title><description></description></item>
</channel></rss>"""


def test_rss_item_text_is_normalised_and_an_empty_item_is_quarantined_alone() -> None:
    records = parse(fetch(RSS), COMPANIES)
    assert len(records) == 2
    doc, empty = records
    assert isinstance(doc, Document) and isinstance(empty, Quarantined)
    assert doc.title == "Apple & Tesla rally again"  # &nbsp; is not XML; it is read, not fatal
    assert doc.text == "Shares of Apple, and Tesla rose."
    assert doc.author == "Jane Roe"
    assert doc.published_at == parse_timestamp("2026-03-09T13:30:00Z")
    assert doc.canonical_url == "https://news.example.com/a?id=7"
    assert doc.tickers == ["AAPL", "TSLA"]
    assert doc.content_sha256 == hashlib.sha256(f"{doc.title}\n{doc.text}".encode()).hexdigest()
    assert empty.reason == "empty_text" and empty.body.startswith(b"<item>")


def test_an_empty_feed_has_no_items() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'
    assert "'Quiet'" in quarantined(parse(fetch(body), COMPANIES), "no_items").detail
    atom = b'<feed xmlns="http://www.w3.org/2005/Atom"><title>none</title></feed>'
    quarantined(parse(fetch(atom), COMPANIES), "no_items")
    sitemap = b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>https://x.example/a</loc></url></urlset>'
    quarantined(parse(fetch(sitemap), COMPANIES), "no_items")


def test_malformed_xml_is_quarantined_with_the_position() -> None:
    body = b"<rss><channel><item><title>x</title></itm></channel></rss>"
    record = quarantined(parse(fetch(body), COMPANIES), "malformed_xml")
    assert "mismatched tag" in record.detail and "line 1" in record.detail
    assert record.body == body


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>Cut off</title></item>',
        b'<rss version="2.0"><channel><item><title>Cut of',
        b"<rss><channel><item><description><![CDATA[half a",
    ],
)
def test_xml_that_ends_mid_document_is_truncated(body: bytes) -> None:
    quarantined(parse(fetch(body), COMPANIES), "truncated")


def test_truncated_json_and_html() -> None:
    quarantined(parse(fetch(b'{"results": [{"title": "a"', "news_api"), COMPANIES), "truncated")
    page = b"<!doctype html><html><head><title>t</title></head><body><p>Half a sent"
    quarantined(parse(fetch(page, "web", "text/html"), COMPANIES), "truncated")


def test_html_served_for_a_feed_is_the_wrong_content_type() -> None:
    page = b"<!DOCTYPE html><html><body><p>Please sign in</p></body></html>"
    record = quarantined(
        parse(fetch(page, "rss", "text/html; charset=utf-8"), COMPANIES), "wrong_content_type"
    )
    assert record.detail == (
        "expected feed or sitemap for a rss source, got html (Content-Type: text/html; charset=utf-8)"
    )
    assert record.body == page
    quarantined(
        parse(fetch(b"%PDF-1.7 ...", "web", "application/pdf"), COMPANIES), "wrong_content_type"
    )
    quarantined(parse(fetch(RSS, "news_api", "application/json"), COMPANIES), "wrong_content_type")
    other = b'{"status": "OK", "ticker": "AAPL"}'
    assert (
        "keys: status, ticker"
        in quarantined(parse(fetch(other, "news_api"), COMPANIES), "wrong_content_type").detail
    )


def test_a_feed_with_a_wrong_header_is_read_by_its_body() -> None:
    """Servers label RSS as text/html all the time: the body decides, the header does not."""
    one_item = RSS.replace(b"<item><title></title><description></description></item>", b"")
    (doc,) = documents(parse(fetch(one_item, "rss", "text/html"), COMPANIES))
    assert doc.title == "Apple & Tesla rally again"


def test_empty_body_and_json_errors() -> None:
    quarantined(parse(fetch(b" \r\n\t "), COMPANIES), "empty_body")
    record = quarantined(parse(fetch(b'{"results": [1,}', "news_api"), COMPANIES), "malformed_json")
    assert "malformed" in record.detail
    quarantined(parse(fetch(b'{"results": []}', "news_api"), COMPANIES), "no_items")


# --------------------------------------------------------------------------- encodings


def test_bytes_invalid_in_utf8_are_quarantined_not_guessed() -> None:
    body = "<rss><channel><item><title>Caf\u00e9 Nestl\u00e9</title></item></channel></rss>".encode(
        "latin-1"
    )
    for content_type in (None, "application/rss+xml; charset=utf-8"):
        record = quarantined(parse(fetch(body, content_type=content_type), COMPANIES), "not_utf8")
        assert record.detail.startswith("bytes e9 at offset 30 are not valid utf-8")
        assert record.body == body


def test_declared_charsets_are_honoured() -> None:
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><rss><channel><item><title>Caf\u00e9 \x93ok\x94</title></item></channel></rss>'
    body = latin.encode("latin-1")
    (doc,) = documents(parse(fetch(body), COMPANIES))
    assert (
        doc.title == "Caf\u00e9 \u201cok\u201d"
    )  # ISO-8859-1 read as windows-1252, as browsers do
    header = "<rss><channel><item><title>\u00fcber</title></item></channel></rss>".encode("cp1252")
    (doc,) = documents(
        parse(fetch(header, content_type="text/xml; charset=windows-1252"), COMPANIES)
    )
    assert doc.title == "\u00fcber"
    page = '<html><head><meta charset="shift_jis"><title>\u682a</title></head><body><p>\u682a\u4fa1</p></body></html>'
    (doc,) = documents(parse(fetch(page.encode("shift_jis"), "web"), COMPANIES))
    assert doc.text == "\u682a\u4fa1"
    bom = "\ufeff<rss><channel><item><title>bom</title></item></channel></rss>".encode("utf-16")
    assert documents(parse(fetch(bom), COMPANIES))[0].title == "bom"


def test_bad_encodings() -> None:
    ascii_declared = b"<rss><channel><item><title>\xe9</title></item></channel></rss>"
    quarantined(
        parse(fetch(ascii_declared, content_type="text/xml; charset=us-ascii"), COMPANIES),
        "bad_encoding",
    )
    unknown = b'<?xml version="1.0" encoding="x-klingon"?><rss><channel/></rss>'
    assert "x-klingon" in quarantined(parse(fetch(unknown), COMPANIES), "bad_encoding").detail
    invalid = b"<html><body><p>\x82\xa0\xff</p></body></html>"
    record = quarantined(
        parse(fetch(invalid, "web", "text/html; charset=shift_jis"), COMPANIES), "bad_encoding"
    )
    assert "Content-Type" in record.detail


# --------------------------------------------------------------------------- HTML

ARTICLE = b"""<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Ignored &mdash; Site</title>
<meta property="og:title" content="Apple beats estimates as iPhone sales climb">
<meta property="og:site_name" content="Example News">
<meta name="author" content="Jane Roe">
<link rel="canonical" href="/markets/apple-beats?utm_medium=social">
<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
 {"@type": "WebSite", "name": "Example"},
 {"@type": "NewsArticle", "headline": "h", "datePublished": "2026-03-09T21:05:00-04:00",
  "author": [{"@type": "Person", "name": "Jane Roe"}], "publisher": {"name": "Example News Inc."}}]}
</script>
<script type="application/ld+json">{not json</script>
<style>body { color: red }</style>
</head><body>
<header><nav><a href="/">Home</a> <a href="/markets">Markets</a> <a href="/tech">Tech</a></nav></header>
<nav>Sections: World Business Markets Technology Opinion Video</nav>
<div class="layout"><article>
<header><h1>Apple beats estimates</h1><time datetime="2020-01-01T00:00:00Z">old</time></header>
<p>Apple Inc. (NASDAQ: AAPL) reported quarterly revenue above analysts&#8217; estimates on Thursday,
as iPhone sales climbed in every region and services revenue reached a record.</p>
<p>The company said its board approved a larger buyback. Shares rose 3% in late trading, while
Microsoft and Visa were little changed.</p>
<script>trackPageView("apple-beats");</script>
<aside>Related: Ten stocks to buy now. Sign up for our newsletter!</aside>
<p>Analysts at several banks raised their price targets after the results, citing strong demand
for the new models and a recovery in China, where sales had fallen for two quarters.</p>
</article></div>
<aside><h2>Most read</h2><ul><li>Story one about markets</li><li>Story two about rates</li></ul></aside>
<footer>&copy; 2026 Example News. All rights reserved. Privacy Terms Cookies Contact us</footer>
</body></html>"""


def test_html_article_text_and_metadata() -> None:
    url = "https://www.example.com/markets/apple-beats?utm_source=x"
    (doc,) = documents(parse(fetch(ARTICLE, "web", "text/html", url=url), COMPANIES))
    assert doc.title == "Apple beats estimates as iPhone sales climb"
    assert doc.text.startswith(
        "Apple beats estimates old Apple Inc. (NASDAQ: AAPL) reported quarterly"
    )
    assert "analysts\u2019 estimates on Thursday, as iPhone" in doc.text
    for noise in (
        "trackPageView",
        "Sign up",
        "Home",
        "Sections",
        "Most read",
        "All rights",
        "color",
    ):
        assert noise not in doc.text
    assert doc.author == "Jane Roe"
    assert doc.publisher == "Example News"
    assert doc.canonical_url == "https://www.example.com/markets/apple-beats"
    assert doc.doc_id == hashlib.sha256(doc.canonical_url.encode()).hexdigest()
    assert doc.url == url
    assert doc.published_at == parse_timestamp("2026-03-10T01:05:00Z")  # JSON-LD before <time>
    assert doc.tickers == ["AAPL", "MSFT", "V"]  # ticker after an exchange prefix, then names
    assert doc.quality == "high"


def test_html_without_article_uses_the_densest_block_and_time_element() -> None:
    page = b"""<html><head><title>Plain page</title></head><body>
    <div id="menu"><p>Home</p><p>About</p></div>
    <div id="story"><p>First paragraph of the story about a merger between two banks.</p>
    <p>Second paragraph with more detail on the deal and its price.</p>
    <p>Posted <time datetime="2026-03-01">March 1</time></p></div>
    </body></html>"""
    (doc,) = documents(parse(fetch(page, "web", "text/html"), COMPANIES))
    assert doc.title == "Plain page"
    assert doc.text.startswith("First paragraph") and "Home" not in doc.text
    assert doc.published_at == parse_timestamp("2026-03-01T00:00:00Z")
    assert doc.publisher == "news.example.com"
    assert 0.0 < doc.quality_score < 1.0


def test_a_page_wrapped_in_a_form_keeps_its_text() -> None:
    page = b"<html><body><form id='aspnetForm'><p>Quarterly results were strong.</p></form></body></html>"
    (doc,) = documents(parse(fetch(page, "web", "text/html"), COMPANIES))
    assert doc.text == "Quarterly results were strong."


def test_html_with_no_text_is_quarantined() -> None:
    page = b"""<html><head><title>Loading</title><script>app()</script></head>
    <body><nav>Home</nav><div id="root"></div><footer>(c) 2026</footer></body></html>"""
    record = quarantined(parse(fetch(page, "web", "text/html"), COMPANIES), "empty_text")
    assert "'Loading'" in record.detail


def test_plain_text_filing() -> None:
    body = b"FORM 8-K\n\nTesla, Inc. announced   results.\n"
    (doc,) = documents(parse(fetch(body, "sec_edgar", "text/plain"), COMPANIES))
    assert (doc.title, doc.text, doc.tickers) == (
        "FORM 8-K",
        "Tesla, Inc. announced results.",
        ["TSLA"],
    )


# --------------------------------------------------------------------------- Polygon JSON

POLYGON = {
    "status": "OK",
    "count": 3,
    "results": [
        {
            "id": "a1",
            "publisher": {"name": "The Motley Fool", "homepage_url": "https://www.fool.com/"},
            "title": "Is Apple Stock a Buy?",
            "author": "John Doe",
            "published_utc": "2026-03-09T12:00:00Z",
            "article_url": "https://www.fool.com/investing/2026/03/09/apple/?utm_source=polygon",
            "tickers": ["AAPL", "MSFT", "NASDAQ:NVDA"],
            "description": "Apple&#39;s services business keeps growing &amp; margins expand.",
        },
        {"id": "a2", "title": "", "description": "", "article_url": "https://x.example/2"},
        "not an object",
    ],
}


def test_polygon_news_json() -> None:
    body = json.dumps(POLYGON).encode()
    doc, no_text, not_object = parse(fetch(body, "news_api", "application/json"), COMPANIES)
    assert isinstance(doc, Document)
    assert doc.title == "Is Apple Stock a Buy?"
    assert doc.text == "Apple's services business keeps growing & margins expand."
    assert (doc.author, doc.publisher) == ("John Doe", "The Motley Fool")
    assert doc.published_at == 1_773_057_600_000_000_000
    assert doc.canonical_url == "https://www.fool.com/investing/2026/03/09/apple/"
    assert doc.tickers == ["AAPL", "MSFT", "NVDA"]
    assert isinstance(no_text, Quarantined) and no_text.reason == "empty_text"
    assert json.loads(no_text.body)["id"] == "a2"
    assert isinstance(not_object, Quarantined) and not_object.reason == "malformed_json"


# --------------------------------------------------------------------------- what produces nothing


@pytest.mark.parametrize(
    "changes",
    [
        {"status": None, "error": "ConnectTimeout"},
        {"status": 503},
        {"status": 429, "error": "rate limited"},
        {"status": 200, "error": "RemoteProtocolError: peer closed connection"},
        {"status": 304, "not_modified": True},
        {"duplicate": True},
        {"source_type": "market_api"},
    ],
)
def test_failures_repeats_and_market_data_produce_nothing(changes: dict[str, object]) -> None:
    assert parse(msgspec.structs.replace(fetch(RSS), **changes), COMPANIES) == []


def test_an_unexpected_parser_failure_is_quarantined(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(parsing, "_parse_html", boom)
    record = quarantined(parse(fetch(ARTICLE, "web", "text/html"), COMPANIES), "parse_error")
    assert record.detail == "RuntimeError: bug"


def test_every_reason_is_documented() -> None:
    for reason in REASONS:
        assert f"``{reason}``" in (parsing.__doc__ or "")


# --------------------------------------------------------------------------- mentions


@pytest.mark.parametrize(
    ("title", "text", "expected"),
    [
        ("V shaped recovery", "Plan V failed; vitamin V too.", []),
        ("Payments", 'Analysts rate it "V" for value.', []),
        ("Payments", "$V rallied 2%.", ["V"]),
        ("Payments", "Visa (NYSE: V) rose.", ["V"]),
        ("Payments", "The firm (NYSE:V) rose.", ["V"]),
        ("Drinks", "KO and PG and ON are words here.", []),
        ("Drinks", "$KO, $PG up; Coca-Cola beat.", ["KO", "PG"]),
        ("Apple pie", "We ate apple pie.", ["AAPL"]),  # "Apple" capitalised in the title
        ("Recipes", "We ate apple pie and took a visa.", []),
        ("APPLE SHARES JUMP", "", ["AAPL"]),
        ("Apple's quarter", "", ["AAPL"]),
        ("Pineapple", "Snapple and applesauce", []),
        ("", "AAPL and TSLA; aapl is not a ticker.", ["AAPL", "TSLA"]),
        ("", "TSLAQ and XAAPL are other words.", []),
        ("", "JPMorgan Chase said; Procter & Gamble too.", ["JPM", "PG"]),
        ("", "$AMZN is not tracked, $aapl is lower case.", []),
        ("4 - SOME FILER (0001690820) (Issuer)", "", ["CVNA"]),
    ],
)
def test_mentions(title: str, text: str, expected: list[str]) -> None:
    assert find_mentions(title, text, COMPANIES) == expected


def test_names_given_as_lists_still_match() -> None:
    listed = [CompanyNames(ticker="AAPL", names=["Apple"])]  # type: ignore[arg-type]
    assert find_mentions("Apple", "", listed) == ["AAPL"]


def test_source_tickers_are_kept_even_when_untracked() -> None:
    assert find_mentions("t", "Tesla", COMPANIES, ["NASDAQ:NVDA", "orcl", "Some Author", ""]) == [
        "NVDA",
        "ORCL",
        "TSLA",
    ]


# --------------------------------------------------------------------------- quality


def test_quality_bands() -> None:
    article = " ".join(["The company reported strong growth in revenue and profit."] * 20)
    high = score_quality(
        "Apple beats estimates again", article, author="a", publisher="p", published_at=1
    )
    headline = score_quality("Apple beats estimates again", "", publisher="p", published_at=1)
    chrome = score_quality(
        "Home", "Menu Login Sign up 2026 (c) 12 34 56", publisher="p", boilerplate_ratio=0.9
    )
    numbers = score_quality("", "1 2 3 4 5 6 7 8 9 10 11 12", publisher="p")
    assert high[1] == "high" and high[0] >= HIGH_QUALITY_FROM
    assert headline[1] == "medium" and MEDIUM_QUALITY_FROM <= headline[0] < HIGH_QUALITY_FROM
    assert chrome[1] == "low" and numbers[1] == "low"
    assert high[0] > headline[0] > chrome[0] > numbers[0] >= 0.0
    assert score_quality("", "") == (0.15, "low")  # only "no boilerplate"


def test_low_quality_documents_are_kept() -> None:
    page = (
        b"<html><body><nav>"
        + b"Markets World Tech Opinion " * 30
        + b"</nav><p>42 0.5 17</p></body></html>"
    )
    (doc,) = documents(parse(fetch(page, "web", "text/html"), COMPANIES))
    assert doc.quality == "low" and doc.text == "42 0.5 17"


# --------------------------------------------------------------------------- helpers


def test_helpers() -> None:
    assert normalise_text("  a&amp;b \u200b\n c\x00 ") == "a&b c"
    assert normalise_text("<p>x</p><p>y</p>") == "x y"
    assert normalise_text(None) == ""
    assert (
        canonical_url("HTTPS://WWW.Example.com:443/p?a=1&utm_x=2&ref=r#f")
        == "https://www.example.com/p?a=1"
    )
    assert canonical_url("/p", "http://h.example:8080/x") == "http://h.example:8080/p"
    assert canonical_url("mailto:a@b") is None
    assert parse_timestamp("2026-03-09") == 1_773_014_400_000_000_000
    assert parse_timestamp("2026-03-09T00:00:00") == parse_timestamp("2026-03-09T01:00:00+01:00")
    assert parse_timestamp("yesterday") is None
