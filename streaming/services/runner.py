"""Run one service as a long-lived process: rebuild, then consume-process-produce forever.

On start the service rebuilds its state from its committed input
(``recovery.rebuild``), then steps until told to stop; SIGTERM ends it after
the current step, so nothing is half-done. It exposes ``/health`` and
Prometheus ``/metrics`` (consumed, produced per topic, dead letters, consumer
lag, step latency) on a port of its own.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from streaming.services.recovery import rebuild
from streaming.transport.base import EventLog, Handler, Output, Record


class ServiceMetrics:
    """The Prometheus series one service exports."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r, s = self.registry, service
        self.consumed = Counter(
            "marketlake_consumed", "records consumed", ["service"], registry=r
        ).labels(s)
        self._produced = Counter(
            "marketlake_produced", "records produced", ["service", "topic"], registry=r
        )
        self.dead_letters = Counter(
            "marketlake_dead_letters", "records sent to dlq", ["service"], registry=r
        ).labels(s)
        self._lag = Gauge(
            "marketlake_consumer_lag", "records not yet consumed", ["service", "topic"], registry=r
        )
        self.rebuilt = Gauge(
            "marketlake_rebuilt_records", "records replayed to rebuild state", ["service"],
            registry=r,
        ).labels(s)  # fmt: skip
        self.assigned = Gauge(
            "marketlake_assigned_partitions", "input partitions owned", ["service"], registry=r
        ).labels(s)
        self.step_seconds = Histogram(
            "marketlake_step_seconds", "consume-process-produce step latency", ["service"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        ).labels(s)  # fmt: skip
        self.service = s

    def produced(self, topic: str, n: int = 1) -> None:
        self._produced.labels(self.service, topic).inc(n)

    def lag(self, topic: str, value: int) -> None:
        self._lag.labels(self.service, topic).set(value)


def serve_http(
    port: int, metrics: ServiceMetrics, healthy: Callable[[], bool]
) -> ThreadingHTTPServer:
    """``/health`` (200 or 503, JSON) and ``/metrics`` on 127.0.0.1:port, in a thread."""

    class Handler_(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                body, ctype, code = generate_latest(metrics.registry), CONTENT_TYPE_LATEST, 200
            elif self.path.startswith("/health"):
                ok = healthy()
                body = json.dumps({"service": metrics.service, "healthy": ok}).encode()
                ctype, code = "application/json", 200 if ok else 503
            else:
                body, ctype, code = b"not found\n", "text/plain", 404
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler_)
    threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
    return server


class ServiceRunner:
    """Rebuild-then-step loop of one service over one event log."""

    def __init__(
        self,
        log: EventLog,
        group: str,
        inputs: Sequence[str],
        make_handler: Callable[[], Handler],
        metrics: ServiceMetrics,
        max_records: int = 5_000,
        idle_sleep: float = 0.001,  # the transport's step already waits for data
        on_assignment: Callable[[list[tuple[str, int]], int], None] | None = None,
    ) -> None:
        self.log = log
        self.group = group
        self.inputs = tuple(inputs)
        self.make_handler = make_handler
        self.metrics = metrics
        self.max_records = max_records
        self.idle_sleep = idle_sleep
        self.on_assignment = on_assignment
        self._handler: Handler = lambda records: []  # replaced in run()
        self._built: frozenset[tuple[str, int]] = frozenset()
        self.ready = False
        self.last_step = time.monotonic()

    def _counted(self, handler: Handler) -> Handler:
        def counted(records: list[Record]) -> list[Output]:
            outputs = list(handler(records))
            self.metrics.consumed.inc(len(records))
            for out in outputs:
                self.metrics.produced(out.topic)
                if out.topic == "dlq":
                    self.metrics.dead_letters.inc()
            return outputs

        return counted

    def _follow_assignment(self) -> None:
        """Rebuild the partitions just given to this instance; drop those taken away."""
        owned = self.log.assignment(self.group, self.inputs)
        if owned == self._built:
            return
        retain = getattr(self._handler, "retain", None)
        if retain is not None:  # sharded: per-partition state
            retain({p for _, p in owned})
            fresh = owned - self._built
        else:  # one state over all partitions: start it over
            self._handler = self.make_handler()
            fresh = owned
        replayed = rebuild(self.log, self.group, self.inputs, self._handler, partitions=fresh)
        self._built = owned
        self.metrics.rebuilt.inc(replayed)
        self.metrics.assigned.set(len(owned))
        if self.on_assignment is not None:
            self.on_assignment(sorted(owned), replayed)

    def run(self, stop: threading.Event) -> None:
        self._handler = self.make_handler()
        self._built = frozenset()
        next_lag = 0.0
        while not stop.is_set():
            self._follow_assignment()
            self.ready = True
            step = self._counted(self._handler)
            started = time.perf_counter()
            n = self.log.step(self.group, self.inputs, step, self.max_records)
            self.last_step = time.monotonic()
            if n:
                self.metrics.step_seconds.observe(time.perf_counter() - started)
            else:
                stop.wait(self.idle_sleep)
            if self.last_step >= next_lag:
                self._update_lag()
                next_lag = self.last_step + 2.0

    def _update_lag(self) -> None:
        for topic in self.inputs:
            ends = self.log.end_offsets(topic)
            done = self.log.committed(self.group, topic)
            # Kafka ends count a trailing transaction marker: lag is "at least this much"
            owned = [p for p in ends if (topic, p) in self._built]
            self.metrics.lag(topic, sum(max(0, ends[p] - done.get(p, 0) - 1) for p in owned))

    def healthy(self) -> bool:
        return self.ready and time.monotonic() - self.last_step < 60
