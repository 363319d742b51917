"""Every topic of the live core, declared once: its name, what it carries, where it lands.

The transports create these topics, the handlers route each event to its
topic, landing decodes each topic with its event type and writes it to its
raw table; all of them read this one list, so adding a topic (or a bar
interval) cannot leave one of them behind. Topics are keyed by symbol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streaming.bars import INTERVALS
from streaming.events import (
    Bar,
    BookTop,
    DeadLetter,
    Event,
    ExecutionReport,
    OrderRequest,
    Recommendation,
    SessionControl,
    StrategyDecision,
    Trade,
)


@dataclass(frozen=True)
class Topic:
    """One topic: ``kind`` decodes its values; ``raw_table`` is where landing writes it."""

    name: str
    kind: Any  # an event Struct or a tagged union of them (msgspec decodes either)
    raw_table: str | None  # None: not landed as a raw table (recommendations)
    broadcast: bool = False  # every event is written to every partition (each shard needs it)


BAR_TOPICS: tuple[str, ...] = tuple(f"bars.{interval}" for interval in INTERVALS)

TOPIC_SPECS: tuple[Topic, ...] = (
    Topic("orders", OrderRequest, "raw.orders"),
    Topic("executions", ExecutionReport, "raw.executions"),
    Topic("trades", Trade, "raw.trades"),
    Topic("bbo", BookTop, "raw.bbo"),
    *(Topic(name, Bar, "raw.bars") for name in BAR_TOPICS),
    Topic("control", SessionControl, "raw.control", broadcast=True),
    Topic("recommendations", Recommendation, None),
    Topic("dlq", DeadLetter, "raw.dlq"),
    Topic("decisions", StrategyDecision, "raw.decisions"),
)

TOPICS: tuple[str, ...] = tuple(t.name for t in TOPIC_SPECS)
BROADCAST_TOPICS: frozenset[str] = frozenset(t.name for t in TOPIC_SPECS if t.broadcast)
"""Topics whose partition 0 holds every event (the others hold copies)."""
"""Every topic's name, in the order the transports create them."""

_BY_KIND: dict[type, str] = {
    ExecutionReport: "executions",
    Trade: "trades",
    BookTop: "bbo",
    DeadLetter: "dlq",
}


def topic_of(event: Event) -> str:
    """The topic an output event of the core goes to (bars by their interval)."""
    if isinstance(event, Bar):
        return f"bars.{event.interval}"
    try:
        return _BY_KIND[type(event)]
    except KeyError:
        raise TypeError(f"no topic for {type(event).__name__}") from None
