"""Replay a file of order events through the matcher with every book open.

How a user reproduces or investigates a trading day: the same requests always
give the same executions and trades. A line that is not a valid event is not
dropped silently: it becomes a dead letter (``dlq.jsonl``) naming its line,
with the line's original bytes (never repaired text); a rejected request is
answered with its report and, as on the live core, dead-lettered too. Lines pass the same
bounded decoding as the live core's ``orders`` topic (``streaming.limits``),
so no line, however hostile, stops the replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from streaming.events import (
    AmendOrder,
    CancelOrder,
    DeadLetter,
    Event,
    ExecutionReport,
    NewOrder,
    SessionControl,
    Trade,
    encode,
    event_decoder,
)
from streaming.limits import MalformedMessage, decode_untrusted
from streaming.matcher import Matcher, StpMode
from streaming.refdata import Security


@dataclass
class ReplayStats:
    lines: int = 0
    requests: int = 0
    executions: int = 0
    trades: int = 0
    rejects: int = 0
    dead_letters: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


def replay_lines(
    lines: Iterable[bytes | str],
    securities: Iterable[Security],
    members: Iterable[str] | None = None,
    stp: StpMode = "cancel_resting",
    band_pct: float | None = None,
    source: str = "orders",
) -> Iterator[Event]:
    """Matcher output (reports, trades) and dead letters, in order, for each line."""
    matcher = Matcher(securities, members, stp=stp, band_pct=band_pct, status="open")
    out: list[Event] = []
    for lineno, raw in enumerate(lines, start=1):
        data = (
            raw.strip() if isinstance(raw, bytes) else raw.strip().encode("utf-8", "surrogatepass")
        )
        if not data or data.startswith(b"#"):
            continue
        try:
            event = decode_untrusted(data, event_decoder)
        except MalformedMessage as exc:
            yield DeadLetter(f"line {lineno}: undecodable: {exc}", source, 0, None, lineno, data)
            continue
        if not isinstance(event, NewOrder | CancelOrder | AmendOrder | SessionControl):
            yield DeadLetter(
                f"line {lineno}: unexpected_event: {type(event).__name__} is not an order request",
                source, 0, None, lineno, data,
            )  # fmt: skip
            continue
        out.clear()
        try:
            matcher.process(event, out)
        except Exception as exc:  # a bad line fails alone (e.g. an illegal control)
            yield DeadLetter(
                f"line {lineno}: {type(exc).__name__}: {exc}"[:1000], source, 0, None, lineno, data
            )
            continue
        yield from out
        for ev in out:  # as on the live core: a rejected request is also a dead letter
            if type(ev) is ExecutionReport and ev.exec_type == "rejected":
                why = f"line {lineno}: rejected: {ev.reason}"
                yield DeadLetter(why, source, 0, None, lineno, data)


def write_replay(
    events: Iterable[Event],
    executions: IO[bytes],
    trades: IO[bytes],
    dlq: IO[bytes],
) -> ReplayStats:
    """Route events to the three JSON Lines outputs and count them."""
    stats = ReplayStats()
    for ev in events:
        line = encode(ev) + b"\n"
        if type(ev) is ExecutionReport:
            executions.write(line)
            stats.executions += 1
            if ev.exec_type == "rejected":
                stats.rejects += 1
                key = ev.reason or "?"
                stats.by_reason[key] = stats.by_reason.get(key, 0) + 1
        elif type(ev) is Trade:
            trades.write(line)
            stats.trades += 1
        else:
            dlq.write(line)
            stats.dead_letters += 1
    return stats
