"""Parsing: a fetched payload becomes documents (normalised text and metadata) or quarantine.

:func:`parse` is pure (no I/O, no clock; ``fetched_at`` comes from the fetch)
and total: whatever the bytes, it returns a list and never raises. A payload
that cannot be read becomes one :class:`Quarantined` record carrying the
original bytes and a reason code, so nothing is silently dropped and a bad
source shows up in the lake.

What produces nothing: a fetch that failed (``status`` None or >= 400, or
``error`` set), a 304 (``not_modified``) and a body already seen
(``duplicate``). Ingestion keeps those as fetch metadata in the raw
namespace; there is no payload to parse. ``market_api`` payloads (bars,
quotes) are market data, not text: they are landed raw and read by the
market-data path, so parsing returns nothing for them either.

Dispatch is on the *body*, not on the Content-Type header, because servers
mislabel feeds routinely (RSS as ``text/html``, JSON as ``text/plain``): the
first element (``rss``/``feed``/``RDF`` -> feed, ``urlset`` -> Google-News
sitemap, ``html`` -> page), a leading ``{``/``[`` (JSON), else plain text.
The source type says which kinds are acceptable; anything else is
``wrong_content_type``.

Quarantine reasons (``Quarantined.reason``):

- ``empty_body``: nothing but whitespace was received.
- ``not_utf8``: bytes that are not valid UTF-8, when UTF-8 was declared or
  defaulted to (JSON, XML and HTML without a declaration). We never guess
  another charset.
- ``bad_encoding``: an unknown charset name, or bytes invalid in the declared
  non-UTF-8 charset (e.g. Shift_JIS, UTF-16 with an odd length).
- ``wrong_content_type``: the body is not a kind this source type serves
  (HTML where a feed was expected...); the detail says expected vs got.
- ``malformed_xml``: a feed or sitemap that is not well-formed XML.
- ``truncated``: a body that ends mid-document (XML not closed, JSON cut off,
  an HTML page with neither ``</body>`` nor ``</html>``).
- ``malformed_json``: JSON that does not decode, or a record of the wrong shape.
- ``no_items``: a well-formed feed, sitemap or API response with zero items.
- ``empty_text``: an HTML or plain-text page with no text at all, or an item
  (feed entry, sitemap url, API result) with neither title nor text; an item
  is quarantined alone, with its own bytes, and the rest of the payload parses.
- ``parse_error``: an unexpected failure inside a parser; the detail holds the
  exception. Defensive: no run may crash on input.

Text is normalised the same way everywhere: markup stripped, entities
unescaped, control and zero-width characters removed, whitespace collapsed to
single spaces. Identity: ``doc_id`` is the sha256 of the canonical URL (so
the same article from two feeds, or from a feed and its page, is one
document), else of (source_id, title, text); ``content_sha256`` hashes
``title + "\\n" + text`` (title included so headline-only items, such as
sitemap entries, do not all share the hash of the empty string).
"""

from __future__ import annotations

import calendar
import codecs
import hashlib
import html
import io
import re
import string
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from html.entities import name2codepoint
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from xml.parsers.expat import errors as expat_errors

import feedparser  # type: ignore[import-untyped]  # feedparser ships no type hints or stubs
import msgspec
from selectolax.lexbor import LexborHTMLParser, LexborNode

from intelligence.documents import Document, Fetched, Quality, Quarantined, SourceType

__all__ = [
    "AMBIGUOUS_TICKERS",
    "HIGH_QUALITY_FROM",
    "MEDIUM_QUALITY_FROM",
    "REASONS",
    "CompanyNames",
    "canonical_url",
    "find_mentions",
    "normalise_text",
    "parse",
    "parse_timestamp",
    "score_quality",
]

Reason = Literal[
    "empty_body",
    "not_utf8",
    "bad_encoding",
    "wrong_content_type",
    "malformed_xml",
    "truncated",
    "malformed_json",
    "no_items",
    "empty_text",
    "parse_error",
]
REASONS: tuple[Reason, ...] = get_args(Reason)


class CompanyNames(msgspec.Struct, frozen=True, kw_only=True):
    """What parsing needs to know about a tracked company to find it in text.

    Declared here, not taken from the registry, so parsing depends on nothing
    but the document contracts; the registry maps its companies onto this.
    ``names`` are legal names and aliases ("Apple Inc.", "Apple"); ``cik``
    lets EDGAR entries that name the filer only by CIK count as mentions.
    Tuples keep the Struct hashable, so the compiled matcher is cached.
    """

    ticker: str
    names: tuple[str, ...] = ()
    cik: int | None = None


