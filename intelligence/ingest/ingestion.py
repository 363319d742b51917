"""Ingestion: fetch a registry source over HTTP and always come back with a :class:`Fetched`.

One shared machine does what every provider needs, and a small adapter per
source type adds what is particular to it:

- retries with exponential backoff (tenacity) on timeouts, connection errors,
  truncated bodies and 5xx; on 429/503 the server's ``Retry-After`` (seconds
  or an HTTP date) replaces the backoff, and one longer than we are willing to
  wait ends the fetch and parks the source until then instead of blocking;
- a token bucket per source type, because limits are per provider (Polygon's
  free tier allows 5 calls a minute, SEC asks for at most 10 a second);
- conditional requests from the previous fetch's ETag / Last-Modified, so an
  unchanged feed costs a 304 and nothing downstream;
- a content hash (sha256) per body, so a body already seen from that source
  is flagged ``duplicate`` and not parsed again;
- a failure backoff per source: after N consecutive failed fetches the source
  is skipped until a cool-down has passed (doubling on each trip), so a dead
  feed does not eat the rate limit of the living ones;
- a size guard on the decoded body and configurable timeouts.

State between fetches (validators, recent hashes, failure count, cool-down)
lives in :class:`SourceState`, a small msgspec Struct that is passed in and
returned, never kept here, so it can be stored in the lake or a sensor cursor
and a backfill sees exactly what the live run saw. Time comes from an injected
clock (``time.time_ns`` only as the default at the edge) and sleeping from an
injected ``sleep``, so tests drive backoff and cool-downs without waiting.

Payloads are kept byte for byte: decoding, charset handling and quarantine of
bad bytes are parsing's job, which needs the original bytes to do it well.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

import httpx
import msgspec
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from intelligence.config import as_settings
from intelligence.documents import Fetched, SourceType
from intelligence.registry import SOURCE_TYPES, Format, Source, render_url

Clock = Callable[[], int]  # nanoseconds since the epoch
Sleep = Callable[[float], Awaitable[None]]

NS = 1_000_000_000
RETRY_AFTER_STATUSES = frozenset({429, 503})
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
SEC_UA = re.compile(r"^\S.*\s\S+@\S+\.\S+$")  # "<app> <contact email>", as SEC requires
SEC_FORMS = ("8-K", "10-K", "10-Q", "6-K", "20-F", "S-1", "DEF 14A", "SC 13D", "SC 13G")

_ACCEPT: dict[Format, str] = {
    "json": "application/json",
    "xml": "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8",
    "html": "text/html, application/xhtml+xml;q=0.9",
    "any": "*/*",
}


class RateLimit(msgspec.Struct, frozen=True):
    """A token bucket: ``per_second`` refill, at most ``burst`` requests back to back."""

    per_second: float
    burst: int = 1


DEFAULT_RATE_LIMITS: dict[SourceType, RateLimit] = {
    "rss": RateLimit(2.0, 4),
    "news_api": RateLimit(5 / 60, 5),  # Polygon free tier: 5 calls a minute
    "market_api": RateLimit(5 / 60, 5),
    "sec_edgar": RateLimit(5.0, 5),  # SEC fair access: at most 10 requests a second
    "web": RateLimit(1.0, 2),
}


class IngestionConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Knobs of the fetch machinery; :meth:`from_settings` reads them from the platform Settings."""

    user_agent: str = "marketlake/0.1"
    sec_user_agent: str | None = None  # "<app> <contact email>"; SEC refuses anonymous clients
    sec_archives_base: str = "https://www.sec.gov"  # filing documents live here
    polygon_api_key: str | None = None  # sent as a Bearer header, never in a URL we store
    timeout_s: float = 20.0
    connect_timeout_s: float = 5.0
    total_timeout_s: float = 120.0  # per attempt: a server dripping bytes cannot hold us forever
    max_attempts: int = 4
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0  # longer: give up now, skip the source until then
    max_body_bytes: int = 20 * 1024 * 1024
    failure_threshold: int = 3  # consecutive failed fetches before a cool-down
    cooldown_s: float = 900.0
    max_cooldown_s: float = 6 * 3600.0
    dedupe_window: int = 64  # body hashes remembered per source
    rate_limits: dict[SourceType, RateLimit] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS)
    )

    @classmethod
    def from_settings(cls, settings: object, **overrides: Any) -> IngestionConfig:
        """Build from the platform's Settings; a setting left unset (None) keeps the default.

        ``sec_user_agent``, ``sec_archives_base``, ``polygon_api_key``,
        ``ingest_timeout_s``, ``ingest_max_body_bytes``, and ``ingest_rate_limits``
        (requests per second by source type, replacing those types' defaults;
        a name that is no source type is ignored). ``overrides`` replace any field.
        """
        s = as_settings(settings)
        key = s.polygon_api_key
        optional: dict[str, object] = {
            "sec_user_agent": s.sec_user_agent,
            "sec_archives_base": s.sec_archives_base,
            "polygon_api_key": key.get_secret_value() if key is not None else None,
            "timeout_s": s.ingest_timeout_s,
            "max_body_bytes": s.ingest_max_body_bytes,
        }
        values: dict[str, Any] = {k: v for k, v in optional.items() if v is not None}
        if s.ingest_rate_limits:
            rates = dict(DEFAULT_RATE_LIMITS)
            for source_type in SOURCE_TYPES:
                per_second = s.ingest_rate_limits.get(source_type)
                if per_second is not None:
                    burst = max(1, int(per_second)) if per_second >= 1 else 1
                    rates[source_type] = RateLimit(float(per_second), burst)
            values["rate_limits"] = rates
        return cls(**(values | overrides))


