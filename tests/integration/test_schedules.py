"""Schedules follow the calendar; the sensor runs a day once its session closed."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import RunRequest, SkipReason, build_schedule_context, build_sensor_context

from orchestration.resources import PlatformResource
from orchestration.schedules import (
    CALENDAR,
    closed_sessions,
    eod_settlement,
    intraday_landing,
    session_closed,
)
from streaming.events import SessionControl, encode
from streaming.transport.base import Output

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")


def _at(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def test_eod_settlement_runs_the_day_after_the_close_and_skips_holidays():
    assert eod_settlement.cron_schedule == "45 15 * * 1,2,3,4,5"
    request = eod_settlement(
        build_schedule_context(scheduled_execution_time=_at(2026, 11, 20, 15, 45))
    )
    assert isinstance(request, RunRequest) and request.partition_key == "2026-11-20"
    holiday = eod_settlement(
        build_schedule_context(scheduled_execution_time=_at(2026, 12, 24, 15, 45))
    )
    assert isinstance(holiday, SkipReason) and "not a trading day" in holiday.skip_message


def test_intraday_landing_only_while_the_session_is_open():
    during = intraday_landing(
        build_schedule_context(scheduled_execution_time=_at(2026, 11, 20, 10, 15))
    )
    assert isinstance(during, RunRequest) and during.partition_key == "2026-11-20"
    after = intraday_landing(
        build_schedule_context(scheduled_execution_time=_at(2026, 11, 20, 15, 45))
    )
    assert isinstance(after, SkipReason)


def test_a_day_counts_as_closed_once_its_control_topic_says_so(tmp_path):
    platform = PlatformResource(data_dir=str(tmp_path))
    days = [date(2026, 11, 19), date(2026, 11, 20)]
    for day, actions in zip(days, (["open", "close"], ["open"]), strict=True):
        log = platform.session_log(day)
        log.create_topics(["control"])
        log.produce([Output("control", None, encode(SessionControl(a, i + 1)), i + 1)
                     for i, a in enumerate(actions)])  # fmt: skip
        log.close()
    assert closed_sessions(platform, days) == [date(2026, 11, 19)]


def test_the_session_closed_sensor_asks_once_per_day(tmp_path):
    platform = PlatformResource(data_dir=str(tmp_path))
    today = datetime.now(BERLIN).date()
    day = CALENDAR.latest_trading_day(today)
    log = platform.session_log(day)
    log.create_topics(["control"])
    log.produce([Output("control", None, encode(SessionControl("close", 1)), 1)])
    log.close()
    context = build_sensor_context(resources={"platform": platform})
    first = list(session_closed(context))
    assert [r.partition_key for r in first] == [day.isoformat()]
    again = list(session_closed(build_sensor_context(cursor=context.cursor,
                                                     resources={"platform": platform})))  # fmt: skip
    assert again == []


def test_a_failed_run_is_recorded_with_its_partition_and_message(tmp_path, monkeypatch):
    from dagster import (
        DagsterInstance,
        DailyPartitionsDefinition,
        asset,
        build_run_status_sensor_context,
        materialize,
    )

    from orchestration.schedules import record_run_failures

    @asset(partitions_def=DailyPartitionsDefinition(start_date="2026-11-01"))
    def broken() -> None:
        raise RuntimeError("the lake is unreachable")

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    instance = DagsterInstance.ephemeral()
    result = materialize([broken], partition_key="2026-11-20", instance=instance,
                         raise_on_error=False)  # fmt: skip
    assert not result.success
    context = build_run_status_sensor_context(
        sensor_name="record_run_failures", dagster_instance=instance,
        dagster_run=result.dagster_run, dagster_event=result.get_run_failure_event(),
    ).for_run_failure()  # fmt: skip
    record_run_failures(context)
    (line,) = (tmp_path / "run_failures.jsonl").read_text().splitlines()
    entry = json.loads(line)
    assert entry["run_id"] == result.run_id
    assert entry["partition"] == "2026-11-20"
    assert "broken" in entry["message"]
