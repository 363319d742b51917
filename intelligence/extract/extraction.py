"""What an extractor returns, and the interface every extractor implements.

The intelligence pipeline turns each document (headline, post, filing
paragraph) into one :class:`Extraction`. Two backends produce it: the
embedded :class:`~intelligence.extract.lexicon.LexiconExtractor`, which needs
no model and is deterministic, and a served LLM (Ollama) in the stack. Both
return the same Struct, so aggregation and the lake table never depend on
which one ran: the extractor is configuration, like every other backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, get_args, runtime_checkable

import msgspec

Label = Literal["negative", "neutral", "positive"]
Impact = Literal["low", "medium", "high"]
Catalyst = Literal[
    "earnings",
    "guidance",
    "m_and_a",
    "legal_regulatory",
    "product",
    "management",
    "macro",
    "analyst_rating",
    "capital_markets",
    "other",
]

Severity = Literal["low", "medium", "high"]
Duration = Literal["days", "weeks", "months", "quarters"]
MacroKind = Literal[
    "monetary_policy",
    "inflation",
    "growth",
    "employment",
    "trade_policy",
    "geopolitical",
    "commodity_supply",
    "currency",
    "regulation",
    "other",
]

LABELS: tuple[Label, ...] = get_args(Label)
IMPACTS: tuple[Impact, ...] = get_args(Impact)
CATALYSTS: tuple[Catalyst, ...] = get_args(Catalyst)
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
DURATIONS: tuple[Duration, ...] = get_args(Duration)
MACRO_KINDS: tuple[MacroKind, ...] = get_args(MacroKind)

# One threshold for every producer and every evaluation set: a score within
# +-0.1 of zero is neutral. SemEval-2017 Task 5 and FiQA publish continuous
# scores in [-1, 1]; labelling them and our output with the same cut makes the
# comparison like for like.
POSITIVE_ABOVE = 0.1
NEGATIVE_BELOW = -0.1


def label_for(score: float) -> Label:
    """The label of a score in [-1, 1]: positive above 0.1, negative below -0.1."""
    if score > POSITIVE_ABOVE:
        return "positive"
    if score < NEGATIVE_BELOW:
        return "negative"
    return "neutral"


class MacroEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An economy-wide event a text reports, in the registry's vocabulary.

    Macro news names no company, so it reaches one only through the company's
    exposure profile: ``regions`` and ``commodities`` use the names of
    ``registry.yml`` (``north_america``, ``crude_oil``, ...) and ``sectors`` the
    securities' sector names, which is what lets aggregation map an event onto
    the companies it touches.

    - ``direction``: in [-1, 1], the event's sign for the economy it names
      (a rate cut or an easing of tariffs is positive, a supply shock negative).
      For a commodity event it is the sign of the commodity's *price* move, so
      a company's signed commodity sensitivity turns it into good or bad news.
    """

    kind: MacroKind
    severity: Severity
    direction: float
    regions: list[str] = msgspec.field(default_factory=list)
    sectors: list[str] = msgspec.field(default_factory=list)
    commodities: list[str] = msgspec.field(default_factory=list)
    expected_duration: Duration = "weeks"
    evidence: list[str] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if not -1.0 <= self.direction <= 1.0:
            raise ValueError(f"direction {self.direction} is outside [-1, 1]")


class Extraction(msgspec.Struct, frozen=True, kw_only=True):
    """The structured reading of one document.

    A frozen Struct: it is a value (immutable, comparable, encoded to the same
    JSON everywhere), the same shape whether a lexicon or an LLM produced it.

    - ``sentiment``: signed tone in [-1, 1] from the investor's point of view.
    - ``label``: ``label_for(sentiment)``; stored so consumers never re-derive
      it with a different threshold.
    - ``impact``: how much the news is likely to matter for the price.
    - ``catalyst``: what kind of event the text is about.
    - ``confidence``: in [0, 1]; how much evidence and how little
      contradiction or hedging stands behind the score.
    - ``tickers``: the affected instruments (given by the caller, plus
      cashtags found in the text), in first-seen order, without duplicates.
    - ``evidence``: the terms that moved the score, in reading order, so a
      human (or a test) can see why.
    - ``macro_events``: economy-wide events the text reports (may be empty).
    - ``extractor``: which backend produced this reading (``lexicon``,
      ``ollama:<model>``), recorded in the lake next to every extraction.
    - ``fallback_reason``: set when the configured backend failed and the
      lexicon answered instead (e.g. ``invalid_json: ...``, ``timeout``).
    """

    sentiment: float
    label: Label
    impact: Impact
    catalyst: Catalyst
    confidence: float
    tickers: list[str] = msgspec.field(default_factory=list)
    evidence: list[str] = msgspec.field(default_factory=list)
    macro_events: list[MacroEvent] = msgspec.field(default_factory=list)
    extractor: str = "lexicon"
    fallback_reason: str | None = None

    def __post_init__(self) -> None:
        if not -1.0 <= self.sentiment <= 1.0:
            raise ValueError(f"sentiment {self.sentiment} is outside [-1, 1]")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} is outside [0, 1]")
        if self.label != label_for(self.sentiment):
            raise ValueError(f"label {self.label!r} disagrees with sentiment {self.sentiment}")


@runtime_checkable
class Extractor(Protocol):
    """Anything that reads a text into an :class:`Extraction`.

    A Protocol rather than a base class: backends (the lexicon, an Ollama
    client, a test double) share no code, only this shape. ``name`` is
    recorded with every extraction so results from different backends can be
    told apart in the lake and compared in evaluations.
    """

    @property
    def name(self) -> str:
        """A short stable identifier, e.g. ``"lexicon"``."""
        ...

    def extract(self, text: str, tickers: Sequence[str] = ()) -> Extraction:
        """Read ``text``; ``tickers`` are the instruments the caller knows it is about."""
        ...