class SourceState(msgspec.Struct, frozen=True, kw_only=True):
    """What one source's next fetch needs to know about the previous ones (serialisable)."""

    source_id: str
    etag: str | None = None
    last_modified: str | None = None
    seen_sha256: tuple[str, ...] = ()  # most recent last, at most dedupe_window
    consecutive_failures: int = 0
    trips: int = 0  # cool-downs in a row; each doubles the next
    skip_until: int | None = None  # ns; no fetch before (cool-down or a long Retry-After)
    last_attempt_at: int | None = None
    last_success_at: int | None = None
    last_status: int | None = None
    last_error: str | None = None


def encode_states(states: Mapping[str, SourceState]) -> bytes:
    """States as JSON, for a lake row or a Dagster cursor."""
    return msgspec.json.encode(dict(states))


def decode_states(data: bytes | str) -> dict[str, SourceState]:
    """The inverse of :func:`encode_states` (empty input: no state yet)."""
    if not data:
        return {}
    return msgspec.json.decode(data, type=dict[str, SourceState])


# --- pure decisions --------------------------------------------------------------------------


def in_cooldown(state: SourceState | None, now: int) -> bool:
    """True while a source is parked after repeated failures or a long Retry-After."""
    return state is not None and state.skip_until is not None and now < state.skip_until


def is_due(source: Source, state: SourceState | None, now: int) -> bool:
    """Whether a source should be polled at ``now``: its interval has passed and it is not parked."""
    if state is None:
        return True
    if in_cooldown(state, now):
        return False
    last = state.last_attempt_at
    return last is None or now - last >= source.polling_interval_s * NS


def due_sources(
    sources: Iterable[Source], states: Mapping[str, SourceState], now: int
) -> list[Source]:
    """The sources to poll now, in registry order."""
    return [s for s in sources if is_due(s, states.get(s.source_id), now)]


def conditional_headers(state: SourceState | None) -> dict[str, str]:
    """If-None-Match / If-Modified-Since from the last successful response's validators."""
    headers: dict[str, str] = {}
    if state is not None:
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
    return headers


def parse_retry_after(value: str | None, now: int) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110).

    A date in the past means "now" (0); an unreadable value means the header
    is ignored and our own backoff applies.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now / NS)


def backoff_delay(attempt: int, config: IngestionConfig) -> float:
    """Exponential backoff before retry number ``attempt`` (1-based), capped."""
    return float(min(config.backoff_max_s, config.backoff_initial_s * 2 ** (attempt - 1)))


