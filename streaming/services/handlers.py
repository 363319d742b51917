"""The live core's services as consume-process-produce handlers over any ``EventLog``.

Each handler turns a batch of input records into output messages; the
transport's ``step`` commits both atomically. Input topics are merged by event
time without reordering any one topic (ties: ``control`` first), so a handler's
output depends only on the log's contents, never on batch boundaries within a
topic. Anything that cannot be decoded or is rejected goes to ``dlq`` with the
reason, the source position and the original bytes; the service keeps going.

No record can stop a service: decoding is bounded (``streaming.limits``) and
any exception a record causes in a handler is caught for that record alone
and dead-lettered as ``handler_error``; only the transport's own failures
(the broker, the disk) end a step, and they roll it back.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence

import msgspec

from streaming.bars import BarBuilder
from streaming.events import (
    AmendOrder,
    BookTop,
    CancelOrder,
    DeadLetter,
    Event,
    ExecutionReport,
    NewOrder,
    Recommendation,
    SessionControl,
    Trade,
    encode,
    event_decoder,
)
from streaming.limits import MalformedMessage, decode_untrusted
from streaming.matcher import Matcher, StpMode
from streaming.members import Members
from streaming.refdata import Security
from streaming.session import SessionError
from streaming.simulator import MarketSimulator
from streaming.topics import topic_of
from streaming.transport.base import EventLog, Handler, Output, Record, partition_for


def merge_by_time(records: Sequence[Record]) -> Iterator[Record]:
    """Records of several topics/partitions merged by timestamp, each input's order kept."""
    streams: dict[tuple[str, int], list[Record]] = {}
    for rec in records:
        streams.setdefault((rec.topic, rec.partition), []).append(rec)
    if len(streams) == 1:
        return iter(records)
    return heapq.merge(
        *streams.values(), key=lambda r: (r.timestamp, r.topic != "control", r.topic, r.partition)
    )


def dead_letter(rec: Record, reason: str) -> Output:
    dl = DeadLetter(reason, rec.topic, rec.timestamp, rec.partition, rec.offset, rec.value)
    return Output("dlq", rec.key, encode(dl), rec.timestamp)


def handler_error(rec: Record, exc: Exception) -> Output:
    """The dead letter of a record that made a handler raise: the record, not the service, fails."""
    return dead_letter(rec, f"handler_error: {type(exc).__name__}: {exc}"[:1000])


def decoded(records: Sequence[Record], outputs: list[Output]) -> Iterator[tuple[Record, Event]]:
    """Records merged by time and decoded; an undecodable one becomes a dead letter."""
    for rec in merge_by_time(records):
        try:
            event = decode_untrusted(rec.value, event_decoder)
        except MalformedMessage as exc:
            outputs.append(dead_letter(rec, f"undecodable: {exc}"))
            continue
        yield rec, event


class MatcherService:
    """orders + control -> executions, trades, bbo (on every change of the touch), dlq."""

    group = "matcher"
    inputs = ("control", "orders")

    def __init__(self, matcher: Matcher, depth: int = 5) -> None:
        self.matcher = matcher
        self.depth = depth
        self._touch: dict[str, tuple[int | None, int, int | None, int]] = {}

    def __call__(self, records: list[Record]) -> list[Output]:
        outputs: list[Output] = []
        events: list[Event] = []
        books = self.matcher.books
        for rec, event in decoded(records, outputs):
            events.clear()
            if (rec.topic == "control") != isinstance(event, SessionControl):
                # control only from the control topic (the platform's), orders only from
                # orders: a writer of orders (a gateway, a member) cannot halt the market
                why = f"unexpected_event: {type(event).__name__} on {rec.topic}"
                outputs.append(dead_letter(rec, why))
                continue
            try:
                if isinstance(event, SessionControl):
                    try:
                        self.matcher.control(event, events)
                    except SessionError as exc:
                        outputs.append(dead_letter(rec, f"control_rejected: {exc}"))
                        continue
                    symbols = [event.symbol] if event.symbol else list(books)
                elif isinstance(event, NewOrder | CancelOrder | AmendOrder):
                    self.matcher.process(event, events)
                    symbols = [event.symbol]
                else:
                    outputs.append(dead_letter(rec, f"unexpected_event: {type(event).__name__}"))
                    continue
            except Exception as exc:
                outputs.append(handler_error(rec, exc))
                continue
            for ev in events:
                value = encode(ev)
                outputs.append(Output(topic_of(ev), ev.symbol, value, rec.timestamp))  # type: ignore[union-attr]  # every output event has a symbol
                if type(ev) is ExecutionReport and ev.exec_type == "rejected":
                    outputs.append(dead_letter(rec, f"rejected: {ev.reason}"))
            for symbol in symbols:
                book = books.get(symbol)
                if book is None:
                    continue
                touch = book.touch()
                if self._touch.get(symbol) != touch:
                    self._touch[symbol] = touch
                    top = book.top(rec.timestamp, self.depth)
                    outputs.append(Output("bbo", symbol, encode(top), rec.timestamp))
        return outputs


