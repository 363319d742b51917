"""The live core's services as processes, configured from settings."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

from orchestration.eventlog import open_event_log
from orchestration.logging import get_logger
from orchestration.settings import Settings
from streaming.bars import BarBuilder
from streaming.matcher import Matcher
from streaming.refdata import load_members, load_securities
from streaming.services.handlers import BarService, MatcherService
from streaming.services.runner import ServiceMetrics, ServiceRunner, serve_http
from streaming.transport.base import TOPICS, Handler


@dataclass(frozen=True)
class ServiceSpec:
    group: str
    inputs: tuple[str, ...]
    make: Callable[[Settings], Callable[[], Handler]]


def _matcher(settings: Settings) -> Callable[[], Handler]:
    securities = load_securities(settings.securities_csv)
    members = [m.member_id for m in load_members(settings.members_csv)]

    def make() -> Handler:
        return MatcherService(
            Matcher(securities, members, stp=settings.stp_mode, band_pct=settings.price_band_pct)
        )

    return make


def _bars(settings: Settings) -> Callable[[], Handler]:
    def make() -> Handler:
        return BarService(BarBuilder(grace_ns=settings.bar_grace_ms * 1_000_000))

    return make


SERVICES: dict[str, ServiceSpec] = {
    "matcher": ServiceSpec(MatcherService.group, MatcherService.inputs, _matcher),
    "bars": ServiceSpec(BarService.group, BarService.inputs, _bars),
}


def run_sidecar(name: str, settings: Settings, port: int, max_records: int) -> None:
    """Run one service until SIGTERM/SIGINT; the current step always completes."""
    spec = SERVICES[name]
    log = open_event_log(settings, read_your_writes=False)  # readers downstream poll
    log.create_topics(TOPICS, settings.kafka_partitions if settings.event_log == "kafka" else 1)
    metrics = ServiceMetrics(name)
    runner = ServiceRunner(log, spec.group, spec.inputs, spec.make(settings), metrics, max_records)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = serve_http(port, metrics, runner.healthy)
    logger = get_logger(f"sidecar.{name}")
    logger.info(
        "service starting", transport=settings.event_log, namespace=settings.namespace, port=port
    )
    try:
        runner.run(stop)
    finally:
        server.shutdown()
        log.close()
        logger.info("service stopped", consumed=metrics.consumed._value.get())