def next_state(
    state: SourceState,
    fetched: Fetched,
    config: IngestionConfig,
    *,
    retry_after_s: float | None = None,
) -> SourceState:
    """The state after a fetch (pure): validators and hashes on success, backoff on failure.

    A success (no error: 2xx or 304, duplicates included) clears the failure
    count. A failure increments it; reaching the threshold parks the source
    for ``cooldown_s * 2**(trips-1)`` (capped). The count is kept, so the one
    trial fetch after a cool-down re-parks the source at once if it fails
    again. A Retry-After we did not wait out parks the source until then.
    """
    now = fetched.fetched_at
    base = msgspec.structs.replace(
        state, last_attempt_at=now, last_status=fetched.status, last_error=fetched.error
    )
    if fetched.error is None:
        seen = state.seen_sha256
        if fetched.sha256 and not fetched.duplicate:
            seen = (*seen, fetched.sha256)[-config.dedupe_window :]
        return msgspec.structs.replace(
            base,
            etag=fetched.etag or state.etag,
            last_modified=fetched.last_modified or state.last_modified,
            seen_sha256=seen,
            consecutive_failures=0,
            trips=0,
            skip_until=None,
            last_success_at=now,
        )
    failures = state.consecutive_failures + 1
    trips = state.trips
    skip_until = state.skip_until
    if failures >= config.failure_threshold:
        trips += 1
        cooldown = min(config.max_cooldown_s, config.cooldown_s * 2 ** (trips - 1))
        skip_until = now + int(cooldown * NS)
    if retry_after_s is not None:
        skip_until = max(skip_until or 0, now + int(retry_after_s * NS))
    return msgspec.structs.replace(
        base, consecutive_failures=failures, trips=trips, skip_until=skip_until
    )


def content_type_ok(fmt: Format, content_type: str | None) -> bool:
    """Whether a Content-Type fits the expected format (a missing header is given the benefit)."""
    if fmt == "any" or not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    if fmt == "json":
        return media in ("application/json", "text/json") or media.endswith("+json")
    if fmt == "xml":
        return media in ("application/xml", "text/xml") or media.endswith("+xml")
    return media in ("text/html", "application/xhtml+xml")


def _same_origin(a: str, b: str) -> bool:
    pa_, pb = urlsplit(a), urlsplit(b)
    return (pa_.scheme, pa_.netloc) == (pb.scheme, pb.netloc)


# --- adapters ---------------------------------------------------------------------------------


class ConfigError(ValueError):
    """A source cannot be fetched as configured (no API key, no SEC User-Agent, missing param)."""


class Adapter(Protocol):
    """What is particular to one source type: request headers and the links worth following."""

    def headers(self, source: Source, config: IngestionConfig) -> dict[str, str]: ...

    def follow_ups(
        self, source: Source, fetched: Fetched, config: IngestionConfig, limit: int
    ) -> list[str]: ...


class FeedAdapter:
    """RSS 2.0 and Atom feeds: a GET with feed media types; the items are parsing's business."""

    def headers(self, source: Source, config: IngestionConfig) -> dict[str, str]:
        return {"User-Agent": config.user_agent, "Accept": _ACCEPT[source.format]}

    def follow_ups(
        self, source: Source, fetched: Fetched, config: IngestionConfig, limit: int
    ) -> list[str]:
        return []


class WebAdapter(FeedAdapter):
    """Plain web pages (investor relations, newsrooms): a GET that wants HTML."""


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


class PolygonAdapter:
    """Polygon-shaped APIs: news (``/v2/reference/news``) and aggregates (``/v2/aggs/...``).

    Both return JSON with a ``results`` list and, when there is more, a
    ``next_url``. The key goes in an Authorization header so it never ends up
    in a URL we store, and ``next_url`` is followed only on the source's own
    host so the key is never sent elsewhere.
    """

    def headers(self, source: Source, config: IngestionConfig) -> dict[str, str]:
        if not config.polygon_api_key:
            raise ConfigError("polygon_api_key is not set")
        return {
            "User-Agent": config.user_agent,
            "Accept": "application/json",
            "Authorization": f"Bearer {config.polygon_api_key}",
        }

    def follow_ups(
        self, source: Source, fetched: Fetched, config: IngestionConfig, limit: int
    ) -> list[str]:
        data = _json_object(fetched.body)
        nxt = data.get("next_url") if data else None
        if isinstance(nxt, str) and _same_origin(nxt, source.url) and limit > 0:
            return [nxt]
        return []