class Sharded:
    """One handler per input partition: the unit a consumer group moves between instances.

    Inputs are co-partitioned (``orders`` partition p holds the symbols whose
    key hashes to p, and ``control`` is broadcast to every partition), so shard
    p's state depends only on partition p of each input. An instance can then
    own any subset of partitions, rebuild exactly the shards it is given and
    drop the ones taken away, and still produce what one instance owning
    everything would. Outputs are keyed by symbol, so each output partition is
    written by one shard only and its order never depends on batching.
    """

    def __init__(self, make_shard: Callable[[int], Handler]) -> None:
        self.make_shard = make_shard
        self.shards: dict[int, Handler] = {}

    def __call__(self, records: list[Record]) -> list[Output]:
        by_partition: dict[int, list[Record]] = {}
        for rec in records:
            by_partition.setdefault(rec.partition, []).append(rec)
        outputs: list[Output] = []
        for part in sorted(by_partition):
            shard = self.shards.get(part)
            if shard is None:
                shard = self.shards[part] = self.make_shard(part)
            outputs.extend(shard(by_partition[part]))
        return outputs

    def retain(self, partitions: Iterable[int]) -> None:
        """Keep only these partitions' shards (the rest were given to another instance)."""
        keep = set(partitions)
        for part in [p for p in self.shards if p not in keep]:
            del self.shards[part]


def shard_count(log: EventLog) -> int:
    """How many shards the live core has: ``orders`` partitions, which ``control`` must match."""
    partitions = log.partitions("orders")
    if log.partitions("control") != partitions:
        raise ValueError("control and orders must have the same number of partitions")
    return partitions


def sharded_matcher(
    securities: Sequence[Security],
    members: Sequence[str] | None,
    partitions: int,
    stp: StpMode = "cancel_resting",
    band_pct: float | None = 20.0,
    depth: int = 5,
) -> Sharded:
    """A matcher per ``orders`` partition, each with the books of the symbols hashed to it."""

    def make(part: int) -> MatcherService:
        mine = [s for s in securities if partition_for(s.symbol, partitions) == part]
        return MatcherService(Matcher(mine, members, stp=stp, band_pct=band_pct), depth)

    return Sharded(make)


def sharded_bars(grace_ns: int) -> Sharded:
    """A bar builder per ``trades`` partition.

    Each partition's trades arrive in event-time order, so a builder per
    partition never sees a trade as late because another partition ran
    ahead: the bars are the same however the partitions' records interleave.
    """
    return Sharded(lambda _: BarService(BarBuilder(grace_ns=grace_ns)))


def bar_builders(service: Sharded) -> list[BarBuilder]:
    """The bar builders of a sharded bar service, by partition."""
    return [s.builder for _, s in sorted(service.shards.items()) if isinstance(s, BarService)]


def matchers(service: Sharded) -> list[Matcher]:
    """The matchers of a sharded matcher service, by partition."""
    return [s.matcher for _, s in sorted(service.shards.items()) if isinstance(s, MatcherService)]


class BarService:
    """trades + control -> bars.1s/1m/3m/5m/15m; late trades -> dlq; close flushes.

    Control is broadcast to every partition, so the same open or close can
    arrive once per partition: advancing time and flushing are idempotent.
    """

    group = "bars"
    inputs = ("control", "trades")

    def __init__(self, builder: BarBuilder) -> None:
        self.builder = builder

    def __call__(self, records: list[Record]) -> list[Output]:
        outputs: list[Output] = []
        events: list[Event] = []
        for rec, event in decoded(records, outputs):
            events.clear()
            try:
                if type(event) is Trade:
                    self.builder.on_trade(event, events)
                elif type(event) is SessionControl:
                    self.builder.advance(event.ts, events)
                    if event.action == "close" and event.symbol is None:
                        self.builder.flush(events)
                else:
                    outputs.append(dead_letter(rec, f"unexpected_event: {type(event).__name__}"))
                    continue
            except Exception as exc:
                outputs.append(handler_error(rec, exc))
                continue
            for ev in events:
                if type(ev) is DeadLetter:
                    ev.partition, ev.offset = rec.partition, rec.offset
                    outputs.append(Output("dlq", rec.key, encode(ev), rec.timestamp))
                else:
                    outputs.append(Output(topic_of(ev), ev.symbol, encode(ev), ev.end))  # type: ignore[union-attr]  # bars only
        events.clear()
        return outputs


class ParticipantsService:
    """executions + bbo + recommendations -> the simulator's and the members' view.

    Recommendations are consumed in the same exactly-once step as the
    executions and book tops, so a restarted driver rebuilds the members'
    pending advice with the rest of their state. They come from outside the
    live core: one that does not decode goes to ``dlq`` instead of stopping
    the step.
    """

    group = "participants"
    inputs = ("executions", "bbo", "recommendations")

    def __init__(self, simulator: MarketSimulator | None, members: Members | None) -> None:
        self.simulator = simulator
        self.members = members
        self._exec = msgspec.json.Decoder(ExecutionReport)
        self._top = msgspec.json.Decoder(BookTop)
        self._rec = msgspec.json.Decoder(Recommendation)

    def __call__(self, records: list[Record]) -> list[Output]:
        sim, members = self.simulator, self.members
        outputs: list[Output] = []
        for rec in merge_by_time(records):
            try:
                if rec.topic == "executions":
                    report = decode_untrusted(rec.value, self._exec)
                    if sim is not None:
                        sim.on_execution(report)
                    if members is not None:
                        members.on_execution(report)
                elif rec.topic == "recommendations":
                    advice = decode_untrusted(rec.value, self._rec)
                    if members is not None:
                        members.on_recommendation(advice)
                elif members is not None:
                    members.on_top(decode_untrusted(rec.value, self._top))
            except MalformedMessage as exc:
                outputs.append(dead_letter(rec, f"undecodable: {exc}"))
            except Exception as exc:
                outputs.append(handler_error(rec, exc))
        return outputs
