"""A day whose log holds poison records (dead-lettered by the live matcher) still backfills:
every asset materialises, the poison lands in raw.dlq with its reasons, every check passes."""

from __future__ import annotations

from datetime import date

import pytest
from dagster import DagsterInstance, materialize
from pyiceberg.expressions import EqualTo

from assets.platform.resources import PlatformResource
from orchestration.definitions import ALL_ASSETS, resources_for
from streaming.services.day import DayConfig, run_day, session_state
from streaming.services.handlers import MatcherService, ParticipantsService
from streaming.transport.base import Output
from tests.support import short_calendar
from tests.support.hostile import corpus

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 20)


def test_a_day_with_poison_in_its_log_backfills(tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETLAKE_CALENDAR_TOML", str(short_calendar(tmp_path)))
    platform = PlatformResource(data_dir=str(tmp_path / "data"))
    log = platform.session_log(DAY)
    cfg = DayConfig(DAY, platform.seed_for(DAY), platform.securities(), platform.members(),
                    platform.calendar())  # fmt: skip
    result = run_day(log, cfg)
    # poison sent during the day by a careless participant, processed by the live services
    _, close_ns = cfg.calendar.session_bounds(DAY)
    hostile = corpus(list(cfg.securities), per_category=1).hostile
    log.produce([Output("orders", "AAPL", line, close_ns - 1_000_000 + i)
                 for i, (_, line) in enumerate(hostile)])  # fmt: skip
    while log.step(MatcherService.group, MatcherService.inputs, result.matcher):
        pass
    feedback = ParticipantsService(result.simulator, result.members)
    while log.step(ParticipantsService.group, ParticipantsService.inputs, feedback):
        pass
    assert session_state(log) == "complete"
    log.close()

    run = materialize(ALL_ASSETS, partition_key=DAY.isoformat(),
                      resources=resources_for(platform), instance=DagsterInstance.ephemeral())  # fmt: skip
    assert run.success
    sim = run.asset_materializations_for_node("simulated_session")[0].metadata
    assert sim["simulated"].value is False  # the day's own log was landed, poison and all
    assert [e.check_name for e in run.get_asset_check_evaluations() if not e.passed] == []
    letters = (
        platform.catalog().load_table("raw.dlq").scan(row_filter=EqualTo("trading_day", DAY))
        .to_arrow().to_pylist()
    )  # fmt: skip
    reasons = [d["reason"] for d in letters if d["source_topic"] == "orders"]
    assert sum(r.startswith("undecodable") for r in reasons) >= 30
    assert any(r.startswith("landing: does not fit raw.orders") for r in reasons)
    assert len(reasons) >= len(hostile)
