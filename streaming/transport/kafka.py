"""The event log on Apache Kafka, exactly once with transactions.

Same interface and guarantees as the embedded SQLite log:

- ``step`` consumes with ``isolation.level=read_committed``, calls the
  handler, then produces its outputs and sends the consumed offsets to the
  same transaction (``send_offsets_to_transaction``) before committing, so a
  crash anywhere leaves all of a step or none of it.
- One active instance per service. In assigned mode (the default) a consumer
  group has one transactional id, derived from the group alone, so a second
  instance of the service fences the first: the fenced one gets
  ``FencedError`` ("another instance of 'matcher' took over (fenced)") at its
  next transaction, or within ``fence_check_s`` when idle, and never commits
  again. Shared mode gives each instance its own id; the consumer group's
  generation fences zombies there (``send_offsets_to_transaction`` with the
  group metadata).
- Transient broker trouble (a restart, a leader change, a lost connection) is
  retried with backoff for up to ``retry_timeout`` seconds. An aborted
  transaction is sent again with the same outputs and offsets (the handler is
  not called twice, so its state stays that of the committed position plus
  one step); a commit that timed out is retried as a commit.
- ``security`` (SASL settings, e.g. ``security.protocol``, ``sasl.mechanism``,
  ``sasl.username``, ``sasl.password``) goes into every client this log builds.
- Partitions are chosen explicitly with the log's own key partitioner
  (``partition_for``), so a key lands in the same partition on both transports.
- Event time is kept in nanoseconds in the ``ts`` header. Topics keep the
  broker's append time as Kafka's own timestamp (``LogAppendTime``), so
  retention counts from when a record was written: a backfilled day of last
  year is kept as long as today's (with event-time timestamps the broker's
  retention sweep deleted it within minutes).

Offsets are Kafka's: transaction markers occupy offsets, so they increase but
are not dense.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from confluent_kafka import (
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # type: ignore[attr-defined]  # the stubs omit re-exports
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from streaming.transport.base import (
    FencedError,
    Handler,
    Output,
    Record,
    Tail,
    UnknownTopicError,
    align,
    target_partition,
)

T = TypeVar("T")
logger = logging.getLogger(__name__)

_TS = "ts"
_QUIET = {"log_level": 3}
_NOT_YET = {  # a new topic's partitions before their leader is known everywhere
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError._NOENT,  # "no leaders found" (list_offsets), also while the broker restarts
}  # errors only; connection chatter stays out of the logs
_TRANSIENT = {  # a broker restarting, a leader moving, a connection lost: wait and retry
    KafkaError.FENCED_LEADER_EPOCH,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_LEADER_EPOCH,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError._TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.CONCURRENT_TRANSACTIONS,
    KafkaError.UNSTABLE_OFFSET_COMMIT,
    KafkaError.NOT_ENOUGH_REPLICAS,
}
_FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
_LOGIN = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}


def _error(exc: BaseException) -> KafkaError | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def fenced(exc: BaseException) -> bool:
    """Was this producer fenced by a newer one with the same transactional id?"""
    err = _error(exc)
    return err is not None and err.code() in _FENCED


def transient(err: KafkaError) -> bool:
    """Worth retrying: the broker will be back, or the leader will be known again."""
    if err.fatal() or err.code() in _FENCED:
        return False
    return err.retriable() or err.code() in _TRANSIENT


def _transient_exc(exc: BaseException) -> bool:
    if isinstance(exc, _Stuck):
        return True
    err = _error(exc)
    return err is not None and (transient(err) or err.code() in _NOT_YET)


class _Stuck(Exception):
    """A librdkafka call that should have timed out did not return."""


def _bounded(call: Callable[[], T], timeout: float) -> T:
    """``call()`` in a helper thread; ``_Stuck`` if it has not returned after ``timeout`` s.

    librdkafka's ``send_offsets_to_transaction`` can wait forever, whatever its
    own timeout, when the group coordinator it cached was dropped from the
    metadata while the broker restarted (librdkafka issue 5511). The stuck
    call keeps its thread; the producer is replaced (``_Txn.renew``).
    """
    box: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append(call())
        except BaseException as exc:  # handed to the caller
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True, name="kafka-call").start()
    if not done.wait(timeout):
        raise _Stuck(f"a Kafka call did not return in {timeout:.0f} s")
    if failure:
        raise failure[0]
    return box[0]


def _await_admin(futures: dict[str, Any], tolerated: int, timeout: float) -> None:
    """Wait for admin requests; the one error code that means "already so" is not a failure."""
    for fut in futures.values():
        try:
            fut.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != tolerated:
                raise


def _flush_quietly(producer: Producer) -> None:
    """Deliver what is queued; a fenced producer has nothing left to deliver (it raises)."""
    try:
        producer.flush(10)
    except KafkaException as exc:
        err = _error(exc)
        if err is None or not err.fatal():
            raise


class _Patience:
    """A run of transient errors met while polling: back off, give up after ``limit`` s."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.since: float | None = None
        self.delay = 0.0
        self.seen = False  # any trouble since the owner last looked (and reset it)

    def bear(self, err: KafkaError) -> None:
        """Sleep before polling again, or raise once the trouble outlasts the limit."""
        self.seen = True
        now = time.monotonic()
        if self.since is None:
            self.since, self.delay = now, 0.05
            logger.warning("kafka: %s; retrying for up to %.0f s", err.str(), self.limit)
        elif now - self.since > self.limit:
            raise KafkaException(err)
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, 2.0)

    def ok(self) -> None:
        if self.since is not None:
            logger.warning("kafka: recovered after %.1f s", time.monotonic() - self.since)
        self.since = None


