"""The Kafka benchmark: exactly-once throughput and order-to-execution latency.

1. Sustained throughput: the standard order mix is put on ``orders``, then the
   matcher drains it with transactional steps (read committed, outputs and
   offsets committed together); orders/s = orders / drain time.
2. Latency at a fixed offered load: a matcher sidecar process runs; a paced
   producer offers orders at ``rate`` per second stamped with the wall clock;
   a read-committed consumer of ``executions`` measures how long each order
   took to its acknowledgement being committed and visible.

Each run uses its own namespace, so runs never see each other's data.
``security`` is the SASL login every client uses (the stack's broker requires
one); ``env`` holds the MARKETLAKE_* settings that point the matcher process at
the same broker with the same login (a credentials file, never a password on
its command line).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
from confluent_kafka import Consumer, Producer, TopicPartition

from orchestration.bench.workload import standard_mix
from streaming.events import ExecutionReport, SessionControl, encode
from streaming.matcher import Matcher
from streaming.refdata import load_securities
from streaming.services.handlers import MatcherService
from streaming.topics import TOPICS
from streaming.transport.base import Output, partition_for
from streaming.transport.kafka import KafkaEventLog, take, ts_header
from streaming.transport.namespace import NamespacedEventLog

MEMBERS = [f"USR{i:02d}" for i in range(1, 11)]
WARMUP_S = 2.0
"""Seconds of offered load before latencies count (connections, first transaction)."""


def _log(bootstrap: str, ns: str, security: Mapping[str, str] | None) -> NamespacedEventLog:
    log = NamespacedEventLog(KafkaEventLog(bootstrap, client_id=ns, security=security), ns)
    log.create_topics(TOPICS, 1)
    return log


def throughput(
    bootstrap: str,
    n: int,
    seed: int,
    max_records: int = 5_000,
    security: Mapping[str, str] | None = None,
) -> dict[str, float]:
    ns = f"bench{uuid.uuid4().hex[:8]}"
    log = _log(bootstrap, ns, security)
    secs = load_securities()[:20]
    requests = standard_mix(secs, MEMBERS, n, seed=seed, start_ts=10)
    log.produce([Output("control", None, encode(SessionControl("open", 1)), 1)])
    for i in range(0, n, 50_000):
        chunk = requests[i : i + 50_000]
        log.produce([Output("orders", r.symbol, encode(r), r.ts) for r in chunk])
    handler = MatcherService(Matcher(secs, MEMBERS, band_pct=None))
    consumed = steps = 0
    start = time.perf_counter()
    while consumed < n + 1:
        got = log.step("matcher", MatcherService.inputs, handler, max_records)
        consumed += got
        steps += got > 0
    elapsed = time.perf_counter() - start
    log.close()
    return {"orders": n, "seconds": elapsed, "orders_per_s": n / elapsed, "transactions": steps}


def latency(
    bootstrap: str,
    rate: int,
    seconds: float,
    seed: int,
    port: int = 19465,
    security: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, float]:
    ns = f"bench{uuid.uuid4().hex[:8]}"
    log = _log(bootstrap, ns, security)
    log.produce([Output("control", None, encode(SessionControl("open", 1)), 1)])
    child_env = {
        **os.environ,
        **(env or {}),
        "MARKETLAKE_EVENT_LOG": "kafka",
        "MARKETLAKE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MARKETLAKE_NAMESPACE": ns,
        "MARKETLAKE_PRICE_BAND_PCT": "1000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "sidecar", "matcher", "--port", str(port),
         "--max-records", "2000"],
        env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_healthy(port, proc)
        return _measure(bootstrap, ns, rate, seconds, seed, dict(security or {}))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()


def _wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the matcher sidecar exited during start")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the matcher sidecar did not become healthy")


def _measure(
    bootstrap: str, ns: str, rate: int, seconds: float, seed: int, security: dict[str, str]
) -> dict[str, float]:
    secs = load_securities()[:20]
    total = int(rate * (seconds + WARMUP_S))
    requests = standard_mix(secs, MEMBERS, total, seed=seed)
    latencies: list[int] = []
    acked = threading.Event()
    ready = threading.Event()
    measure_from = [1 << 62]
    decoder = msgspec.json.Decoder(ExecutionReport)

    def consume() -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                **security,
                "group.id": f"{ns}.bench",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 5,
                "log_level": 3,
            }
        )
        # assigned, not subscribed: no group join delays the first acknowledgements
        consumer.assign([TopicPartition(f"{ns}.executions", 0, 0)])
        consumer.consume(1, 0.5)
        ready.set()
        firsts = 0
        deadline = time.monotonic() + seconds + WARMUP_S + 60
        while firsts < total and time.monotonic() < deadline:
            # poll, then drain: consume(n, timeout) would hold messages until it has n
            for msg in take(consumer, 1000, 0.1):
                if msg.error():
                    continue
                now = time.time_ns()
                report = decoder.decode(msg.value() or b"")
                if report.request is not None:
                    firsts += 1
                    if report.ts >= measure_from[0]:  # warm-up acknowledgements do not count
                        latencies.append(now - report.ts)
        consumer.close()
        acked.set()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    ready.wait(30)
    producer = Producer(
        {"bootstrap.servers": bootstrap, **security, "linger.ms": 1, "log_level": 3}
    )
    measure_from[0] = time.time_ns() + int(WARMUP_S * 1e9)
    topic = f"{ns}.orders"
    tick = 0.005
    per_tick = max(1, int(rate * tick))
    start = time.perf_counter()
    for i in range(0, total, per_tick):
        due = start + (i // per_tick) * tick
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        for req in requests[i : i + per_tick]:
            now = time.time_ns()
            stamped = msgspec.structs.replace(req, ts=now)
            producer.produce(
                topic, encode(stamped), key=req.symbol.encode(),
                partition=partition_for(req.symbol, 1), headers=ts_header(now),
            )  # fmt: skip
        producer.poll(0)
    offered = total / (time.perf_counter() - start)
    producer.flush(30)
    acked.wait(seconds + 90)
    lat = sorted(latencies)
    measured = len(lat)
    if not lat:
        raise RuntimeError("no acknowledgements were read")
    return {
        "offered_per_s": offered,
        "acknowledged": measured,
        "p50_ms": lat[len(lat) // 2] / 1e6,
        "p99_ms": lat[int(len(lat) * 0.99)] / 1e6,
        "max_ms": lat[-1] / 1e6,
    }


def bench_kafka(
    bootstrap: str,
    n: int,
    rate: int,
    seconds: float,
    seed: int,
    security: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "throughput": throughput(bootstrap, n, seed, security=security),
        "latency": latency(bootstrap, rate, seconds, seed, security=security, env=env),
    }