def sec_filing_urls(
    body: bytes, archives_base: str, *, forms: Iterable[str] = SEC_FORMS, limit: int = 20
) -> list[str]:
    """Primary documents of the newest filings in a submissions JSON (data.sec.gov).

    The layout is ``Archives/edgar/data/<cik>/<accession without dashes>/<document>``.
    """
    data = _json_object(body)
    if not data:
        return []
    recent = (data.get("filings") or {}).get("recent") or {}
    try:
        cik = int(str(data.get("cik", "")).strip())
    except ValueError:
        return []
    wanted = set(forms)
    urls: list[str] = []
    base = archives_base.rstrip("/")
    for acc, form, doc in zip(
        recent.get("accessionNumber", []),
        recent.get("form", []),
        recent.get("primaryDocument", []),
        strict=False,
    ):
        if len(urls) >= limit:
            break
        if form in wanted and acc and doc:
            urls.append(f"{base}/Archives/edgar/data/{cik}/{acc.replace('-', '')}/{doc}")
    return urls


_ATOM = "{http://www.w3.org/2005/Atom}"


def sec_atom_entry_urls(body: bytes, archives_base: str, *, limit: int = 100) -> list[str]:
    """Filing index pages linked from the latest-filings Atom feed, on ``archives_base``.

    The feed links to https://www.sec.gov; links are moved onto the configured
    base so a test (or a mirror) serves them too. Duplicates (the same filing
    listed for filer and issuer) are kept once.
    """
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return []
    base = archives_base.rstrip("/") + "/"
    urls: list[str] = []
    for entry in root.iter(f"{_ATOM}entry"):
        link = entry.find(f"{_ATOM}link")
        href = link.get("href") if link is not None else None
        if not href:
            continue
        parts = urlsplit(href)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        url = urljoin(base, path.lstrip("/"))
        if url not in urls:
            urls.append(url)
        if len(urls) >= limit:
            break
    return urls


class SecEdgarAdapter:
    """SEC EDGAR: company submissions (JSON), the latest-filings Atom feed, filing documents.

    SEC blocks clients without a User-Agent naming the app and a contact
    email, so a missing or malformed one is a configuration error raised
    before any request is sent.
    """

    def headers(self, source: Source, config: IngestionConfig) -> dict[str, str]:
        ua = config.sec_user_agent
        if not ua or not SEC_UA.match(ua.strip()):
            raise ConfigError(
                f"sec_user_agent must be '<app> <contact email>' as SEC requires, got {ua!r}"
            )
        return {"User-Agent": ua.strip(), "Accept": _ACCEPT[source.format]}

    def follow_ups(
        self, source: Source, fetched: Fetched, config: IngestionConfig, limit: int
    ) -> list[str]:
        if fetched.error is not None or not fetched.body:
            return []
        if source.format == "json":
            return sec_filing_urls(fetched.body, config.sec_archives_base, limit=limit)
        if source.format == "xml":
            return sec_atom_entry_urls(fetched.body, config.sec_archives_base, limit=limit)
        return []


ADAPTERS: dict[SourceType, Adapter] = {
    "rss": FeedAdapter(),
    "news_api": PolygonAdapter(),
    "market_api": PolygonAdapter(),
    "sec_edgar": SecEdgarAdapter(),
    "web": WebAdapter(),
}


def missing_config(source: Source, config: IngestionConfig) -> str | None:
    """Why ``source`` cannot be fetched as configured (no API key, no SEC User-Agent), or None.

    Polling leaves such sources out and reports them once per run, instead of
    recording a failed "fetch" that never touched the network every time.
    """
    try:
        ADAPTERS[source.source_type].headers(source, config)
    except ConfigError as exc:
        return str(exc)
    return None


def follow_ups(
    source: Source, fetched: Fetched, config: IngestionConfig, limit: int = 20
) -> list[str]:
    """URLs a fetch points to that are worth fetching next (next page, filing documents)."""
    return ADAPTERS[source.source_type].follow_ups(source, fetched, config, limit)


# --- rate limiting ------------------------------------------------------------------------