def ts_header(ns: int) -> list[tuple[str, str | bytes | None]]:
    """Event time in nanoseconds as a header (Kafka's own timestamps are milliseconds)."""
    return [(_TS, ns.to_bytes(8, "big", signed=True))]


def _record(msg: Message) -> Record:
    ns = None
    headers: list[tuple[str, Any]] = list(msg.headers() or [])  # type: ignore[arg-type]  # stubs: headers may be a dict
    for name, value in headers:
        if name == _TS and isinstance(value, bytes):
            ns = int.from_bytes(value, "big", signed=True)
    if ns is None:
        ns = msg.timestamp()[1] * 1_000_000
    key = msg.key()
    return Record(
        msg.topic(),  # type: ignore[arg-type]  # stubs say Optional; never None on a message
        msg.partition(),  # type: ignore[arg-type]  # as topic()
        msg.offset(),  # type: ignore[arg-type]  # as topic()
        key.decode() if key is not None else None,
        msg.value() or b"",
        ns,
    )


def take(consumer: Consumer, limit: int, wait: float) -> list[Message]:
    """Whatever is fetched, up to ``limit``; waits at most ``wait`` for the first message.

    ``Consumer.consume(n, timeout)`` blocks until it has ``n`` messages or the
    timeout passes, which would add the whole timeout to every step of a live
    stream; ``poll`` returns on the first message, then the queue is drained.
    """
    first = consumer.poll(wait)
    if first is None:
        return []
    return [first, *consumer.consume(num_messages=limit - 1, timeout=0)] if limit > 1 else [first]


class _KafkaTail:
    """One consumer assigned to every followed partition, fetching as records commit.

    The polling tail would ask the broker for the end of each partition and
    then assign, fetch and unassign one partition at a time: dozens of round
    trips per cycle. A consumer that stays assigned streams what commits.
    """

    def __init__(self, log: KafkaEventLog, starts: Mapping[tuple[str, int], int]) -> None:
        self._consumer = Consumer(
            {
                **log.client_config(),
                "group.id": f"{log.client_id}.{log.instance}.tail",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": log.fetch_wait_ms,
            }
        )
        self._consumer.assign([TopicPartition(t, p, off) for (t, p), off in starts.items()])

    def poll(self, timeout: float) -> list[Record]:
        out = []
        for msg in take(self._consumer, 10_000, timeout):
            err = msg.error()
            if err is None:
                out.append(_record(msg))
            elif not transient(err) and err.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(err)
        return out

    def close(self) -> None:
        self._consumer.close()


