"""Document extraction by a model served by Ollama, falling back to the lexicon.

Why it looks like this:

- **Structured output, checked twice.** The request carries a JSON Schema as
  ``format``; Ollama turns it into a grammar, so the model can only emit JSON of
  that shape, with the vocabularies of :mod:`~intelligence.extract.extraction` as
  enums and the registry's tickers, regions, commodities and sectors as the only
  names allowed. The grammar cannot bound numbers, and a server or proxy may not
  enforce it at all, so the answer is decoded again with msgspec against the same
  Structs the schema came from: a sentiment of 3.0, an unknown catalyst or a
  missing field is a validation failure. Nothing is clamped or repaired.
- **Bounded retries, then the lexicon.** Transport failures (refused connection,
  timeout, 5xx) and bad answers (not JSON, schema violation, cut off by the token
  cap) are retried ``retries`` times with tenacity. A retry after a bad answer
  samples a little (temperature above 0, another seed): greedy decoding would
  only repeat the same answer. When every attempt fails, the lexicon reads the
  text and its :class:`Extraction` carries ``fallback_reason`` (``timeout``,
  ``http_500: ...``, ``invalid_json: ...``, ``schema: ...``); a run never fails
  because the model did.
- **A breaker for a dead server.** After ``breaker_after`` documents in a row
  fail on transport, the model is not asked again for ``breaker_cooldown_s``
  (reason ``unavailable: <last code>``), so a day of documents is not thousands of
  timeouts.
- **No invented tickers.** The caller's tickers come first; a ticker the model
  names is kept only if it is in the registry *and* the text mentions the company
  (the parsing stage's matcher: ticker, cashtag, name or alias). A small model
  readily names a plausible ticker the text does not support, and aggregation
  would credit the news to that company.
- Counters (calls, retries, outcomes and fallback reasons) live on the instance
  for run metadata; :func:`extractor_for` picks lexicon or Ollama from an
  :class:`OllamaConfig`, the only place the choice is made.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
import msgspec
import ollama
import tenacity

from intelligence.config import as_settings
from intelligence.extract.extraction import (
    Catalyst,
    Duration,
    Extraction,
    Extractor,
    Impact,
    MacroEvent,
    MacroKind,
    Severity,
    label_for,
)
from intelligence.extract.lexicon import LexiconExtractor
from intelligence.parse.parsing import CompanyNames, find_mentions
from intelligence.registry import Registry, RegistryConfig, company_names

MAX_TICKERS = 5
MAX_EVENTS = 3
MAX_NAMES = 4  # regions, sectors or commodities per event
MAX_CHARS = 3000  # of the text sent: the prompt must fit the model's context with room to answer
NUM_PREDICT = 320  # token cap per answer: a compact answer with three events fits
RETRY_TEMPERATURE = 0.4
SEED = 42
KEEP_ALIVE = "30m"
REASON_CHARS = 200


# --- what the model answers ------------------------------------------------------------------


class _MacroAnswer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kind: MacroKind
    severity: Severity
    direction: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)]
    regions: Annotated[list[str], msgspec.Meta(max_length=MAX_NAMES)]
    sectors: Annotated[list[str], msgspec.Meta(max_length=MAX_NAMES)]
    commodities: Annotated[list[str], msgspec.Meta(max_length=MAX_NAMES)]
    expected_duration: Duration


class _Answer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The model's answer. Field order is the order the model writes them in: the
    catalyst (what happened) before the sentiment (how it reads)."""

    catalyst: Catalyst
    sentiment: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)]
    impact: Impact
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    tickers: Annotated[list[str], msgspec.Meta(max_length=MAX_TICKERS)]
    macro_events: Annotated[list[_MacroAnswer], msgspec.Meta(max_length=MAX_EVENTS)]


@dataclass(frozen=True)
class Vocabulary:
    """The names the model may use: the registry's, so aggregation can map every answer."""

    companies: tuple[CompanyNames, ...] = ()
    regions: tuple[str, ...] = ()
    commodities: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()

    @property
    def tickers(self) -> tuple[str, ...]:
        return tuple(c.ticker for c in self.companies)

    @classmethod
    def from_registry(cls, registry: Registry) -> Vocabulary:
        return cls(
            companies=tuple(company_names(registry)),
            regions=registry.regions,
            commodities=registry.commodities,
            sectors=tuple(dict.fromkeys(c.sector for c in registry.companies)),
        )


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    """The repository registry's vocabulary (loaded once)."""
    from intelligence.registry import load_registry

    return Vocabulary.from_registry(load_registry())


