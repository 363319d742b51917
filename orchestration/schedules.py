"""When the platform runs by itself: after each close, during the session, on events.

- ``eod_settlement``: every weekday shortly after the close (exchange time);
  a holiday is skipped with the reason, so the schedule follows the calendar.
- ``intraday_landing``: every 15 minutes while the session is open, landing
  the day so far (the raw tables replace the day's partition each time).
- ``session_closed``: a sensor that reads each recent day's ``control`` topic
  and runs the whole day once it says the session closed.
- ``poll_<source type>``: one sensor per source type (rss, news_api,
  market_api, sec_edgar, web) on that type's polling interval, fetching
  today's due sources of the type (``raw/fetches`` for today's partition).
- ``intel_new_fetches``: when a fetch run brought new payloads, parse,
  extract, aggregate and recommend for that day (recommendations come last,
  after aggregation, in the same run).
- ``record_run_failures``: every failed run is appended to
  ``<DAGSTER_HOME>/run_failures.jsonl``, logged, and its day's
  ``raw.run_failures`` published, so failures show outside the UI (the
  Platform health dashboard) too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import msgspec
from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    EventLogEntry,
    RunFailureSensorContext,
    RunRequest,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    asset_sensor,
    define_asset_job,
    run_failure_sensor,
    schedule,
    sensor,
)

from assets.health.run_failures import run_day, run_failure_rows
from assets.platform.resources import PlatformResource
from intelligence.registry import load_registry_from_settings
from lake.tables import TABLES
from lake.writer import publish
from settings import get_settings
from streaming.events import SessionControl
from streaming.limits import MalformedMessage, decode_untrusted
from streaming.refdata import load_calendar

CALENDAR = load_calendar(get_settings().calendar_toml)
EOD_DELAY = timedelta(minutes=15)

daily_job = define_asset_job("daily", selection=AssetSelection.all())
landing_job = define_asset_job(
    "landing",
    selection=AssetSelection.groups("landing") - AssetSelection.assets("simulated_session"),
)

FETCHES = AssetKey(["raw", "fetches"])
intel_ingest_job = define_asset_job(
    "intel_ingest", selection=AssetSelection.assets(FETCHES, AssetKey(["raw", "source_states"]))
)
intel_process_job = define_asset_job(
    "intel_process",
    selection=AssetSelection.assets(
        *(AssetKey(["intel", n]) for n in ("documents", "quarantine", "extractions", "trends",
                                           "trend_evidence", "recommendations"))
    ),
)  # fmt: skip


def _weekdays() -> str:
    names = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
    return ",".join(str(i) for i, n in enumerate(names) if n not in CALENDAR.weekend)


def _local(ts: datetime) -> datetime:
    return ts.astimezone(CALENDAR.tz)


def _not_trading(day: date) -> SkipReason | None:
    if CALENDAR.is_trading_day(day):
        return None
    return SkipReason(f"{day} is not a trading day on {CALENDAR.exchange}")


_close = datetime.combine(date(2000, 1, 3), CALENDAR.close_time) + EOD_DELAY


@schedule(
    job=daily_job,
    cron_schedule=f"{_close.minute} {_close.hour} * * {_weekdays()}",
    execution_timezone=CALENDAR.timezone,
    default_status=DefaultScheduleStatus.STOPPED,
)
def eod_settlement(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    """The whole day (landing to the settlement report) after the session closed."""
    day = _local(context.scheduled_execution_time).date()
    if skip := _not_trading(day):
        return skip
    return RunRequest(run_key=f"eod-{day}", partition_key=day.isoformat())


@schedule(
    job=landing_job,
    cron_schedule=f"*/15 {CALENDAR.open_time.hour}-{CALENDAR.close_time.hour} * * {_weekdays()}",
    execution_timezone=CALENDAR.timezone,
    default_status=DefaultScheduleStatus.STOPPED,
)
def intraday_landing(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    """Land the day so far, every 15 minutes while the session is open."""
    now = _local(context.scheduled_execution_time)
    day = now.date()
    if skip := _not_trading(day):
        return skip
    open_ns, close_ns = CALENDAR.session_bounds(day)
    now_ns = int(now.timestamp()) * 1_000_000_000
    if not open_ns <= now_ns <= close_ns:
        return SkipReason(f"the session of {day} is not open at {now:%H:%M}")
    return RunRequest(run_key=f"intraday-{now:%Y%m%dT%H%M}", partition_key=day.isoformat())


def _is_close(decoder: msgspec.json.Decoder[SessionControl], value: bytes) -> bool:
    """A close event; a poison record on ``control`` is not one (and stops nothing)."""
    try:
        return decode_untrusted(value, decoder).action == "close"
    except MalformedMessage:
        return False


def closed_sessions(platform: PlatformResource, days: list[date]) -> list[date]:
    """The days among ``days`` whose ``control`` topic holds the session's close."""
    decoder = msgspec.json.Decoder(SessionControl)
    closed = []
    for day in days:
        log = platform.session_log(day)
        try:
            log.create_topics(["control"])
            for part in sorted(log.end_offsets("control")):
                if any(_is_close(decoder, r.value) for r in log.read("control", part)):
                    closed.append(day)
                    break
        finally:
            log.close()
    return closed