class _Txn:
    """A transactional producer, which a fresh one with the same id can replace.

    After a broker outage librdkafka may keep a coordinator it dropped and
    hang in it (see ``_bounded``); a new producer has no such cache, and its
    ``init_transactions`` fences the old one (and aborts its open
    transaction), so replacing it is safe whenever no transaction of ours is
    meant to commit. ``stale`` asks the next transaction to replace it first.
    """

    def __init__(
        self, log: KafkaEventLog, transactional_id: str, owner: str, config: dict[str, Any]
    ) -> None:
        self.log = log
        self.transactional_id = transactional_id
        self.owner = owner  # named in FencedError: the service, as its callers know it
        self.config = {**log.client_config(), **config, "transactional.id": transactional_id}
        self.stale = False
        self.producer = self._new()

    def _new(self) -> Producer:
        producer = Producer(self.config)
        self.log.retry(lambda: producer.init_transactions(30))
        return producer

    def renew(self) -> None:
        # the old producer may have a call stuck in it: keep it, never destroy it
        self.log._abandoned.append(self.producer)
        self.producer = self._new()
        self.stale = False
        logger.warning("kafka: new transactional producer for %s", self.transactional_id)

    def close(self) -> None:
        _flush_quietly(self.producer)


class _Group:
    """A consumer group's consumer and its transactional producer.

    Assigned mode (the default) owns every partition of its topics. Shared
    mode subscribes, so several instances of a service split the partitions
    (range assignment keeps partition p of co-partitioned topics together);
    the broker's rebalances update ``partitions`` and bump ``generation``,
    which tells ``step`` to drop what it fetched and the service to rebuild.
    """

    def __init__(self, log: KafkaEventLog, group: str, topics: Sequence[str]) -> None:
        self.log = log
        self.group = group
        self.topics = tuple(topics)
        self.patience = _Patience(log.retry_timeout)
        self.fatal: KafkaError | None = None
        base = log.client_config()
        self.consumer = Consumer(
            {
                **base,
                "error_cb": self._client_error,
                "group.id": group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.partition.eof": True,
                "fetch.wait.max.ms": log.fetch_wait_ms,
                "max.partition.fetch.bytes": 8 << 20,  # a 5,000-order step in one fetch
                "partition.assignment.strategy": "range",
                "session.timeout.ms": log.session_timeout_ms,
                "heartbeat.interval.ms": max(500, log.session_timeout_ms // 4),
            }
        )
        # assigned: one id per service, so a second instance fences the first;
        # shared: one per instance (the group's generation fences zombies)
        self.transactional_id = (
            f"{log.client_id}.{group}.{log.instance}" if log.shared_groups else f"{group}.all"
        )
        self.txn = _Txn(
            log,
            self.transactional_id,
            group,
            {"linger.ms": log.linger_ms, "enable.idempotence": True},
        )
        self.last_commit = time.monotonic()
        self.generation = 0
        self.closing = False
        self.partitions: list[tuple[str, int]] = []
        self.position: dict[tuple[str, int], int] = {}
        self.eof_at: dict[tuple[str, int], int | None] = {}
        if log.shared_groups:
            self.consumer.subscribe(
                list(self.topics), on_assign=self._assigned, on_revoke=self._revoked
            )
        else:
            every = [TopicPartition(t, p) for t in self.topics for p in range(log.partitions(t))]
            self._assigned(self.consumer, every)

    def _client_error(self, err: KafkaError) -> None:
        """The consumer lost its broker (a restart, a network fault): librdkafka reconnects
        by itself; the producer is replaced before the next transaction (see ``_Txn``)."""
        self.patience.seen = True
        if err.fatal():
            self.fatal = err

    def _assigned(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        if self.closing:  # a last rebalance while leaving the group: nothing to own
            return
        committed = self.log.retry(lambda: consumer.committed(tps, timeout=30)) if tps else []
        self.partitions = sorted((tp.topic, tp.partition) for tp in committed)
        self.position = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in committed}
        self.eof_at = dict.fromkeys(self.partitions)
        consumer.assign([TopicPartition(t, p, self.position[(t, p)]) for t, p in self.partitions])
        self.generation += 1

    def _revoked(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        consumer.unassign()
        self.partitions, self.position, self.eof_at = [], {}, {}
        self.generation += 1

    def restart(self) -> None:
        """Fetch every owned partition again from its committed position.

        The poll that delivered a new assignment may also have delivered
        messages of it; they were dropped with the batch, so fetching resumes
        from the positions the assignment started with.
        """
        self.consumer.assign(
            [TopicPartition(t, p, self.position[(t, p)]) for t, p in self.partitions]
        )
        self.eof_at = dict.fromkeys(self.partitions)

    def rewind(self, to: dict[tuple[str, int], int]) -> None:
        for (t, p), off in to.items():
            self.consumer.seek(TopicPartition(t, p, off))
            self.position[(t, p)] = off
            self.eof_at[(t, p)] = None

    def close(self) -> None:
        self.closing = True
        self.consumer.close()  # leaves the group at once: the others rebalance now
        self.txn.close()


class KafkaEventLog:
    """An ``EventLog`` on a Kafka cluster (``bootstrap`` as host:port[,host:port...])."""

    def __init__(
        self,
        bootstrap: str,
        client_id: str = "marketlake",
        retention_hours: int = 168,
        idle_wait: float = 2.0,
        read_your_writes: bool = True,
        shared_groups: bool = False,
        instance: str = "0",
        session_timeout_ms: int = 6_000,
        linger_ms: int = 2,
        fetch_wait_ms: int = 20,
        security: Mapping[str, str] | None = None,
        retry_timeout: float = 300.0,
        fence_check_s: float = 5.0,
    ) -> None:
        """``shared_groups``: several instances of a service split its input partitions.

        ``instance`` names this instance (unique per running copy of a
        service in shared mode, where its transactional id fences a previous
        incarnation; in assigned mode the service's one id fences any other).
        ``security``: client settings merged into every consumer, producer
        and admin client (SASL login). ``retry_timeout``: how long transient
        broker errors are retried before they are raised. ``fence_check_s``:
        an idle assigned-mode service checks this often that it was not fenced.
        """
        self.bootstrap = bootstrap
        self.security = dict(security or {})
        self.retry_timeout = retry_timeout
        self.fence_check_s = fence_check_s
        self.shared_groups = shared_groups
        self.instance = instance
        self.session_timeout_ms = session_timeout_ms
        self.linger_ms = linger_ms
        self.fetch_wait_ms = fetch_wait_ms
        self.read_your_writes = read_your_writes
        self.client_id = client_id
        self.retention_hours = retention_hours
        self.idle_wait = idle_wait
        self._login_failed: KafkaError | None = None
        admin: dict[str, Any] = {**self.client_config(), "error_cb": self._admin_error}
        self._admin = AdminClient(admin)
        self._partitions: dict[str, int] = {}
        self._groups: dict[str, _Group] = {}
        self._offset_readers: dict[str, Consumer] = {}
        self._txn: _Txn | None = None
        self._abandoned: list[Producer] = []  # replaced producers (a call may be stuck in one)
        self._reader = Consumer(
            {
                **self.client_config(),
                "group.id": f"{client_id}.reader",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            }
        )

    def client_config(self) -> dict[str, Any]:
        """What every client of this log starts from: brokers, login, quiet logs."""
        return {"bootstrap.servers": self.bootstrap, **self.security, **_QUIET}

    def _admin_error(self, err: KafkaError) -> None:
        if err.code() in _LOGIN:  # a wrong login is not going to get better: say so now
            self._login_failed = err

    def retry(self, call: Callable[[], T]) -> T:
        """``call()``, again with backoff while it fails with a transient Kafka error
        (for up to ``retry_timeout`` s); a refused login is raised at once."""

        def guarded() -> T:
            self._admin.poll(0)  # serves the admin client's error callback
            if self._login_failed is not None:
                raise KafkaException(self._login_failed)
            return call()

        def note(state: RetryCallState) -> None:
            if state.attempt_number == 1 and state.outcome is not None:
                logger.warning(
                    "kafka: %s; retrying for up to %.0f s",
                    state.outcome.exception(),
                    self.retry_timeout,
                )

        for attempt in Retrying(
            retry=retry_if_exception(_transient_exc),
            wait=wait_exponential(multiplier=0.05, max=2.0),
            stop=stop_after_delay(self.retry_timeout),
            before_sleep=note,
            reraise=True,
        ):
            with attempt:
                return guarded()
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    # -- topics ----------------------------------------------------------------------
    def create_topics(self, topics: Iterable[str], partitions: int = 1) -> None:
        names = list(topics)
        known = self.retry(lambda: self._admin.list_topics(timeout=10)).topics
        wanted = [t for t in names if t not in known]
        if wanted:
            config = {
                "retention.ms": str(self.retention_hours * 3_600_000),
                # retention counts from when a record was written, not from its event
                # time: a simulated day of last year must not be deleted on arrival
                "message.timestamp.type": "LogAppendTime",
            }
            futures = self._admin.create_topics(
                [NewTopic(t, partitions, 1, config=config) for t in wanted]
            )
            _await_admin(futures, KafkaError.TOPIC_ALREADY_EXISTS, 30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            md = self.retry(lambda: self._admin.list_topics(timeout=10))
            if all(t in md.topics and md.topics[t].partitions for t in names):
                break
            time.sleep(0.2)

    def partitions(self, topic: str) -> int:
        n = self._partitions.get(topic)
        if n is None:
            listed = self.retry(lambda: self._admin.list_topics(topic=topic, timeout=10))
            md = listed.topics.get(topic)
            if md is None or md.error is not None or not md.partitions:
                raise UnknownTopicError(f"unknown topic {topic!r}; create it first")
            n = self._partitions[topic] = len(md.partitions)
        return n

    # -- writing ---------------------------------------------------------------------
    def _send(self, producer: Producer, outputs: Sequence[Output]) -> dict[tuple[str, int], int]:
        """Produce inside the open transaction; returns the last offset per partition.

        Only each partition's last message asks for a delivery report: an
        idempotent producer delivers a partition's messages in order, so its
        offset is the partition's last, and 400k callbacks a second are saved.
        """
        last: dict[tuple[str, int], int] = {}

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                last[(msg.topic() or "", msg.partition() or 0)] = msg.offset() or 0

        partitions = [target_partition(out, self.partitions(out.topic)) for out in outputs]
        final = {
            (out.topic, part): i
            for i, (out, part) in enumerate(zip(outputs, partitions, strict=True))
        }
        is_final = set(final.values())
        produce = producer.produce
        for i, (out, part) in enumerate(zip(outputs, partitions, strict=True)):
            key = out.key.encode() if out.key is not None else None
            ts = out.timestamp
            callback = delivered if i in is_final else None
            try:
                produce(out.topic, out.value, key, part, callback,
                        timestamp=max(ts // 1_000_000, 1), headers=ts_header(ts))  # fmt: skip
            except BufferError:  # local queue full: let deliveries drain, then retry once
                producer.poll(1.0)
                produce(out.topic, out.value, key, part, callback,
                        timestamp=max(ts // 1_000_000, 1), headers=ts_header(ts))  # fmt: skip
            if not i & 255:
                # serving delivery reports as they come keeps the final flush short
                # (measured: never polling raised p99 at 10k orders/s by half)
                producer.poll(0)
        if outputs and producer.flush(60) != 0:
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "messages not delivered"))
        return last

    def _await_visible(self, last: dict[tuple[str, int], int], timeout: float = 30.0) -> None:
        """Wait until read-committed consumers can see what a committed transaction wrote.

        ``commit_transaction`` returns before the commit markers are written,
        so without this a reader could miss our own writes for a moment; the
        embedded log never does, and the contract says they are readable.
        Long-running services, whose readers poll anyway, switch it off
        (``read_your_writes=False``) to save the round trips.
        """
        if not self.read_your_writes:
            return
        deadline = time.monotonic() + timeout
        pending = dict(last)
        while pending:
            ends = self._ends(list(pending))
            pending = {tp: off for tp, off in pending.items() if ends[tp] <= off}
            if not pending:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"committed messages not visible after {timeout}s: {pending}")
            time.sleep(0.002)

    def _transact(
        self,
        txn: _Txn,
        outputs: Sequence[Output],
        offsets: Sequence[TopicPartition] = (),
        consumer: Consumer | None = None,
        verify: Callable[[], None] | None = None,
    ) -> dict[tuple[str, int], int]:
        """Produce ``outputs`` (and commit ``offsets`` for ``consumer``'s group) in one
        transaction, sent again from the start while it fails transiently.

        An aborted attempt leaves nothing readable (consumers read committed),
        so sending the same outputs and offsets again commits them exactly
        once. A stale producer is replaced first, then ``verify`` checks that
        no other instance committed meanwhile. ``FencedError`` when a newer
        instance holds the transactional id.
        """

        def attempt() -> dict[tuple[str, int], int]:
            if txn.stale:
                txn.renew()
                if verify is not None:
                    verify()
            producer = txn.producer
            producer.begin_transaction()
            try:
                written = self._send(producer, outputs)
                if offsets:
                    assert consumer is not None
                    metadata = consumer.consumer_group_metadata()
                    _bounded(
                        lambda: producer.send_offsets_to_transaction(list(offsets), metadata, 10),
                        20,
                    )
                self._commit(producer)
            except _Stuck:
                logger.warning(
                    "kafka: a transaction hung (%s); a new producer takes over", txn.owner
                )
                txn.stale = True  # not aborted: the new producer's init aborts it
                raise
            except KafkaException as exc:
                if fenced(exc):
                    raise FencedError(txn.owner) from None
                err = _error(exc)
                if err is not None and transient(err):
                    logger.warning("kafka: transaction failed (%s); sending it again", err.str())
                self._abort(producer, txn.owner)
                raise
            except Exception:
                self._abort(producer, txn.owner)
                raise
            return written

        return self.retry(attempt)

    def _commit(self, producer: Producer) -> None:
        """Commit; a retriable failure (a timeout) is retried as a commit, never aborted."""

        def retriable(exc: BaseException) -> bool:
            err = _error(exc)
            return err is not None and err.retriable() and not err.fatal()

        for attempt in Retrying(
            retry=retry_if_exception(retriable),
            wait=wait_exponential(multiplier=0.05, max=2.0),
            stop=stop_after_delay(self.retry_timeout),
            reraise=True,
        ):
            with attempt:
                producer.commit_transaction(60)

    def _abort(self, producer: Producer, owner: str) -> None:
        try:
            self.retry(lambda: producer.abort_transaction(30))
        except KafkaException as exc:
            if fenced(exc):
                raise FencedError(owner) from None
            raise

    def produce(self, outputs: Sequence[Output]) -> dict[tuple[str, int], int]:
        if self._txn is None:
            # one transactional id per writer role: the exchange's driver and its gateway
            # write one namespace, and a shared id made each fence the other in turn
            owner = f"{self.client_id}.{self.instance}.producer"
            self._txn = _Txn(self, owner, owner, {"linger.ms": 2})
        last = self._transact(self._txn, outputs)
        self._await_visible(last)
        return {tp: off + 1 for tp, off in last.items()}

    # -- reading ---------------------------------------------------------------------
    def tail(self, starts: Mapping[tuple[str, int], int]) -> Tail:
        return _KafkaTail(self, starts)

    def read(
        self, topic: str, partition: int = 0, start: int = 0, end: int | None = None
    ) -> Iterator[Record]:
        self.partitions(topic)
        high = self._high(topic, partition)
        stop = high if end is None else min(end, high)
        if start >= stop:
            return
        self._reader.assign([TopicPartition(topic, partition, start)])
        patience = _Patience(self.retry_timeout)
        try:
            while True:
                msgs = take(self._reader, 10_000, 1.0)
                if not msgs:
                    continue
                for msg in msgs:
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            return
                        if not transient(err):
                            raise KafkaException(err)
                        patience.bear(err)  # the consumer resumes where it was
                        continue
                    patience.ok()
                    off = msg.offset()
                    assert off is not None
                    if off >= stop:
                        return
                    yield _record(msg)
                    if off + 1 >= stop:
                        return
        finally:
            self._reader.unassign()

    def _ends(
        self,
        tps: Sequence[tuple[str, int]],
        isolation: IsolationLevel = IsolationLevel.READ_COMMITTED,
    ) -> dict[tuple[str, int], int]:
        """Last stable offsets (read committed: what consumers can see) or high watermarks."""
        if not tps:
            return {}
        request = {TopicPartition(t, p): OffsetSpec.latest() for t, p in tps}  # type: ignore[no-untyped-call]  # untyped in the stubs

        def ask() -> dict[tuple[str, int], int]:
            futures = self._admin.list_offsets(
                request, isolation_level=isolation, request_timeout=10
            )
            return {(tp.topic, tp.partition): int(f.result(10).offset) for tp, f in futures.items()}

        # a new topic's leaders take a moment to be known; a restarting broker longer
        return self.retry(ask)

    def _high(self, topic: str, partition: int) -> int:
        return self._ends([(topic, partition)])[(topic, partition)]

    def end_offsets(self, topic: str) -> dict[int, int]:
        ends = self._ends([(topic, p) for p in range(self.partitions(topic))])
        return {p: off for (_, p), off in sorted(ends.items())}

    def committed(self, group: str, topic: str) -> dict[int, int]:
        consumer = self._offset_readers.get(group)
        if consumer is None:  # one per group, kept: barriers ask often
            consumer = self._offset_readers[group] = Consumer(
                {**self.client_config(), "group.id": group, "isolation.level": "read_committed"}
            )
        reader = consumer
        wanted = [TopicPartition(topic, p) for p in range(self.partitions(topic))]
        tps = self.retry(lambda: reader.committed(wanted, timeout=30))
        return {tp.partition: max(tp.offset, 0) for tp in tps}

    # -- exactly-once processing -------------------------------------------------------
    def _group(self, group: str, topics: Sequence[str]) -> _Group:
        ctx = self._groups.get(group)
        if ctx is None or ctx.topics != tuple(topics):
            if ctx is not None:
                ctx.close()
            ctx = self._groups[group] = _Group(self, group, topics)
        return ctx

    def step(
        self, group: str, topics: Sequence[str], handler: Handler, max_records: int = 10_000
    ) -> int:
        ctx = self._group(group, topics)
        if not ctx.partitions:  # shared group between assignments: polling joins it
            generation = ctx.generation
            ctx.consumer.poll(0.1)
            if ctx.generation != generation:
                ctx.restart()  # that poll may have delivered (and so dropped) messages
            return 0
        generation = ctx.generation
        start = dict(ctx.position)
        reads = self._fetch(ctx, max_records)
        if ctx.fatal is not None:
            raise KafkaException(ctx.fatal)
        if ctx.patience.seen:  # the broker was away: its producer may hold stale coordinators
            ctx.patience.seen = False
            ctx.txn.stale = True
        if ctx.generation != generation:  # rebalanced while fetching: start from committed
            ctx.restart()
            return 0
        # a partition that has not reported its end may hold more: it bounds the others
        capped = [r[-1].timestamp for tp, r in reads.items() if r and ctx.eof_at[tp] is None]
        ordered = [reads[tp] for tp in ctx.partitions if reads.get(tp)]
        records = align(ordered, min(capped) if capped else None)
        if not records:
            self._check_fencing(ctx)
            return 0
        kept: dict[tuple[str, int], int] = {}
        counts: dict[tuple[str, int], int] = {}
        for rec in records:
            tp = (rec.topic, rec.partition)
            kept[tp] = rec.offset + 1
            counts[tp] = counts.get(tp, 0) + 1
        try:
            outputs = handler(records)
            offsets = [TopicPartition(t, p, off) for (t, p), off in kept.items()]
            written = self._transact(
                ctx.txn, outputs, offsets, ctx.consumer, lambda: self._verify(ctx, start)
            )
        except Exception:
            ctx.rewind(start)  # nothing committed: the same records are consumed again
            raise
        ctx.last_commit = time.monotonic()
        self._await_visible(written)
        ctx.position.update(kept)
        # records read beyond what was kept (cap, alignment) are read again next step
        ctx.rewind({tp: kept.get(tp, start[tp]) for tp in ctx.partitions
                    if len(reads[tp]) != counts.get(tp, 0)})  # fmt: skip
        return len(records)

    def _check_fencing(self, ctx: _Group) -> None:
        """An idle assigned-mode service: has another instance taken its transactional id?

        A fenced producer learns it only from the transaction coordinator, so
        every ``fence_check_s`` without a commit this commits the positions it
        already committed (an offsets-only transaction: nothing to read
        changes), which fails with ``FencedError`` once another instance of the
        service has started.
        """
        if self.shared_groups or time.monotonic() - ctx.last_commit < self.fence_check_s:
            return
        offsets = [TopicPartition(t, p, ctx.position[(t, p)]) for t, p in ctx.partitions]
        position = dict(ctx.position)
        self._transact(ctx.txn, [], offsets, ctx.consumer, lambda: self._verify(ctx, position))
        ctx.last_commit = time.monotonic()

    def _verify(self, ctx: _Group, start: dict[tuple[str, int], int]) -> None:
        """After a new producer fenced any other: is the committed position still ours?

        A replaced producer's ``init_transactions`` fenced whoever else held
        the id; if such an instance committed since our last commit, our state
        and batch are behind the log, so this instance stops (FencedError).
        """
        tps = [TopicPartition(t, p) for t, p in ctx.partitions]
        committed = self.retry(lambda: ctx.consumer.committed(tps, timeout=30))
        now = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in committed}
        if any(now.get(tp) != start[tp] for tp in ctx.partitions):
            raise FencedError(ctx.group)

    def _fetch(self, ctx: _Group, max_records: int) -> dict[tuple[str, int], list[Record]]:
        """What is available now: up to ``max_records`` per partition.

        Returns as soon as the fetched data is drained (a live stream never
        waits to fill a batch); with nothing new it returns empty only after
        the broker confirms there is nothing beyond each partition's end.
        """
        reads: dict[tuple[str, int], list[Record]] = {tp: [] for tp in ctx.partitions}
        deadline = time.monotonic() + self.idle_wait
        patience = ctx.patience
        while True:
            generation = ctx.generation
            msgs = take(ctx.consumer, max_records, 0.0 if any(reads.values()) else 0.05)
            if ctx.generation != generation:
                return {}
            for msg in msgs:
                err = msg.error()
                tp = (msg.topic() or "", msg.partition() or 0)
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        ctx.eof_at[tp] = msg.offset()
                        patience.ok()
                        continue
                    if not transient(err):
                        raise KafkaException(err)
                    patience.bear(err)  # the consumer resumes on its own once it can
                    continue
                patience.ok()
                ctx.eof_at[tp] = None
                reads[tp].append(_record(msg))
            unknown = any(not reads[tp] and ctx.eof_at[tp] is None for tp in ctx.partitions)
            if any(reads.values()):
                full = all(
                    len(reads[tp]) >= max_records or ctx.eof_at[tp] is not None
                    for tp in ctx.partitions
                )
                if full or (not msgs and not unknown):
                    return reads
            elif not unknown and not self._more_than_seen(ctx):
                return reads
            if time.monotonic() > deadline:
                return reads

    def _more_than_seen(self, ctx: _Group) -> bool:
        """Has anything been committed beyond where each partition last reported its end?"""
        if any(ctx.eof_at[tp] is None for tp in ctx.partitions):
            return True
        ends = self._ends(ctx.partitions)
        return any(ends[tp] > (ctx.eof_at[tp] or 0) for tp in ctx.partitions)

    def assignment(self, group: str, topics: Sequence[str]) -> frozenset[tuple[str, int]]:
        return frozenset(self._group(group, topics).partitions)

    def discard(self, topics: Sequence[str], groups: Sequence[str]) -> None:
        """Delete and re-create ``topics`` (same partitions), then delete ``groups``.

        Kafka has no "truncate": the topics are deleted, and created again
        once the broker no longer lists them. The groups must have no live
        member (their processes are gone: this runs before a session is redone).
        """
        counts = {t: self.partitions(t) for t in topics}
        for ctx in [g for name, g in self._groups.items() if name in groups]:
            ctx.close()
        self._groups = {k: v for k, v in self._groups.items() if k not in groups}
        _await_admin(
            self._admin.delete_topics(list(counts), operation_timeout=30),
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            60,
        )
        deadline = time.monotonic() + 60
        while any(t in self._admin.list_topics(timeout=10).topics for t in counts):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics {sorted(counts)} still listed after deletion")
            time.sleep(0.2)
        self._partitions = {k: v for k, v in self._partitions.items() if k not in counts}
        for n in sorted(set(counts.values())):
            self.create_topics([t for t, c in counts.items() if c == n], n)
        for name in groups:
            reader = self._offset_readers.pop(name, None)
            if reader is not None:
                reader.close()
        known = {g.group_id for g in self._admin.list_consumer_groups().result(30).valid}
        wanted = [g for g in groups if g in known]
        if wanted:
            for fut in self._admin.delete_consumer_groups(wanted, request_timeout=30).values():
                fut.result(60)

    def settle(self, topics: Sequence[str], timeout: float = 30.0) -> None:
        """Wait until each partition's last stable offset reaches its high watermark."""
        tps = [(t, p) for t in topics for p in range(self.partitions(t))]
        deadline = time.monotonic() + timeout
        while True:
            stable = self._ends(tps)
            high = self._ends(tps, IsolationLevel.READ_UNCOMMITTED)
            if stable == high:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"transactions still open on {sorted(topics)} after {timeout}s")
            time.sleep(0.002)

    def close(self) -> None:
        for ctx in self._groups.values():
            ctx.close()
        self._groups.clear()
        for consumer in self._offset_readers.values():
            consumer.close()
        self._offset_readers.clear()
        if self._txn is not None:
            self._txn.close()
        self._reader.close()