def _inline(node: Any, defs: Mapping[str, Any]) -> Any:
    """The schema with every ``$ref`` replaced by its definition, titles and docs dropped."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "properties":  # field names, not schema keywords
                out[key] = {name: _inline(sub, defs) for name, sub in value.items()}
            elif key not in ("title", "description"):
                out[key] = _inline(value, defs)
        return out
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _names(items: Sequence[str]) -> dict[str, Any]:
    return {"enum": list(items)} if items else {"type": "string"}


def answer_schema(vocabulary: Vocabulary | None = None) -> dict[str, Any]:
    """The JSON Schema sent as ``format``: the answer Structs, with the registry's names as enums.

    Derived from the Structs the answer is validated against, so the two cannot
    drift; self-contained (no ``$ref``) because grammar converters differ in
    what references they resolve.
    """
    vocab = vocabulary or Vocabulary()
    raw = msgspec.json.schema(_Answer)
    schema: dict[str, Any] = _inline(raw, raw["$defs"])
    schema["properties"]["tickers"]["items"] = _names(vocab.tickers)
    event = schema["properties"]["macro_events"]["items"]["properties"]
    event["regions"]["items"] = _names(vocab.regions)
    event["sectors"]["items"] = _names(vocab.sectors)
    event["commodities"]["items"] = _names(vocab.commodities)
    return schema


# --- the prompt --------------------------------------------------------------------------------

SYSTEM_PROMPT = """\
You read one financial news text and rate it for a shareholder of the company it is \
about. Reply with one line of JSON:
catalyst: what happened (earnings, guidance, m_and_a, legal_regulatory, product, \
management, macro, analyst_rating, capital_markets, other);
sentiment: -1 (very bad for the shareholder) to 1 (very good), 0 when neutral;
impact: low, medium or high, how much the price is likely to move;
confidence: 0 to 1, how clear the text is;
tickers: tickers of the companies the text is about;
macro_events: economy-wide events only (central banks, inflation, growth, jobs, \
trade, conflicts, commodity supply, currencies, regulation), else []; each with \
kind, severity, direction (-1 bad to 1 good for that economy; for a commodity the \
sign of its price move), regions, sectors, commodities, expected_duration."""

_EXAMPLES: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "Microsoft quarterly profit beats estimates as cloud sales jump",
        {"catalyst": "earnings", "sentiment": 0.7, "impact": "high", "confidence": 0.8,
         "tickers": ["MSFT"], "macro_events": []},
    ),
    (
        "Boeing halts deliveries after regulator finds wiring defects",
        {"catalyst": "legal_regulatory", "sentiment": -0.6, "impact": "high",
         "confidence": 0.8, "tickers": ["BA"], "macro_events": []},
    ),
)  # fmt: skip


def build_messages(text: str, tickers: Sequence[str] = ()) -> list[dict[str, str]]:
    """System prompt, two compact examples (they also teach one-line output), then the text.

    The examples carry no macro event on purpose: a small model copies examples,
    and a copied event would reach every company exposed to its regions.
    """
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for example, answer in _EXAMPLES:
        messages.append({"role": "user", "content": example})
        messages.append({"role": "assistant", "content": json.dumps(answer, separators=(",", ":"))})
    body = text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + " ..."
    if tickers:
        body += f"\n(about: {', '.join(tickers)})"
    messages.append({"role": "user", "content": body})
    return messages


# --- failures ------------------------------------------------------------------------------------


class _Failure(Exception):
    """One failed attempt: ``reason`` is ``code`` or ``code: detail``."""

    def __init__(self, code: str, detail: str = "", *, retryable: bool = True) -> None:
        detail = " ".join(detail.split())
        reason = f"{code}: {detail}" if detail else code
        super().__init__(reason[:REASON_CHARS])
        self.code = code
        self.reason = reason[:REASON_CHARS]
        self.retryable = retryable

    @property
    def transport(self) -> bool:
        """The server failed (not the model): what the breaker counts."""
        return self.code in ("timeout", "connection_refused", "transport") or (
            self.code.startswith("http_5")
        )


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, _Failure) and exc.retryable


def _call_failure(exc: Exception, host: str) -> _Failure:
    """What a failed client call means (the ``ollama`` client's and httpx's exceptions)."""
    if isinstance(exc, ollama.ResponseError):
        status = exc.status_code
        if status < 0:  # an error the server reported inside a 200 response
            return _Failure("server_error", str(exc.error))
        return _Failure(f"http_{status}", str(exc.error), retryable=status >= 500 or status == 429)
    if isinstance(exc, httpx.TimeoutException):
        return _Failure("timeout", type(exc).__name__)
    if isinstance(exc, ConnectionError):  # the client's translation of httpx.ConnectError
        return _Failure("connection_refused", host)
    if isinstance(exc, httpx.TransportError):
        return _Failure("transport", f"{type(exc).__name__}: {exc}")
    return _Failure("bad_response", f"{type(exc).__name__}: {exc}")


def _decode(content: str, done_reason: str | None) -> _Answer:
    """The validated answer, or the failure that says what was wrong with it."""
    try:
        return msgspec.json.decode(content, type=_Answer)
    except msgspec.ValidationError as exc:
        raise _Failure("schema", str(exc)) from None
    except msgspec.DecodeError as exc:
        if done_reason == "length":
            raise _Failure("truncated", f"token cap reached after {len(content)} chars") from None
        raise _Failure("invalid_json", f"{exc}; got {content[:80]!r}") from None


# --- the extractor -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OllamaConfig:
    """Which extractor the platform runs, and how the model is reached.

    ``extractor`` is the backend asked for; Ollama is used only when it is
    ``"ollama"`` and ``host`` is set (:attr:`enabled`), the lexicon otherwise.
    """

    extractor: Literal["lexicon", "ollama"] = "lexicon"
    host: str | None = None  # e.g. http://127.0.0.1:11434
    model: str = "marketlake-gemma3"
    timeout_s: float = 60.0  # per request
    retries: int = 2  # before falling back to the lexicon

    @property
    def enabled(self) -> bool:
        return self.extractor == "ollama" and bool(self.host)

    @classmethod
    def from_settings(cls, settings: object) -> OllamaConfig:
        """``extractor``, ``ollama_host``, ``ollama_model``, ``ollama_timeout_s``, ``ollama_retries``."""
        s = as_settings(settings)
        return cls(
            extractor=s.extractor,
            host=s.ollama_host,
            model=s.ollama_model,
            timeout_s=s.ollama_timeout_s,
            retries=s.ollama_retries,
        )


@dataclass
class OllamaExtractor:
    """An :class:`~intelligence.extract.extraction.Extractor` backed by an Ollama server."""

    host: str
    model: str = "marketlake-gemma3"
    timeout_s: float = 60.0
    retries: int = 2
    vocabulary: Vocabulary = field(default_factory=default_vocabulary)
    fallback: Extractor = field(default_factory=LexiconExtractor)
    backoff_s: float = 0.5  # first wait between attempts; doubles, at most 8 s
    breaker_after: int = 3
    breaker_cooldown_s: float = 60.0
    seed: int = SEED
    num_predict: int = NUM_PREDICT
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    counters: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, not {self.retries}")
        self.client = ollama.Client(
            host=self.host,
            timeout=self.timeout_s,
            trust_env=not _is_loopback(self.host),  # a local server is never behind a proxy
        )
        self.schema = answer_schema(self.vocabulary)
        self._failed_in_row = 0
        self._closed_until = 0.0
        self._last_code = ""

    @classmethod
    def from_config(
        cls, config: OllamaConfig, registry: RegistryConfig | None = None
    ) -> OllamaExtractor:
        """The server and model of ``config``, the names of ``registry`` (default: the bundled)."""
        if not config.host:
            raise ValueError("ollama_host is not set (MARKETLAKE_OLLAMA_HOST)")
        return cls(
            host=config.host,
            model=config.model,
            timeout_s=config.timeout_s,
            retries=config.retries,
            vocabulary=Vocabulary.from_registry((registry or RegistryConfig()).load()),
        )

    @classmethod
    def from_settings(cls, settings: object) -> OllamaExtractor:
        """:meth:`from_config` with the platform Settings' Ollama and registry configs."""
        return cls.from_config(
            OllamaConfig.from_settings(settings), RegistryConfig.from_settings(settings)
        )

    @property
    def name(self) -> str:
        return f"ollama:{self.model}"

    def check(self) -> str | None:
        """Why extraction cannot use the model (server down, model missing), or None."""
        try:
            listed = self.client.list()
        except Exception as exc:
            return f"Ollama at {self.host} does not answer: {_call_failure(exc, self.host).reason}"
        names = {m.model for m in listed.models if m.model}
        if self.model not in names and f"{self.model}:latest" not in names:
            return f"model {self.model!r} is not on {self.host} (it has: {sorted(names) or 'none'})"
        return None

    def stats(self) -> dict[str, int]:
        """Calls, attempts, retries, successes and fallbacks by reason code, for run metadata."""
        return dict(sorted(self.counters.items()))

    def extract(self, text: str, tickers: Sequence[str] = ()) -> Extraction:
        """The model's reading of ``text``, or the lexicon's with ``fallback_reason`` set."""
        self.counters["calls"] += 1
        if self.clock() < self._closed_until:
            return self._fall_back(text, tickers, _Failure("unavailable", self._last_code))
        try:
            answer = self._ask_with_retries(text, tickers)
        except _Failure as failure:
            self._note_transport(failure)
            return self._fall_back(text, tickers, failure)
        except Exception as exc:  # a bug must not stop a run: the lexicon answers
            return self._fall_back(text, tickers, _Failure("error", f"{type(exc).__name__}: {exc}"))
        self._failed_in_row = 0
        self.counters["ok"] += 1
        return self._extraction(answer, text, tickers)

    def _ask_with_retries(self, text: str, tickers: Sequence[str]) -> _Answer:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=tenacity.wait_exponential(multiplier=self.backoff_s, max=8.0),
            retry=tenacity.retry_if_exception(_retryable),
            sleep=self.sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                n = attempt.retry_state.attempt_number
                if n > 1:
                    self.counters["retries"] += 1
                return self._ask(text, tickers, n)
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    def _ask(self, text: str, tickers: Sequence[str], attempt: int) -> _Answer:
        self.counters["attempts"] += 1
        options: dict[str, Any] = {"temperature": 0.0, "seed": self.seed}
        if attempt > 1:  # greedy decoding would repeat the answer that just failed
            options = {"temperature": RETRY_TEMPERATURE, "top_k": 40, "seed": self.seed + attempt}
        options["num_predict"] = self.num_predict
        try:
            response = self.client.chat(
                model=self.model,
                messages=build_messages(text, tickers),
                format=self.schema,
                options=options,
                keep_alive=KEEP_ALIVE,
            )
        except Exception as exc:
            failure = _call_failure(exc, self.host)
            self.counters[f"attempt_failed:{failure.code}"] += 1
            raise failure from None
        content = response.message.content or ""
        try:
            return _decode(content, response.done_reason)
        except _Failure as failure:
            self.counters[f"attempt_failed:{failure.code}"] += 1
            raise

    def _extraction(self, answer: _Answer, text: str, tickers: Sequence[str]) -> Extraction:
        vocab = self.vocabulary
        return Extraction(
            sentiment=answer.sentiment,
            label=label_for(answer.sentiment),
            impact=answer.impact,
            catalyst=answer.catalyst,
            confidence=answer.confidence,
            tickers=self._tickers(answer.tickers, text, tickers),
            macro_events=[
                MacroEvent(
                    kind=e.kind,
                    severity=e.severity,
                    direction=e.direction,
                    regions=_known(e.regions, vocab.regions),
                    sectors=_known(e.sectors, vocab.sectors),
                    commodities=_known(e.commodities, vocab.commodities),
                    expected_duration=e.expected_duration,
                )
                for e in answer.macro_events
            ],
            extractor=self.name,
        )

    def _tickers(self, named: Sequence[str], text: str, given: Sequence[str]) -> list[str]:
        """The caller's tickers, then the model's that are tracked and mentioned in the text."""
        out = list(dict.fromkeys(t for t in given if t))
        if named and self.vocabulary.companies:
            mentioned = set(find_mentions(text, "", self.vocabulary.companies))
            out += [t for t in dict.fromkeys(named) if t in mentioned and t not in out]
        return out

    def _note_transport(self, failure: _Failure) -> None:
        if not failure.transport:
            self._failed_in_row = 0
            return
        self._failed_in_row += 1
        self._last_code = failure.code
        if self._failed_in_row >= self.breaker_after:
            self._closed_until = self.clock() + self.breaker_cooldown_s
            self._failed_in_row = 0

    def _fall_back(self, text: str, tickers: Sequence[str], failure: _Failure) -> Extraction:
        self.counters[f"fallback:{failure.code}"] += 1
        result = self.fallback.extract(text, tickers)
        return msgspec.structs.replace(result, fallback_reason=failure.reason)


def _known(names: Sequence[str], vocabulary: Sequence[str]) -> list[str]:
    """``names`` in the vocabulary, first-seen order; unknown names are dropped."""
    allowed = set(vocabulary)
    return [n for n in dict.fromkeys(names) if n in allowed]


def _is_loopback(host: str) -> bool:
    netloc = urlsplit(host if "//" in host else f"//{host}").hostname or ""
    return netloc in ("127.0.0.1", "localhost", "::1") or netloc.startswith("127.")


def extractor_for(config: OllamaConfig, registry: RegistryConfig | None = None) -> Extractor:
    """The configured extractor: Ollama when ``config`` asks for it and names a host, else the
    lexicon (the registry is loaded only for Ollama, whose answers use its names)."""
    if not config.enabled:
        return LexiconExtractor()
    return OllamaExtractor.from_config(config, registry)


def extractor_from_settings(settings: object) -> Extractor:
    """:func:`extractor_for` with the platform Settings' Ollama and registry configs."""
    return extractor_for(
        OllamaConfig.from_settings(settings), RegistryConfig.from_settings(settings)
    )