class _Bad(Exception):
    """Internal: a payload (or item) to quarantine with this reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason: Reason = reason
        self.detail = detail


# --------------------------------------------------------------------------- entry point

_EXPECTED: dict[SourceType, tuple[str, ...]] = {
    "rss": ("feed", "sitemap"),
    "news_api": ("json",),
    "sec_edgar": ("json", "feed", "html", "text"),
    "web": ("html", "text"),
    "market_api": (),
}


def parse(fetched: Fetched, companies: Sequence[CompanyNames]) -> list[Document | Quarantined]:
    """Turn one fetch into documents, one per item (feeds, API lists) or one per page.

    Returns ``[]`` for fetches with nothing to parse (see the module
    docstring); otherwise at least one record. Item-level problems (a feed
    item with no title and no text) quarantine that item only, so one bad
    item does not cost the rest of the feed.
    """
    if (
        fetched.status is None
        or fetched.status >= 400
        or fetched.error is not None
        or fetched.not_modified
        or fetched.duplicate
        or fetched.source_type == "market_api"
    ):
        return []
    try:
        return _parse(fetched, _matcher_for(companies))
    except _Bad as bad:
        return [_quarantine(fetched, bad.reason, bad.detail)]
    except Exception as exc:  # defensive: a parser bug must not crash the run
        return [_quarantine(fetched, "parse_error", f"{type(exc).__name__}: {exc}")]


def _parse(fetched: Fetched, matcher: _Matcher) -> list[Document | Quarantined]:
    body = fetched.body
    if not body.strip():
        raise _Bad("empty_body", f"status {fetched.status}, {len(body)} bytes of whitespace")
    mime, charset = _content_type(fetched.content_type)
    kind, label = _sniff(body, mime)
    expected = _EXPECTED[fetched.source_type]
    if kind not in expected:
        raise _Bad(
            "wrong_content_type",
            f"expected {' or '.join(expected)} for a {fetched.source_type} source, "
            f"got {label} (Content-Type: {fetched.content_type or 'none'})",
        )
    text = _decode(body, charset, html=kind == "html")
    ctx = _Context(fetched, matcher)
    if kind == "json":
        return _parse_json(ctx, text)
    if kind == "html":
        return [_parse_html(ctx, text)]
    if kind == "text":
        return [_parse_text(ctx, text)]
    root, text = _xml_root(text)
    if kind == "sitemap":
        return _parse_sitemap(ctx, root)
    return _parse_feed(ctx, root, text)


def _quarantine(
    fetched: Fetched, reason: Reason, detail: str, body: bytes | None = None
) -> Quarantined:
    return Quarantined(
        source_id=fetched.source_id,
        url=fetched.url,
        fetched_at=fetched.fetched_at,
        reason=reason,
        detail=detail,
        body=fetched.body if body is None else body,
    )


# --------------------------------------------------------------------------- sniffing, decoding


def _content_type(value: str | None) -> tuple[str, str | None]:
    """(mime type in lower case, charset parameter or None)."""
    if not value:
        return "", None
    mime, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip("\"'") or None
    return mime.strip().lower(), charset


_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_FIRST_TAG = re.compile(r"<(?:!doctype\s+(html)|([A-Za-z][\w:.-]*))", re.IGNORECASE)
_HTML_WORDS = (
    "html head body title meta link div p span article main section h1 h2 h3 a ul table br"
)
_HTML_TAGS = frozenset(_HTML_WORDS.split())


def _bom(body: bytes) -> str | None:
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    return None


def _sniff(body: bytes, mime: str) -> tuple[str, str]:
    """(kind, label for messages) from the first bytes; the header only breaks ties.

    Kinds: feed, sitemap, html, json, text, xml (another root), binary.
    """
    bom = _bom(body)
    head_bytes = body[:4096]
    if bom in ("utf-16", "utf-32"):
        head = head_bytes.decode(bom, errors="replace")
    else:
        head = head_bytes.decode("latin-1")
    head = head.lstrip("\ufeff\xef\xbb\xbf \t\r\n")
    first = head[:1]
    if first in ("{", "["):
        return "json", "json"
    if first == "<":
        match = _FIRST_TAG.search(_COMMENT.sub("", head))
        if match is None:
            return "xml", "markup without an element"
        if match.group(1):
            return "html", "html"
        name = match.group(2)
        local = name.rsplit(":", 1)[-1].lower()
        if local in ("rss", "feed", "rdf"):
            return "feed", f"feed <{name}>"
        if local == "urlset":
            return "sitemap", "sitemap <urlset>"
        if local in _HTML_TAGS or mime in ("text/html", "application/xhtml+xml"):
            return "html", "html"
        return "xml", f"xml with root <{name}>"
    if mime and not mime.startswith("text/") and "json" not in mime and "xml" not in mime:
        return "binary", mime
    return "text", "plain text"


_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
_META_CHARSET = re.compile(rb"<meta[^>]+?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.IGNORECASE)
# The WHATWG Encoding Standard reads an ISO-8859-1 label as windows-1252 (what
# every browser does); the two differ only in 0x80-0x9F, C1 controls in
# Latin-1 that are never meant as text (curly quotes and dashes in 1252).
_AS_WINDOWS_1252 = frozenset({"iso8859-1"})
_C1_TO_1252 = {
    b: bytes([b]).decode("cp1252")
    for b in range(0x80, 0xA0)
    if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}


def _declared_charset(body: bytes, header: str | None, html: bool) -> tuple[str, str]:
    """(charset, where it came from): BOM, then Content-Type, then XML declaration or meta."""
    bom = _bom(body)
    if bom:
        return bom, "byte-order mark"
    if header:
        return header, "Content-Type"
    head = body[:4096]
    match = _XML_ENCODING.match(head)
    if match:
        return match.group(1).decode("ascii"), "XML declaration"
    match = _META_CHARSET.search(head) if html else None
    if match:
        return match.group(1).decode("ascii"), "meta charset"
    return "utf-8", "default (UTF-8)"


def _decode(body: bytes, header_charset: str | None, html: bool) -> str:
    """Strictly decode in the declared charset; invalid bytes quarantine, never a guess."""
    charset, where = _declared_charset(body, header_charset, html)
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        raise _Bad("bad_encoding", f"unknown charset {charset!r} (from {where})") from None
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        if exc.end == len(body) and "end of data" in exc.reason:  # cut inside a character
            raise _Bad("truncated", f"body ends inside a {codec} character") from None
        reason: Reason = "not_utf8" if codec in ("utf-8", "utf-8-sig") else "bad_encoding"
        raise _Bad(
            reason,
            f"bytes {body[exc.start : exc.end][:8].hex(' ')} at offset {exc.start} are not "
            f"valid {codec} (charset from {where}: {exc.reason})",
        ) from None
    if codec in _AS_WINDOWS_1252 and any("\x80" <= ch <= "\x9f" for ch in text):
        text = "".join(_C1_TO_1252.get(ord(ch), ch) for ch in text)
    return text.lstrip("\ufeff")


# --------------------------------------------------------------------------- text


_TAG = re.compile(r"<[A-Za-z/!?]")
# C0/C1 controls (not tab/newline/CR), DEL, soft hyphen, zero-width characters.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\xad\u200b-\u200d\u2060\ufeff]")
_SPACE_BEFORE = re.compile(r" ([,.;:!?%)\]}])")
_SPACE_AFTER = re.compile(r"([(\[{]) ")


def _collapse(value: str) -> str:
    return " ".join(_INVISIBLE.sub("", value).split())


def _node_text(node: LexborNode) -> str:
    """Visible text of a node; separators between nodes, then tidied around punctuation.

    Text nodes are joined with a space so ``<p>a</p><p>b</p>`` does not read
    "ab"; the spaces this puts before punctuation after inline elements
    (``<a>Apple</a>,``) are taken out again.
    """
    text = _collapse(node.text(deep=True, separator=" "))
    if " " in text:
        text = _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))
    return text


def normalise_text(value: str | None) -> str:
    """Plain text from a string that may hold markup or entities (feed titles, descriptions).

    Markup goes through the HTML parser (which also decodes entities); text
    without markup is only unescaped, so an entity is decoded exactly once.
    """
    if not value:
        return ""
    if _TAG.search(value):
        tree = LexborHTMLParser(value)
        tree.strip_tags(["script", "style", "noscript", "template"])
        body = tree.body
        return _node_text(body) if body is not None else ""
    if "&" in value:
        value = html.unescape(value)
    return _collapse(value)


# --------------------------------------------------------------------------- urls and times

_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "mc_cid", "mc_eid", "cmpid", "ocid", "mod", "ref", "source"}
)


def canonical_url(url: str, base: str | None = None) -> str | None:
    """An absolute URL without fragment, default port or tracking parameters.

    Tracking parameters (``utm_*`` and the set above, e.g. Seeking Alpha's
    ``source=feed_symbol_AAPL``) are dropped so the same article reached
    through different feeds gets the same ``doc_id``. Scheme and host are
    lower-cased; path and the remaining query are kept as given.
    """
    url = url.strip()
    if not url:
        return None
    if base:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    try:
        port = parts.port
    except ValueError:
        return None
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.lower().startswith("utm_") and key.lower() not in _TRACKING_PARAMS
    ]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host.removeprefix("www.")


def _to_ns(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return calendar.timegm(moment.utctimetuple()) * 1_000_000_000 + moment.microsecond * 1000


def parse_timestamp(value: str | None) -> int | None:
    """ns since the epoch (UTC) from ISO 8601 or RFC 822 text; None when unreadable.

    A time without an offset is read as UTC (feeds and APIs that omit it
    almost always mean UTC); a bare date is midnight UTC.
    """
    if not value:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return _to_ns(datetime.fromisoformat(value))
    except ValueError:
        pass
    try:
        return _to_ns(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return _to_ns(datetime.combine(date.fromisoformat(value[:10]), datetime.min.time()))
    except ValueError:
        return None


def _struct_time_ns(value: Any) -> int | None:
    if isinstance(value, time.struct_time):
        return calendar.timegm(value) * 1_000_000_000
    return None


# --------------------------------------------------------------------------- mentions

# Tickers that are English words, initials or acronyms common in financial
# news: found only as a cashtag ($V) or after an exchange prefix (NYSE: V),
# never as a bare word. Every ticker of one or two letters is treated the same.
_AMBIGUOUS_WORDS = """
    A ALL AI ANY ARE BE BEST BIG BOX CAN CAR CARS CASH CEO CFO COST CPI DAY DO EARN
    EAT ESG ETF EU EV EYE FAST FED FIVE FLY FOR FUN GAIN GDP GO GOLD GOOD HAS HE HOME
    HOPE IPO IT JOB KEY LAND LIFE LOAN LOVE LOW MAIN MAN MORE MOVE NEW NICE NOW ON ONE
    OPEN OUT PAY PEAK PLAY PLUG POOL REAL RIDE ROCK RUN SAFE SAVE SEE SHOP SITE SKY SNOW
    SO SPOT STAR TECH TELL TRUE TWO UK US USA WELL WORK ZONE
    """
AMBIGUOUS_TICKERS = frozenset(_AMBIGUOUS_WORDS.split())
_TICKER_SHAPE = re.compile(r"^[A-Z][A-Z0-9]{0,5}(?:[.\-][A-Z]{1,2})?$")
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Z][A-Z0-9]{0,5}(?:\.[A-Z]{1,2})?)(?!\w)")
_EXCHANGE_PREFIX = re.compile(
    r"\b(?:NYSE(?: American| Arca)?|NASDAQ|Nasdaq|NYSEARCA|AMEX|BATS|Cboe|CBOE|OTC|OTCQX|"
    r"OTCMKTS|TSX|LSE)\s*:\s*([A-Z][A-Z0-9]{0,5}(?:\.[A-Z]{1,2})?)(?!\w)"
)
_CIK_IN_TEXT = re.compile(r"\((\d{10})\)")
_LEGAL_SUFFIX = re.compile(
    r"(?:[\s,]+(?:Inc|Incorporated|Corp|Corporation|Co|Company|Ltd|Limited|plc|PLC|N\.V|S\.A|AG|SE|"
    r"Holdings?|Group|Class [A-C])\.?|\.com|[\s,&]+)$"
)


# Words a stripped legal name could shrink to that would match everywhere.
_NOT_A_NAME = frozenset({"the", "and", "new", "first", "general", "united", "american", "national"})


def _short_name(name: str) -> str:
    """ "Walt Disney Co." -> "Walt Disney"; "Amazon.com Inc." -> "Amazon"."""
    previous = None
    while previous != name:
        previous = name
        name = _LEGAL_SUFFIX.sub("", name)
    return name.strip()


class _Matcher:
    """Compiled patterns for one set of companies (cached: built once per registry)."""

    def __init__(self, companies: tuple[CompanyNames, ...]) -> None:
        self.tracked = frozenset(c.ticker for c in companies)
        plain = sorted(
            (t for t in self.tracked if len(t) > 2 and t not in AMBIGUOUS_TICKERS),
            key=lambda t: (-len(t), t),
        )
        # One pattern per name, each tried only when a plain substring test
        # finds it: on long pages this is several times faster than one big
        # case-insensitive alternation.
        self.ticker_patterns = [
            (ticker, re.compile(r"(?<![\w$])" + re.escape(ticker) + r"(?!\w)")) for ticker in plain
        ]
        self.aliases: dict[str, set[str]] = {}
        for company in companies:
            for name in company.names:
                for alias in {name.strip(), _short_name(name)}:
                    if len(alias) >= 3 and alias.lower() not in _NOT_A_NAME:
                        self.aliases.setdefault(alias.lower(), set()).add(company.ticker)
        self.alias_patterns = [
            (
                alias,
                re.compile(r"(?<!\w)" + re.escape(alias) + r"(?!\w)", re.IGNORECASE),
                not re.search(r"\W", alias),
            )
            for alias in sorted(self.aliases)
        ]
        self.ciks = {c.cik: c.ticker for c in companies if c.cik is not None}

    def mentions(self, haystack: str) -> set[str]:
        found: set[str] = set()
        for ticker, pattern in self.ticker_patterns:
            if ticker in haystack and pattern.search(haystack):
                found.add(ticker)
        if "$" in haystack:
            found.update(t for t in _CASHTAG.findall(haystack) if t in self.tracked)
        if ":" in haystack:
            found.update(t for t in _EXCHANGE_PREFIX.findall(haystack) if t in self.tracked)
        lowered = haystack.lower()
        for alias, pattern, single_word in self.alias_patterns:
            if alias not in lowered:
                continue
            for match in pattern.finditer(haystack):
                # A single-word name written all in lower case is a common noun
                # ("apple pie", "target price", "visa rules"), not the company.
                if not (single_word and match.group(0).islower()):
                    found.update(self.aliases[alias])
                    break
        if self.ciks and "(" in haystack:
            for cik in _CIK_IN_TEXT.findall(haystack):
                by_cik = self.ciks.get(int(cik))
                if by_cik:
                    found.add(by_cik)
        return found


@lru_cache(maxsize=16)
def _matcher(companies: tuple[CompanyNames, ...]) -> _Matcher:
    return _Matcher(companies)


def _matcher_for(companies: Sequence[CompanyNames]) -> _Matcher:
    """The cached matcher; names are re-tupled so a caller passing lists still hashes."""
    return _matcher(
        tuple(CompanyNames(ticker=c.ticker, names=tuple(c.names), cik=c.cik) for c in companies)
    )


def _clean_tickers(values: Iterable[str]) -> set[str]:
    """Source-given tickers: "NASDAQ:AAPL" -> "AAPL"; anything not ticker-shaped is ignored."""
    out: set[str] = set()
    for value in values:
        ticker = value.strip().rsplit(":", 1)[-1].strip().upper()
        if _TICKER_SHAPE.match(ticker):
            out.add(ticker)
    return out


def find_mentions(
    title: str,
    text: str,
    companies: Sequence[CompanyNames],
    source_tickers: Iterable[str] = (),
) -> list[str]:
    """Tickers a document is about: the source's own tags plus tracked companies found in it.

    Rules (sorted, unique output):

    - Tickers the source gives (Polygon ``tickers``, Seeking Alpha symbol
      categories, sitemap ``stock_tickers``) are kept, tracked or not: the
      publisher tagged them on purpose.
    - A tracked ticker in the title or text counts as a whole word,
      case-sensitive ("AAPL", not "aapl"), unless it is ambiguous (one or two
      letters, or in ``AMBIGUOUS_TICKERS``: V, KO, PG, ON, IT, SNOW...); then
      only ``$V`` or an exchange prefix ``(NYSE: V)`` counts.
    - A name or alias of a tracked company counts case-insensitively as a
      whole word or phrase ("APPLE", "Apple's"), except a single-word name in
      all lower case ("apple pie", "target price"), which is a common noun.
      Legal suffixes are also stripped to make an alias ("Walt Disney Co." ->
      "Walt Disney").
    - A ten-digit CIK in parentheses (EDGAR titles) counts for companies
      given with their ``cik``.
    """
    found = _clean_tickers(source_tickers)
    found |= _matcher_for(companies).mentions(f"{title}\n{text}")
    return sorted(found)


# --------------------------------------------------------------------------- quality

HIGH_QUALITY_FROM = 0.75
MEDIUM_QUALITY_FROM = 0.45
_FULL_TEXT_WORDS = 120
_LANGUAGE_SAMPLE = 400  # tokens of text: enough to judge, cheap on long pages
_PUNCT = string.punctuation + "“”‘’–—…"


def score_quality(
    title: str,
    text: str,
    *,
    author: str | None = None,
    publisher: str | None = None,
    published_at: int | None = None,
    boilerplate_ratio: float = 0.0,
) -> tuple[float, Quality]:
    """A score in [0, 1] and its band: is this worth an extraction?

    Weighted sum of five parts:

    - substance 0.35: words of text, linear up to 120 words (a full article);
      a headline alone scores 0 here.
    - title 0.15: 1 with three or more words, 0.5 with one or two.
    - metadata 0.20: published time 0.10, publisher 0.05, author 0.05.
    - language 0.15: share of purely alphabetic tokens in the title and the
      first 400 words of text, 0 at <= 40 %, 1 at >= 80 % (tables, numbers,
      code and mojibake score low).
    - boilerplate 0.15: 1 - the share of a page's visible text outside the
      main content (feeds and APIs: 0 boilerplate).

    Bands: high >= 0.75, medium >= 0.45, else low. A headline with a date
    and a publisher lands in medium (it is extracted; headlines are what the
    lexicon is evaluated on); high needs real text; low is what is left:
    chrome, fragments, numbers. Low documents are kept, not extracted.
    """
    text_words = text.split()
    title_words = title.split()
    substance = min(1.0, len(text_words) / _FULL_TEXT_WORDS)
    title_part = 1.0 if len(title_words) >= 3 else 0.5 if title_words else 0.0
    metadata = (
        (0.5 if published_at is not None else 0.0)
        + (0.25 if publisher else 0.0)
        + (0.25 if author else 0.0)
    )
    tokens = title_words + text_words[:_LANGUAGE_SAMPLE]
    if tokens:
        alphabetic = sum(1 for token in tokens if token.strip(_PUNCT).isalpha())
        share = alphabetic / len(tokens)
        language = min(1.0, max(0.0, (share - 0.4) / 0.4))
    else:
        language = 0.0
    boilerplate = 1.0 - min(1.0, max(0.0, boilerplate_ratio))
    score = round(
        0.35 * substance
        + 0.15 * title_part
        + 0.20 * metadata
        + 0.15 * language
        + 0.15 * boilerplate,
        4,
    )
    band: Quality = (
        "high"
        if score >= HIGH_QUALITY_FROM
        else "medium"
        if score >= MEDIUM_QUALITY_FROM
        else "low"
    )
    return score, band


# --------------------------------------------------------------------------- documents


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class _Context:
    """The fetch being parsed and the company matcher: what every item builder needs."""

    __slots__ = ("fetched", "matcher")

    def __init__(self, fetched: Fetched, matcher: _Matcher) -> None:
        self.fetched = fetched
        self.matcher = matcher

    def document(
        self,
        *,
        title: str,
        text: str,
        url: str | None,
        canonical: str | None,
        author: str | None = None,
        publisher: str | None = None,
        published_at: int | None = None,
        source_tickers: Iterable[str] = (),
        boilerplate_ratio: float = 0.0,
    ) -> Document:
        fetched = self.fetched
        tickers = _clean_tickers(source_tickers) | self.matcher.mentions(f"{title}\n{text}")
        score, band = score_quality(
            title,
            text,
            author=author,
            publisher=publisher,
            published_at=published_at,
            boilerplate_ratio=boilerplate_ratio,
        )
        doc_key = canonical if canonical else f"{fetched.source_id}\x1f{title}\x1f{text}"
        return Document(
            doc_id=_sha256(doc_key),
            source_id=fetched.source_id,
            source_type=fetched.source_type,
            url=url or fetched.url,
            canonical_url=canonical,
            title=title,
            text=text,
            author=author or None,
            publisher=publisher or None,
            published_at=published_at,
            fetched_at=fetched.fetched_at,
            tickers=sorted(tickers),
            quality=band,
            quality_score=score,
            content_sha256=_sha256(f"{title}\n{text}"),
        )

    def item_quarantine(self, reason: Reason, detail: str, body: bytes) -> Quarantined:
        return _quarantine(self.fetched, reason, detail, body)


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


# --------------------------------------------------------------------------- XML: feeds, sitemaps

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
_TRUNCATION_CODES = frozenset(
    expat_errors.codes[name]
    for name in (
        expat_errors.XML_ERROR_NO_ELEMENTS,
        expat_errors.XML_ERROR_UNCLOSED_TOKEN,
        expat_errors.XML_ERROR_PARTIAL_CHAR,
        expat_errors.XML_ERROR_UNCLOSED_CDATA_SECTION,
    )
)
_UNDEFINED_ENTITY = expat_errors.codes[expat_errors.XML_ERROR_UNDEFINED_ENTITY]


def _html_entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _XML_ENTITIES or name not in name2codepoint:
        return match.group(0)
    return f"&#{name2codepoint[name]};"


def _xml_root(text: str) -> tuple[ET.Element, str]:
    """The parsed root and the text it came from (declaration removed, HTML entities fixed).

    ``&nbsp;`` and friends are not XML but appear in real feeds; they are
    rewritten as numeric references rather than failing the whole feed. Any
    other well-formedness error quarantines: ``truncated`` when the input
    ends inside the document, ``malformed_xml`` otherwise.
    """
    text = _XML_DECLARATION.sub("", text, count=1)
    for attempt in range(2):
        try:
            return ET.fromstring(text), text
        except ET.ParseError as exc:
            line, column = exc.position
            if exc.code == _UNDEFINED_ENTITY and attempt == 0:
                text = _ENTITY.sub(_html_entity, text)
                continue
            if exc.code in _TRUNCATION_CODES:
                raise _Bad("truncated", f"XML ends inside the document: {exc}") from None
            raise _Bad("malformed_xml", f"{exc} (line {line}, column {column})") from None
    raise AssertionError("unreachable")  # pragma: no cover


_ATOM = "{http://www.w3.org/2005/Atom}"
_ITEM_TAGS = frozenset({"item", "{http://purl.org/rss/1.0/}item", f"{_ATOM}entry"})


class _ItemExtras(msgspec.Struct, frozen=True):
    """What feedparser drops: Seeking Alpha's ``<category type="symbol|author">``."""

    element: ET.Element
    tickers: tuple[str, ...]
    author: str | None


