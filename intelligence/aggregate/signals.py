"""What aggregation hands to recommendations: trend windows and the evidence behind them.

Aggregation reads many extractions and writes one :class:`Trend` per company,
window and point in time; recommendations read trends only. Keeping this
contract in its own module lets both sides (and the lake tables) change their
internals without touching each other. Times are nanoseconds since the epoch,
from the caller's clock, so a backfill of a past day computes exactly what
would have been computed that day.
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

Window = Literal["intraday", "1d", "7d", "30d", "90d"]
Layer = Literal["company", "macro", "competitive"]
Driver = Literal["company", "macro", "competitive", "mixed", "none"]

WINDOWS: tuple[Window, ...] = get_args(Window)
LAYERS: tuple[Layer, ...] = get_args(Layer)

WINDOW_NS: dict[Window, int] = {
    "intraday": 6 * 3600 * 1_000_000_000 + 30 * 60 * 1_000_000_000,  # one session
    "1d": 86_400 * 1_000_000_000,
    "7d": 7 * 86_400 * 1_000_000_000,
    "30d": 30 * 86_400 * 1_000_000_000,
    "90d": 90 * 86_400 * 1_000_000_000,
}
"""How far back each window reaches from ``as_of``; ``intraday`` is the 6.5 h session."""


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """One document's contribution to a trend, as a link a reader can follow.

    ``contribution`` is the signed amount the document added to the trend's
    signal (after layer weight, decay, credibility, novelty and confidence),
    so ranking by its absolute value gives the evidence that mattered most.
    ``via`` names the company a competitive signal came from, or the macro
    event kind, so the thesis can say *why* a document about another company
    moves this one.
    """

    doc_id: str
    url: str
    title: str
    layer: Layer
    contribution: float
    published_at: int
    source_id: str
    via: str | None = None


class Trend(msgspec.Struct, frozen=True, kw_only=True):
    """The aggregated signal of one company over one window, as of a point in time.

    - ``signal``: in [-1, 1], the weighted sum of the enabled layers.
    - ``company`` / ``macro`` / ``competitive``: each layer's own signal in
      [-1, 1] before its layer weight (0 when a layer is disabled or empty),
      so a reader sees which layer drove the result.
    - ``confidence``: in [0, 1]; grows with evidence mass and agreement,
      shrinks with contradiction.
    - ``contradiction``: strong evidence on both sides within the window;
      ``contradiction_score`` in [0, 1] says how balanced the two sides are.
    - ``documents``: distinct documents that contributed; ``sources``:
      distinct sources among them.
    - ``evidence``: the top contributions, strongest first.
    """

    ticker: str
    window: Window
    as_of: int
    signal: float
    company: float
    macro: float
    competitive: float
    confidence: float
    contradiction: bool
    contradiction_score: float
    documents: int
    sources: int
    evidence: list[Evidence] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("signal", "company", "macro", "competitive"):
            value = getattr(self, name)
            if not -1.0 <= value <= 1.0:
                raise ValueError(f"{name} {value} is outside [-1, 1]")
        for name in ("confidence", "contradiction_score"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} {value} is outside [0, 1]")

    @property
    def driver(self) -> Driver:
        """The layer that moved the signal: the only non-zero one, else ``mixed``."""
        active = [layer for layer in LAYERS if abs(getattr(self, layer)) > 1e-9]
        if not active:
            return "none"
        return active[0] if len(active) == 1 else "mixed"
