"""One polling round: which sources to fetch for a day, and fetching them with follow-ups.

A trading day is *live* while it is the current day at the exchange: then
every source whose polling interval has passed is fetched, as often as the
sensors ask. A past day (a backfill) cannot be re-read from a feed that has
moved on, so only sources that take a date range (``{from}``/``{to}`` in the
URL: news and market-data APIs) are fetched for it, once; everything else
the day has is what was recorded when it was live. That rule is what makes a
backfill of a year meaningful and re-running it a no-op.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from intelligence.documents import Fetched
from intelligence.ingest.ingestion import (
    Clock,
    Fetcher,
    IngestionConfig,
    SourceState,
    due_sources,
    follow_ups,
)
from intelligence.registry import Source

RANGED = ("{from}", "{to}")


def takes_date_range(source: Source) -> bool:
    """Whether the source's URL asks for a date range (it can be fetched for a past day)."""
    return any(p in source.url for p in RANGED)


def sources_for_day(
    sources: Iterable[Source],
    states: Mapping[str, SourceState],
    now: int,
    live: bool,
    fetched_ok: Collection[str] = (),
    types: Collection[str] = (),
) -> list[Source]:
    """The sources to fetch in this round, in registry order.

    ``fetched_ok``: sources that already have a successful fetch in the day's
    partition (a past day fetches each ranged source once). ``types``: only
    these source types (a sensor polls one type on its own interval); empty
    means all.
    """
    chosen = [s for s in sources if not types or s.source_type in types]
    if live:
        return due_sources(chosen, states, now)
    return [s for s in chosen if takes_date_range(s) and s.source_id not in fetched_ok]


@dataclass
class Round:
    """What a polling round fetched (follow-ups included) and the sources' new states."""

    fetched: list[Fetched] = field(default_factory=list)
    states: dict[str, SourceState] = field(default_factory=dict)


async def _poll(
    sources: Sequence[Source],
    states: Mapping[str, SourceState],
    config: IngestionConfig,
    clock: Clock,
    params: Mapping[str, str],
    follow_limit: int,
) -> Round:
    out = Round(states=dict(states))
    async with Fetcher(config, clock=clock) as fetcher:
        results = await fetcher.fetch_many(
            [(s, states.get(s.source_id)) for s in sources], params=params
        )
        follow: list[tuple[Source, str]] = []
        for source, (fetched, state) in zip(sources, results, strict=True):
            out.fetched.append(fetched)
            out.states[source.source_id] = state
            if fetched.error is None and not fetched.duplicate and not fetched.not_modified:
                follow += [(source, u) for u in follow_ups(source, fetched, config, follow_limit)]
        extra = await asyncio.gather(
            *(
                fetcher.fetch_url(s, u, None, fmt="any" if s.source_type == "sec_edgar" else None)
                for s, u in follow
            )
        )
        out.fetched += [f for f, _ in extra]
    return out


def poll(
    sources: Sequence[Source],
    states: Mapping[str, SourceState],
    config: IngestionConfig,
    clock: Clock,
    day: date,
    follow_limit: int = 10,
) -> Round:
    """Fetch ``sources`` (and up to ``follow_limit`` follow-ups each) for ``day``; never raises
    for network trouble: every attempt comes back as a :class:`Fetched`."""
    params = {"from": day.isoformat(), "to": day.isoformat()}
    return asyncio.run(_poll(sources, states, config, clock, params, follow_limit))
