"""The matcher benchmark: in process, one core, full validation and reports.

Throughput is measured without per-request timing; latency percentiles come
from a second pass that times every request (so timer overhead does not
depress the throughput figure). Generation is excluded from both.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence

from orchestration.bench.workload import standard_mix
from streaming.events import Event
from streaming.matcher import Matcher
from streaming.refdata import Security

DRAIN_EVERY = 1_000
"""Requests per output batch: the reports are handed on and the buffer reused."""


def bench_matcher(
    securities: Sequence[Security],
    members: Sequence[str],
    n: int = 1_000_000,
    seed: int = 1,
    symbols: int = 20,
) -> dict[str, float]:
    secs = list(securities)[:symbols]
    requests = standard_mix(secs, members, n, seed=seed)

    matcher = Matcher(secs, members, status="open")
    out: list[Event] = []
    process = matcher.process
    events = 0
    gc.collect()
    start = time.perf_counter()
    for i in range(
        0, n, DRAIN_EVERY
    ):  # a service ships each batch's reports, then reuses the buffer
        for req in requests[i : i + DRAIN_EVERY]:
            process(req, out)
        events += len(out)
        out.clear()
    elapsed = time.perf_counter() - start

    matcher = Matcher(secs, members, status="open")
    lat = [0] * n
    clock = time.perf_counter_ns
    process = matcher.process
    sink: list[Event] = []
    gc.collect()
    for i, req in enumerate(requests):
        t0 = clock()
        process(req, sink)
        lat[i] = clock() - t0
        if len(sink) > DRAIN_EVERY:
            sink.clear()
    lat.sort()
    return {
        "requests": n,
        "symbols": len(secs),
        "orders_per_s": n / elapsed,
        "events": events,
        "p50_us": lat[n // 2] / 1000,
        "p99_us": lat[int(n * 0.99)] / 1000,
        "p999_us": lat[int(n * 0.999)] / 1000,
    }
