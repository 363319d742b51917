"""What ingestion hands to parsing, and what parsing hands on: the document contracts.

A fetch always yields a :class:`Fetched` record, failures included (status,
error, duration), so every attempt is kept in the lake's raw namespace and a
source that keeps failing is visible, not silent. Parsing turns a fetched
payload into one :class:`Document` per item (an RSS feed holds many) or into
a :class:`Quarantined` record with the reason: bad input is never dropped.
Times are nanoseconds since the epoch, injected by the caller (no clock here).
"""

from __future__ import annotations

from typing import Literal

import msgspec

SourceType = Literal["rss", "news_api", "market_api", "sec_edgar", "web"]
Quality = Literal["high", "medium", "low"]


class Fetched(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP fetch of one source: the payload as received and how it went."""

    source_id: str
    source_type: SourceType
    url: str
    fetched_at: int  # ns, from the caller's clock
    status: int | None  # None: no response (timeout, connection refused)
    content_type: str | None = None
    body: bytes = b""
    sha256: str | None = None  # of the body; the dedupe key across fetches
    bytes: int = 0
    duration_ms: float = 0.0
    attempts: int = 1
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False  # a 304 to a conditional request: nothing new
    duplicate: bool = False  # the body's hash was seen before: nothing new
    error: str | None = None


class Document(msgspec.Struct, frozen=True, kw_only=True):
    """One article, post, filing or page, as normalised text with its metadata."""

    doc_id: str  # stable: sha256 of the canonical URL, else of source and text
    source_id: str
    source_type: SourceType
    url: str
    canonical_url: str | None = None
    title: str = ""
    text: str = ""
    author: str | None = None
    publisher: str | None = None
    published_at: int | None = None  # ns
    fetched_at: int
    tickers: list[str] = msgspec.field(default_factory=list)  # companies mentioned
    quality: Quality = "low"
    quality_score: float = 0.0
    content_sha256: str = ""


class Quarantined(msgspec.Struct, frozen=True, kw_only=True):
    """A payload (or an item of one) that could not be parsed, with the reason and bytes."""

    source_id: str
    url: str
    fetched_at: int
    reason: str  # a short code: not_utf8, empty_text, malformed_xml, wrong_content_type, ...
    detail: str = ""
    body: bytes = b""