@sensor(job=daily_job, minimum_interval_seconds=60, default_status=DefaultSensorStatus.STOPPED)
def session_closed(
    context: SensorEvaluationContext, platform: PlatformResource
) -> Iterator[RunRequest]:
    """Runs a day once its ``control`` topic says the session closed (each day once)."""
    done = set(json.loads(context.cursor)) if context.cursor else set()
    today = datetime.now(CALENDAR.tz).date()
    recent = [d for d in CALENDAR.trading_days(today - timedelta(days=7), today)
              if d.isoformat() not in done]  # fmt: skip
    for day in closed_sessions(platform, recent):
        done.add(day.isoformat())
        yield RunRequest(run_key=f"closed-{day}", partition_key=day.isoformat())
    context.update_cursor(json.dumps(sorted(done)[-30:]))


def _polling_intervals() -> dict[str, int]:
    """Per source type, the shortest polling interval of the registry's sources of that type."""
    intervals: dict[str, int] = {}
    for src in load_registry_from_settings(get_settings()).sources:
        t = src.source_type
        intervals[t] = min(intervals.get(t, src.polling_interval_s), src.polling_interval_s)
    return intervals


def poll_request(source_type: str, now: datetime, interval_s: int) -> RunRequest | SkipReason:
    """The run a polling sensor asks for at ``now``: today's fetches of one source type."""
    day = _local(now).date()
    if skip := _not_trading(day):
        return skip
    slot = int(now.timestamp()) // interval_s
    return RunRequest(
        run_key=f"poll-{source_type}-{day}-{slot}",
        partition_key=day.isoformat(),
        run_config={"ops": {"intel_fetches": {"config": {"source_types": [source_type]}}}},
        tags={"marketlake/source_type": source_type},
    )


def _poll_sensor(source_type: str, interval_s: int) -> SensorDefinition:
    @sensor(
        name=f"poll_{source_type}",
        job=intel_ingest_job,
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.STOPPED,
        description=f"fetch today's due {source_type} sources every {interval_s} s",
    )
    def _poll(context: SensorEvaluationContext) -> RunRequest | SkipReason:
        return poll_request(source_type, datetime.now(CALENDAR.tz), interval_s)

    return _poll


polling_sensors = [_poll_sensor(t, s) for t, s in sorted(_polling_intervals().items())]


@asset_sensor(
    asset_key=FETCHES,
    job=intel_process_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
)
def intel_new_fetches(
    context: SensorEvaluationContext, asset_event: EventLogEntry
) -> RunRequest | SkipReason:
    """Process a day again when a fetch run brought new payloads (nothing new: skip)."""
    mat = asset_event.asset_materialization
    if mat is None or mat.partition is None:
        return SkipReason("a materialisation without a partition")
    new = mat.metadata.get("new_payloads")
    if new is None or not getattr(new, "value", 0):
        return SkipReason(f"no new payloads for {mat.partition}")
    return RunRequest(
        run_key=f"intel-{asset_event.run_id}-{mat.partition}", partition_key=mat.partition
    )


@run_failure_sensor(default_status=DefaultSensorStatus.RUNNING)
def record_run_failures(context: RunFailureSensorContext, platform: PlatformResource) -> None:
    """Keep the failure outside the UI: a line in run_failures.jsonl, then the lake.

    The file is written first because the lake being unreachable is a likely
    cause of the failure; the day's ``raw.run_failures`` partition is then
    published again from run storage (every failed run of that day, so a
    failure that could not reach the lake arrives with the next one, or with
    the day's ``raw/run_failures`` asset).
    """
    run = context.dagster_run
    entry = {
        "run_id": run.run_id,
        "job": run.job_name,
        "partition": run.tags.get("dagster/partition"),
        "message": context.failure_event.message,
        "at": datetime.now().astimezone().isoformat(),
    }
    home = Path(os.environ.get("DAGSTER_HOME") or get_settings().data_dir / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    with (home / "run_failures.jsonl").open("a") as f:
        f.write(json.dumps(entry) + "\n")
    context.log.error(f"run {run.run_id} of {run.job_name} failed: {entry['message']}")
    record = context.instance.get_run_record_by_id(run.run_id)
    tz = platform.calendar().tz
    day = run_day(record, tz) if record is not None else datetime.now(tz).date()
    try:
        rows = run_failure_rows(context.instance, day, tz)
        publish(platform.catalog(), TABLES["raw.run_failures"], day, rows)
    except Exception as exc:  # the failure is on file; the lake gets it with the day later
        context.log.warning(
            f"run failures of {day} not published to the lake ({exc!r}); they are in "
            f"{home / 'run_failures.jsonl'} and land with the day's raw/run_failures asset"
        )