class TokenBucket:
    """An async token bucket on the injected clock; concurrent callers queue on a lock."""

    def __init__(self, limit: RateLimit, clock: Clock, sleep: Sleep) -> None:
        if limit.per_second <= 0 or limit.burst < 1:
            raise ValueError(f"invalid rate limit {limit}")
        self._limit = limit
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(limit.burst)
        self._at: int | None = None
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        if self._at is not None:
            gained = (now - self._at) / NS * self._limit.per_second
            self._tokens = min(float(self._limit.burst), self._tokens + gained)
        self._at = now

    async def acquire(self) -> float:
        """Take one token, sleeping until there is one; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return waited
                need = (1.0 - self._tokens) / self._limit.per_second
                await self._sleep(need)
                waited += need


# --- the fetch machine -----------------------------------------------------------------------


class _Outcome(msgspec.Struct, kw_only=True):
    status: int | None = None
    content_type: str | None = None
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    retry_after: str | None = None  # the header as sent
    retry_after_s: float | None = None


class _Retryable(Exception):
    def __init__(self, outcome: _Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


class Fetcher:
    """Fetches sources with the shared machinery; one per event loop (it owns an httpx client).

    Use as ``async with Fetcher(config) as f: fetched, state = await f.fetch(src, state)``.
    """

    def __init__(
        self,
        config: IngestionConfig | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Clock = time.time_ns,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.config = config or IngestionConfig()
        self._clock = clock
        self._sleep = sleep
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s),
            follow_redirects=True,
        )
        self._buckets: dict[SourceType, TokenBucket] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    def _bucket(self, source_type: SourceType) -> TokenBucket | None:
        limit = self.config.rate_limits.get(source_type)
        if limit is None:
            return None
        if source_type not in self._buckets:
            self._buckets[source_type] = TokenBucket(limit, self._clock, self._sleep)
        return self._buckets[source_type]

    async def fetch(
        self,
        source: Source,
        state: SourceState | None = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> tuple[Fetched, SourceState]:
        """Fetch a source's URL (filling ``{from}``/``{to}`` from ``params``)."""
        try:
            url = render_url(
                source.url, {k: quote(str(v), safe="") for k, v in (params or {}).items()}, ()
            )
        except ValueError as exc:
            return self._config_failure(source, source.url, state, f"missing parameter: {exc}")
        return await self.fetch_url(source, url, state)

    async def fetch_url(
        self,
        source: Source,
        url: str,
        state: SourceState | None = None,
        *,
        fmt: Format | None = None,
    ) -> tuple[Fetched, SourceState]:
        """Fetch ``url`` as ``source`` (its type, headers, rate limit): feeds, pages, follow-ups.

        ``fmt`` overrides the expected payload format, for follow-ups that differ
        from their source (a filing document found in a submissions JSON is
        HTML or text: pass ``"any"``). Give a follow-up its own state (or None)
        so its validators and failures do not mix with the source's.

        Never raises for network or HTTP trouble: every outcome is a Fetched.
        A parked source returns at once with ``attempts=0`` and its state unchanged.
        """
        expected = fmt or source.format
        state = state or SourceState(source_id=source.source_id)
        started = self._clock()
        if in_cooldown(state, started):
            until = datetime.fromtimestamp((state.skip_until or 0) / NS, UTC).isoformat()
            return (
                Fetched(
                    source_id=source.source_id,
                    source_type=source.source_type,
                    url=url,
                    fetched_at=started,
                    status=None,
                    attempts=0,
                    error=f"skipped: parked after {state.consecutive_failures} failure(s) "
                    f"until {until}",
                ),
                state,
            )
        adapter = ADAPTERS[source.source_type]
        try:
            headers = adapter.headers(source, self.config)
            headers["Accept"] = _ACCEPT[expected]
        except ConfigError as exc:
            return self._config_failure(source, url, state, str(exc))
        headers |= conditional_headers(state)

        attempts = 0

        async def attempt() -> _Outcome:
            nonlocal attempts
            attempts += 1
            bucket = self._bucket(source.source_type)
            if bucket is not None:
                await bucket.acquire()
            return await self._attempt(url, headers, expected)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.config.max_attempts)),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            outcome: _Outcome = await retrying(attempt)
        except _Retryable as exc:
            outcome = exc.outcome
        fetched = self._fetched(source, url, state, started, attempts, outcome)
        parked = outcome.retry_after_s if outcome.error is not None else None
        return fetched, next_state(state, fetched, self.config, retry_after_s=parked)

    async def fetch_many(
        self,
        items: Iterable[tuple[Source, SourceState | None]],
        *,
        params: Mapping[str, str] | None = None,
    ) -> list[tuple[Fetched, SourceState]]:
        """Fetch several sources concurrently (rate limits still apply per type), in order."""
        return list(await asyncio.gather(*(self.fetch(s, st, params=params) for s, st in items)))

    def _wait(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _Retryable) and exc.outcome.retry_after_s is not None:
            return exc.outcome.retry_after_s
        return backoff_delay(retry_state.attempt_number, self.config)

    def _config_failure(
        self, source: Source, url: str, state: SourceState | None, error: str
    ) -> tuple[Fetched, SourceState]:
        state = state or SourceState(source_id=source.source_id)
        fetched = Fetched(
            source_id=source.source_id,
            source_type=source.source_type,
            url=url,
            fetched_at=self._clock(),
            status=None,
            attempts=0,
            error=f"config: {error}",
        )
        return fetched, next_state(state, fetched, self.config)

    async def _attempt(self, url: str, headers: Mapping[str, str], fmt: Format) -> _Outcome:
        """One HTTP exchange; raises _Retryable for what a retry may fix."""
        limit = self.config.max_body_bytes
        out: _Outcome | None = None
        try:
            async with (
                asyncio.timeout(self.config.total_timeout_s),
                self._client.stream("GET", url, headers=dict(headers)) as resp,
            ):
                out = _Outcome(
                    status=resp.status_code,
                    content_type=resp.headers.get("content-type"),
                    etag=resp.headers.get("etag"),
                    last_modified=resp.headers.get("last-modified"),
                    retry_after=resp.headers.get("retry-after"),
                )
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    out.error = f"too_large: content-length {declared} exceeds {limit} bytes"
                    return out
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        out.error = f"too_large: body exceeds {limit} bytes"
                        return out
                    chunks.append(chunk)
                out.body = b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise _Retryable(_Outcome(error=f"timeout: {type(exc).__name__}")) from None
        except TimeoutError:
            raise _Retryable(
                _Outcome(error=f"timeout: no complete response in {self.config.total_timeout_s}s")
            ) from None
        except httpx.RemoteProtocolError as exc:
            # The server hung up mid-body (Content-Length not met) or spoke garbage.
            status = out.status if out is not None else None
            raise _Retryable(_Outcome(status=status, error=f"truncated: {exc}")) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            return _Outcome(error=f"config: {exc}")
        except httpx.TooManyRedirects as exc:
            return _Outcome(error=f"redirects: {exc}")
        except httpx.TransportError as exc:
            raise _Retryable(_Outcome(error=f"connect: {type(exc).__name__}: {exc}")) from None
        return self._judge(out, fmt)

    def _judge(self, out: _Outcome, fmt: Format) -> _Outcome:
        """Classify a complete response: success, wrong type, or an HTTP error (maybe retryable)."""
        status = out.status or 0
        if status == 304 or 200 <= status < 300:
            if status != 304 and not content_type_ok(fmt, out.content_type):
                # Kept with its body: parsing quarantines it with the reason.
                out.error = f"wrong_content_type: {out.content_type!r}, expected {fmt}"
            return out
        out.body = b""  # an error page is not a payload
        out.error = f"http_{status}"
        if status in RETRY_AFTER_STATUSES:
            out.retry_after_s = parse_retry_after(out.retry_after, self._clock())
            if out.retry_after_s is not None and out.retry_after_s > self.config.max_retry_after_s:
                out.error += f": retry-after {out.retry_after_s:.0f}s exceeds the limit"
                return out  # do not block: the source is parked until then instead
        if status in RETRYABLE_STATUSES:
            raise _Retryable(out)
        return out

    def _fetched(
        self,
        source: Source,
        url: str,
        state: SourceState,
        started: int,
        attempts: int,
        out: _Outcome,
    ) -> Fetched:
        duration_ms = (self._clock() - started) / 1e6
        common: dict[str, Any] = {
            "source_id": source.source_id,
            "source_type": source.source_type,
            "url": url,
            "fetched_at": started,
            "status": out.status,
            "content_type": out.content_type,
            "duration_ms": duration_ms,
            "attempts": attempts,
            "etag": out.etag,
            "last_modified": out.last_modified,
        }
        if out.status == 304 and out.error is None:
            return Fetched(**common, not_modified=True)
        if out.error is not None and not out.body:
            return Fetched(**common, error=out.error)
        digest = hashlib.sha256(out.body).hexdigest()
        duplicate = out.error is None and digest in state.seen_sha256
        return Fetched(
            **common,
            body=b"" if duplicate else out.body,  # nothing new: do not store it twice
            sha256=digest,
            bytes=len(out.body),
            duplicate=duplicate,
            error=out.error,
        )
