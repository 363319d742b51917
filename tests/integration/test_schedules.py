"""Schedules follow the calendar; the sensor runs a day once its session closed."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import RunRequest, SkipReason, build_schedule_context, build_sensor_context

from assets.platform.resources import PlatformResource
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


def _fail(instance, partition: str | None, message: str = "the lake is unreachable"):
    """A real failed Dagster run in ``instance`` (a partitioned asset raising, or not)."""
    from dagster import DailyPartitionsDefinition, asset, materialize

    if partition is None:

        @asset(name="unpartitioned_broken")
        def broken_now() -> None:
            raise RuntimeError(message)

        return materialize([broken_now], instance=instance, raise_on_error=False)

    @asset(partitions_def=DailyPartitionsDefinition(start_date="2026-11-01"))
    def broken() -> None:
        raise RuntimeError(message)

    return materialize([broken], partition_key=partition, instance=instance,
                       raise_on_error=False)  # fmt: skip


def _run_failures(platform: PlatformResource, day: date) -> list[dict]:
    from lake.row_filters import equal_to

    table = platform.catalog().load_table("raw.run_failures")
    return table.scan(row_filter=equal_to("trading_day", day)).to_arrow().to_pylist()


def _failure_context(instance, result, platform: PlatformResource):
    """The run-failure sensor's context for ``result``'s failed run, as the daemon builds it."""
    from dagster import build_run_status_sensor_context

    return build_run_status_sensor_context(
        sensor_name="record_run_failures", dagster_instance=instance,
        dagster_run=result.dagster_run, dagster_event=result.get_run_failure_event(),
        resources={"platform": platform},
    ).for_run_failure()  # fmt: skip


def test_a_failed_run_is_recorded_on_file_and_in_the_lake(tmp_path, monkeypatch):
    from dagster import DagsterInstance

    from orchestration.schedules import record_run_failures

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    platform = PlatformResource(data_dir=str(tmp_path / "data"))
    instance = DagsterInstance.ephemeral()
    result = _fail(instance, "2026-11-20")
    assert not result.success
    record_run_failures(_failure_context(instance, result, platform))
    (line,) = (tmp_path / "run_failures.jsonl").read_text().splitlines()
    entry = json.loads(line)
    assert entry["run_id"] == result.run_id
    assert entry["partition"] == "2026-11-20"
    assert "broken" in entry["message"]
    # and in the lake, on the day the run computed, with the failed step and its error
    (row,) = _run_failures(platform, date(2026, 11, 20))
    assert row["run_id"] == result.run_id
    assert row["job"] == result.dagster_run.job_name
    assert row["partition"] == "2026-11-20"
    assert row["steps"] == "broken"
    assert "RuntimeError" in row["message"] and "the lake is unreachable" in row["message"]
    ended = instance.get_run_record_by_id(result.run_id).end_time
    assert abs(row["failed_at"] / 1e9 - ended) < 1e-3

    # a second failure of the same day: the day is published again with both, none twice
    second = _fail(instance, "2026-11-20", "disk full")
    record_run_failures(_failure_context(instance, second, platform))
    rows = _run_failures(platform, date(2026, 11, 20))
    assert sorted(r["run_id"] for r in rows) == sorted([result.run_id, second.run_id])
    assert [r["run_id"] for r in rows] == sorted([r["run_id"] for r in rows],
                                                 key=lambda i: i != result.run_id)  # fmt: skip


def test_the_run_failures_asset_publishes_the_day_from_run_storage(tmp_path):
    from dagster import DagsterInstance, materialize

    from assets.health.health_assets import run_failures
    from assets.health.run_failures import run_day

    platform = PlatformResource(data_dir=str(tmp_path / "data"))
    instance = DagsterInstance.ephemeral()
    day, other = "2026-11-20", "2026-11-23"
    failed = _fail(instance, day)
    _fail(instance, other)
    unpartitioned = _fail(instance, None, "no partition")
    today = run_day(instance.get_run_record_by_id(unpartitioned.run_id), CALENDAR.tz)

    ok = materialize([run_failures], partition_key=day, instance=instance,
                     resources={"platform": platform})  # fmt: skip
    assert ok.success
    (row,) = _run_failures(platform, date.fromisoformat(day))
    assert row["run_id"] == failed.run_id  # not the other day's, not the unpartitioned one

    # a day with no failures is published too (empty), so the table exists for the dashboards
    empty_day = "2026-11-24"
    assert materialize([run_failures], partition_key=empty_day, instance=instance,
                       resources={"platform": platform}).success  # fmt: skip
    assert _run_failures(platform, date.fromisoformat(empty_day)) == []

    # a run without a partition belongs to the day it failed, in exchange time
    from assets.health.run_failures import run_failure_rows

    rows = run_failure_rows(instance, today, CALENDAR.tz).to_pylist()
    assert unpartitioned.run_id in [r["run_id"] for r in rows]
    assert next(r for r in rows if r["run_id"] == unpartitioned.run_id)["partition"] is None


def test_polling_sensors_fetch_each_source_type_on_its_interval():
    from orchestration.definitions import defs
    from orchestration.schedules import poll_request, polling_sensors

    by_name = {s.name: s for s in polling_sensors}
    assert set(by_name) == {f"poll_{t}" for t in
                            ("rss", "news_api", "market_api", "sec_edgar", "web")}  # fmt: skip
    assert by_name["poll_news_api"].minimum_interval_seconds == 300
    assert by_name["poll_rss"].minimum_interval_seconds <= 900
    assert all(s.job_name == "intel_ingest" for s in polling_sensors)
    assert defs.resolve_job_def("intel_ingest") is not None
    request = poll_request("rss", _at(2026, 11, 20, 10, 7), 900)
    assert isinstance(request, RunRequest) and request.partition_key == "2026-11-20"
    assert request.run_config == {"ops": {"intel_fetches": {"config": {"source_types": ["rss"]}}}}
    # one run per interval: the same slot gives the same run key, the next a new one
    again = poll_request("rss", _at(2026, 11, 20, 10, 14), 900)
    later = poll_request("rss", _at(2026, 11, 20, 10, 16), 900)
    assert isinstance(again, RunRequest) and isinstance(later, RunRequest)
    assert again.run_key == request.run_key != later.run_key
    assert isinstance(poll_request("rss", _at(2026, 11, 21, 10, 0), 900), SkipReason)  # Saturday


def test_new_fetches_trigger_processing_of_that_day_only_when_something_came(tmp_path):
    from dagster import AssetKey, AssetMaterialization, DagsterInstance

    from orchestration.definitions import defs
    from orchestration.schedules import intel_new_fetches

    instance = DagsterInstance.ephemeral()
    key = AssetKey(["raw", "fetches"])

    cursor: list[str | None] = [None]

    def tick(new_payloads: int) -> list[RunRequest]:
        instance.report_runless_asset_event(
            AssetMaterialization(key, partition="2026-11-20",
                                 metadata={"new_payloads": new_payloads})
        )  # fmt: skip
        ctx = build_sensor_context(instance=instance, cursor=cursor[0],
                                   repository_def=defs.get_repository_def())  # fmt: skip
        data = intel_new_fetches.evaluate_tick(ctx)
        cursor[0] = data.cursor
        return list(data.run_requests or [])

    assert tick(0) == []  # nothing new: skipped
    runs = tick(3)
    assert len(runs) == 1 and runs[0].partition_key == "2026-11-20"
    assert tick(0) == []  # the cursor moved on: the same event is not processed twice
    assert intel_new_fetches.job_name == "intel_process"