def _item_extras(root: ET.Element) -> list[_ItemExtras]:
    out: list[_ItemExtras] = []
    for element in root.iter():
        if element.tag not in _ITEM_TAGS:
            continue
        tickers: list[str] = []
        author = None
        for child in element:
            if child.tag == "category":
                kind = (child.get("type") or "").lower()
                where = (child.get("domain") or child.get("link") or "").lower()
                value = (child.text or "").strip()
                if kind in ("symbol", "ticker") or "/symbol/" in where:
                    tickers.append(value)
                elif kind == "author" and value:
                    author = value
            elif child.tag == f"{_ATOM}category":
                scheme = (child.get("scheme") or "").lower()
                if "symbol" in scheme or "ticker" in scheme:
                    tickers.append(child.get("term") or "")
        out.append(_ItemExtras(element, tuple(tickers), author))
    return out


def _parse_feed(ctx: _Context, root: ET.Element, text: str) -> list[Document | Quarantined]:
    """RSS 0.9x/1.0/2.0 and Atom (EDGAR's latest filings included) through feedparser.

    feedparser reads the feed from memory (never a path or URL: it would
    open those); the text is already decoded and checked, so it gets UTF-8
    with the declaration removed.
    """
    fetched = ctx.fetched
    result = feedparser.parse(
        io.BytesIO(text.encode("utf-8")),
        response_headers={"content-type": "application/xml; charset=utf-8"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    entries: list[Any] = list(result.get("entries") or [])
    if not entries:
        feed_title = normalise_text(_str(result.get("feed", {}).get("title")))
        raise _Bad("no_items", f"feed <{root.tag}> {feed_title!r} has no items")
    extras = _item_extras(root)
    if len(extras) != len(entries):
        extras = []
    out: list[Document | Quarantined] = []
    for index, entry in enumerate(entries):
        extra = extras[index] if extras else None
        title = normalise_text(_str(entry.get("title")))
        bodies = [_str(entry.get("summary"))]
        bodies += [_str(content.get("value")) for content in entry.get("content") or []]
        body = max(bodies, key=len)
        item_text = normalise_text(body)
        if not title and not item_text:
            raw = ET.tostring(extra.element) if extra else msgspec.json.encode(dict(entry))
            out.append(
                ctx.item_quarantine("empty_text", f"item {index} has no title and no text", raw)
            )
            continue
        link = _str(entry.get("link"))
        absolute = urljoin(fetched.url, link) if link else None
        published = (
            _struct_time_ns(entry.get("published_parsed"))
            or _struct_time_ns(entry.get("updated_parsed"))
            or parse_timestamp(_str(entry.get("published")) or _str(entry.get("updated")))
        )
        author = normalise_text(_str(entry.get("author"))) or (extra.author if extra else None)
        out.append(
            ctx.document(
                title=title,
                text=item_text,
                url=absolute,
                canonical=canonical_url(absolute) if absolute else None,
                author=author,
                publisher=_host(absolute) or _host(fetched.url),
                published_at=published,
                source_tickers=extra.tickers if extra else (),
            )
        )
    return out


_SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"


def _parse_sitemap(ctx: _Context, root: ET.Element) -> list[Document | Quarantined]:
    """A Google-News sitemap (Bloomberg's): one headline-only document per <url>."""
    urls = list(root.iter(f"{_SITEMAP}url"))
    news = [(url, url.find(f"{_NEWS}news")) for url in urls]
    if not any(item is not None for _, item in news):
        raise _Bad("no_items", f"sitemap with {len(urls)} <url> and no <news:news> entries")
    out: list[Document | Quarantined] = []
    for index, (url, item) in enumerate(news):
        loc = (url.findtext(f"{_SITEMAP}loc") or "").strip()
        title = normalise_text(item.findtext(f"{_NEWS}title")) if item is not None else ""
        if not title:
            out.append(
                ctx.item_quarantine(
                    "empty_text", f"url {index} ({loc}) has no news:title", ET.tostring(url)
                )
            )
            continue
        assert item is not None
        publisher = normalise_text(item.findtext(f"{_NEWS}publication/{_NEWS}name"))
        tickers = (item.findtext(f"{_NEWS}stock_tickers") or "").split(",")
        out.append(
            ctx.document(
                title=title,
                text="",
                url=loc or None,
                canonical=canonical_url(loc, ctx.fetched.url) if loc else None,
                publisher=publisher or _host(loc),
                published_at=parse_timestamp(item.findtext(f"{_NEWS}publication_date")),
                source_tickers=[t for t in tickers if t.strip()],
            )
        )
    return out


# --------------------------------------------------------------------------- JSON


def _parse_json(ctx: _Context, text: str) -> list[Document | Quarantined]:
    """Polygon-shaped news (``results``) or SEC submissions (``filings.recent``)."""
    try:
        data = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        reason: Reason = "truncated" if "truncated" in str(exc) else "malformed_json"
        raise _Bad(reason, str(exc)) from None
    if isinstance(data, dict):
        if isinstance(data.get("results"), list):
            return _parse_polygon(ctx, data["results"])
        filings = data.get("filings")
        if isinstance(filings, dict) and isinstance(filings.get("recent"), dict):
            return _parse_submissions(ctx, data, filings["recent"])
        if isinstance(data.get("accessionNumber"), list):  # a submissions-NNN.json page
            return _parse_submissions(ctx, {}, data)
        keys = ", ".join(sorted(map(str, data))[:8])
        raise _Bad(
            "wrong_content_type",
            f"expected Polygon news or SEC submissions JSON, got an object with keys: {keys}",
        )
    raise _Bad(
        "wrong_content_type",
        f"expected Polygon news or SEC submissions JSON, got a JSON {type(data).__name__}",
    )


def _parse_polygon(ctx: _Context, results: list[Any]) -> list[Document | Quarantined]:
    if not results:
        raise _Bad("no_items", "news API response with an empty results list")
    out: list[Document | Quarantined] = []
    for index, item in enumerate(results):
        if not isinstance(item, dict):
            out.append(
                ctx.item_quarantine(
                    "malformed_json", f"result {index} is not an object", msgspec.json.encode(item)
                )
            )
            continue
        title = normalise_text(_str(item.get("title")))
        text = normalise_text(_str(item.get("description")))
        if not title and not text:
            out.append(
                ctx.item_quarantine(
                    "empty_text",
                    f"result {index} has no title and no description",
                    msgspec.json.encode(item),
                )
            )
            continue
        link = _str(item.get("article_url")).strip() or None
        publisher = item.get("publisher")
        tickers = item.get("tickers")
        out.append(
            ctx.document(
                title=title,
                text=text,
                url=link,
                canonical=canonical_url(link) if link else None,
                author=normalise_text(_str(item.get("author"))) or None,
                publisher=(
                    normalise_text(_str(publisher.get("name")))
                    if isinstance(publisher, dict)
                    else None
                )
                or _host(link),
                published_at=parse_timestamp(_str(item.get("published_utc"))),
                source_tickers=[t for t in tickers if isinstance(t, str)]
                if isinstance(tickers, list)
                else (),
            )
        )
    return out


_FORMS = {
    "3": "initial statement of beneficial ownership",
    "4": "statement of changes in beneficial ownership",
    "5": "annual statement of beneficial ownership",
    "8-K": "current report",
    "10-K": "annual report",
    "10-Q": "quarterly report",
    "11-K": "annual report of employee stock plans",
    "144": "notice of proposed sale of securities",
    "DEF 14A": "definitive proxy statement",
    "S-1": "registration statement",
    "S-3": "registration statement",
    "S-8": "registration statement for employee plans",
    "SC 13G": "beneficial ownership report (passive)",
    "SC 13G/A": "amended beneficial ownership report (passive)",
    "SC 13D": "beneficial ownership report (active)",
    "SD": "specialized disclosure report",
    "ARS": "annual report to security holders",
}
_8K_ITEMS = {
    "1.01": "Entry into a Material Definitive Agreement",
    "1.02": "Termination of a Material Definitive Agreement",
    "1.03": "Bankruptcy or Receivership",
    "2.01": "Completion of Acquisition or Disposition of Assets",
    "2.02": "Results of Operations and Financial Condition",
    "2.03": "Creation of a Direct Financial Obligation",
    "2.05": "Costs Associated with Exit or Disposal Activities",
    "2.06": "Material Impairments",
    "3.01": "Notice of Delisting",
    "4.01": "Changes in Registrant's Certifying Accountant",
    "4.02": "Non-Reliance on Previously Issued Financial Statements",
    "5.02": "Departure or Appointment of Directors or Officers",
    "5.03": "Amendments to Articles of Incorporation or Bylaws",
    "5.07": "Submission of Matters to a Vote of Security Holders",
    "7.01": "Regulation FD Disclosure",
    "8.01": "Other Events",
    "9.01": "Financial Statements and Exhibits",
}
_CIK_IN_URL = re.compile(r"CIK(\d{10})", re.IGNORECASE)


def _column(recent: dict[str, Any], key: str, index: int) -> str:
    values = recent.get(key)
    if isinstance(values, list) and index < len(values):
        value = values[index]
        return value if isinstance(value, str) else "" if value is None else str(value)
    return ""


def _parse_submissions(
    ctx: _Context, company: dict[str, Any], recent: dict[str, Any]
) -> list[Document | Quarantined]:
    """SEC submissions JSON: one short document per recent filing, linked to its primary document.

    The text is a sentence built from the filing's fields (form, dates, 8-K
    items spelled out) so catalyst detection has words to read; the filing
    itself is a separate fetch (a web page).
    """
    accessions = recent.get("accessionNumber")
    if not isinstance(accessions, list) or not accessions:
        raise _Bad("no_items", "submissions JSON with no recent filings")
    cik_text = str(company.get("cik") or "")
    if not cik_text:
        match = _CIK_IN_URL.search(ctx.fetched.url)
        cik_text = match.group(1) if match else ""
    cik = int(cik_text) if cik_text.isdigit() else None
    name = normalise_text(_str(company.get("name"))) or (f"CIK {cik}" if cik else "unknown filer")
    tickers = [t for t in company.get("tickers") or [] if isinstance(t, str)]
    out: list[Document | Quarantined] = []
    for index, accession in enumerate(accessions):
        if not isinstance(accession, str) or not accession:
            continue
        form = _column(recent, "form", index)
        filed = _column(recent, "filingDate", index)
        report = _column(recent, "reportDate", index)
        items = _column(recent, "items", index)
        primary = _column(recent, "primaryDocument", index)
        description = _FORMS.get(form) or _column(recent, "primaryDocDescription", index).lower()
        folder = accession.replace("-", "")
        if cik is not None:
            base = f"https://www.sec.gov/Archives/edgar/data/{cik}/{folder}/"
            url = base + (primary or f"{accession}-index.htm")
        else:
            url = None
        title = f"{name} files Form {form}" + (f": {description}" if description else "")
        sentence = [f"{name} filed Form {form}" + (f" ({description})" if description else "")]
        if filed:
            sentence.append(f"on {filed}")
        if report:
            sentence.append(f"for the period ending {report}")
        text = " ".join(sentence) + "."
        if items:
            spelled = [f"Item {i} {_8K_ITEMS.get(i, '')}".strip() for i in items.split(",") if i]
            text += " Items: " + "; ".join(spelled) + "."
        text += f" Accession number {accession}."
        out.append(
            ctx.document(
                title=title,
                text=text,
                url=url,
                canonical=url,
                publisher="SEC EDGAR",
                published_at=parse_timestamp(_column(recent, "acceptanceDateTime", index))
                or parse_timestamp(filed),
                source_tickers=tickers,
            )
        )
    return out


# --------------------------------------------------------------------------- HTML and plain text

_NOISE_TAGS = ["script", "style", "noscript", "template", "svg", "iframe", "canvas"]
# Not <form>: ASP.NET pages wrap the whole page in one.
_CHROME_TAGS = ["nav", "footer", "aside", "button", "dialog", "menu"]
_CHROME_ROLES = (
    '[role="navigation"], [role="banner"], [role="contentinfo"], [role="complementary"], '
    '[role="search"]'
)
_PUBLISHED_META = (
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish-date",
    "date",
    "dc.date.issued",
    "dc.date",
    "parsely-pub-date",
)


def _meta(tree: LexborHTMLParser) -> dict[str, str]:
    """meta property/name/itemprop (lower case) -> content; the first occurrence wins."""
    meta: dict[str, str] = {}
    for node in tree.css("meta"):
        attrs = node.attributes
        key = (attrs.get("property") or attrs.get("name") or attrs.get("itemprop") or "").strip()
        content = (attrs.get("content") or "").strip()
        if key and content:
            meta.setdefault(key.lower(), content)
    return meta


def _json_ld(tree: LexborHTMLParser) -> dict[str, Any]:
    """The first JSON-LD object that looks like an article (invalid blocks are skipped)."""
    candidates: list[dict[str, Any]] = []
    for node in tree.css('script[type="application/ld+json"]'):
        try:
            data = msgspec.json.decode(node.text(deep=True).strip())
        except msgspec.DecodeError:
            continue
        stack = data if isinstance(data, list) else [data]
        for item in stack:
            if isinstance(item, dict):
                graph = item.get("@graph")
                if isinstance(graph, list):
                    candidates.extend(g for g in graph if isinstance(g, dict))
                candidates.append(item)
    for item in candidates:
        kind = item.get("@type")
        kinds = kind if isinstance(kind, list) else [kind]
        if "datePublished" in item or any(isinstance(k, str) and "Article" in k for k in kinds):
            return item
    return {}


def _ld_names(value: Any) -> str | None:
    """JSON-LD author/publisher: a string, {"name": ...} or a list of either."""
    values = value if isinstance(value, list) else [value]
    names = []
    for item in values:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            names.append(item["name"])
    joined = normalise_text(", ".join(n for n in names if n.strip()))
    return joined or None


def _inside(node: LexborNode, tags: tuple[str, ...]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False


def _densest(body: LexborNode) -> LexborNode | None:
    """The element whose direct <p> children hold the most text (pages without article/main)."""
    scores: dict[int, int] = {}
    nodes: dict[int, LexborNode] = {}
    for paragraph in body.css("p"):
        parent = paragraph.parent
        if parent is None:
            continue
        key = parent.mem_id
        nodes[key] = parent
        scores[key] = scores.get(key, 0) + len(paragraph.text(deep=True).strip())
    if not scores:
        return None
    best = max(scores, key=lambda key: (scores[key], -key))
    return nodes[best] if scores[best] > 0 else None


def _truncated_html(text: str) -> bool:
    low = text.lower()
    opened = "<html" in low or "<body" in low
    return opened and "</body" not in low and "</html" not in low


def _parse_html(ctx: _Context, text: str) -> Document | Quarantined:
    """A web page or filing document: metadata from the head, text from the main content.

    Main content: ``[itemprop=articleBody]``, else the longest ``<article>``,
    else ``<main>``/``[role=main]``, else the element with the most paragraph
    text. Script, style, nav, footer, aside and headers outside the article
    are removed first (not forms: some sites wrap the whole page in one). The
    boilerplate ratio is the share of the page's visible text left outside the
    main content.
    """
    fetched = ctx.fetched
    if _truncated_html(text):
        raise _Bad("truncated", "HTML page with neither </body> nor </html>: the body was cut off")
    tree = LexborHTMLParser(text)
    meta = _meta(tree)
    ld = _json_ld(tree)
    title_node = tree.css_first("title")
    h1 = tree.css_first("h1")
    title = (
        normalise_text(meta.get("og:title"))
        or (normalise_text(title_node.text()) if title_node is not None else "")
        or normalise_text(_str(ld.get("headline")))
        or (normalise_text(h1.text()) if h1 is not None else "")
    )
    author = (
        normalise_text(meta.get("author"))
        or normalise_text(meta.get("article:author"))
        or _ld_names(ld.get("author"))
    )
    publisher = normalise_text(meta.get("og:site_name")) or _ld_names(ld.get("publisher"))
    canonical_node = tree.css_first('link[rel="canonical"]')
    canonical_href = (canonical_node.attributes.get("href") or "") if canonical_node else ""
    canonical = (
        canonical_url(canonical_href, fetched.url)
        or canonical_url(meta.get("og:url", ""), fetched.url)
        or canonical_url(fetched.url)
    )
    published = parse_timestamp(meta.get("article:published_time")) or parse_timestamp(
        _str(ld.get("datePublished"))
    )
    if published is None:
        for key in _PUBLISHED_META[1:]:
            published = parse_timestamp(meta.get(key))
            if published is not None:
                break

    tree.strip_tags(_NOISE_TAGS)
    body = tree.body
    if body is None:
        raise _Bad("empty_text", f"HTML without a body (title: {title!r})")
    visible = len(_node_text(body))
    tree.strip_tags(_CHROME_TAGS)
    for node in body.css(_CHROME_ROLES):
        node.decompose()
    for node in body.css("header"):
        if not _inside(node, ("article", "main")):
            node.decompose()
    candidates = (
        body.css('[itemprop="articleBody"]')
        or body.css("article")
        or body.css('main, [role="main"]')
    )
    main: LexborNode | None
    if candidates:
        main = max(candidates, key=lambda node: len(node.text(deep=True)))
    else:
        main = _densest(body)
    main_text = _node_text(main) if main is not None else ""
    if not main_text:
        main, main_text = body, _node_text(body)
    if not main_text:
        raise _Bad(
            "empty_text",
            f"HTML page with no text outside script/style/nav/footer/aside (title: {title!r})",
        )
    if published is None:
        time_node = (
            main.css_first("time[datetime]") if main is not None else None
        ) or tree.css_first("time[datetime]")
        if time_node is not None:
            published = parse_timestamp(time_node.attributes.get("datetime"))
    boilerplate = 1.0 - len(main_text) / visible if visible else 0.0
    return ctx.document(
        title=title,
        text=main_text,
        url=fetched.url,
        canonical=canonical,
        author=author or None,
        publisher=publisher or _host(canonical) or _host(fetched.url),
        published_at=published,
        boilerplate_ratio=boilerplate,
    )


def _lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        cleaned = _collapse(line)
        if cleaned:
            yield cleaned


def _parse_text(ctx: _Context, text: str) -> Document | Quarantined:
    """Plain text (an EDGAR .txt filing): the first line is the title."""
    lines = list(_lines(text))
    if not lines:
        raise _Bad("empty_text", "plain-text body with no visible characters")
    title = lines[0][:200]
    return ctx.document(
        title=title,
        text=" ".join(lines[1:]) if len(lines) > 1 else "",
        url=ctx.fetched.url,
        canonical=canonical_url(ctx.fetched.url),
        publisher=_host(ctx.fetched.url),
    )
