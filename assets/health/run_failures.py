"""Dagster's failed runs as rows for the lake's ``raw.run_failures`` table.

Dagster keeps its runs in its own storage (SQLite or PostgreSQL), which the
dashboards cannot read; this module turns the instance's failed runs of one
day into rows, so the Platform health dashboard shows them beside the dead
letters. A run belongs to the day it was computing (its partition) when it
has one, otherwise to the day it failed in exchange time: "day D's processing
failed twice" is what an operator looks for on a day's dashboard.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunRecord, RunsFilter

from lake.tables import TABLES

PARTITION_TAG = "dagster/partition"
MESSAGE_LIMIT = 4_000
"""Characters of a failure message kept (a stack trace's head says what failed)."""


def run_day(record: RunRecord, tz: ZoneInfo) -> date:
    """The day a failed run belongs to: its partition, else when it ended (exchange time)."""
    partition = record.dagster_run.tags.get(PARTITION_TAG)
    if partition:
        try:
            return date.fromisoformat(partition)
        except ValueError:
            pass  # a partition that is not a day (none of ours): fall back to the time
    ended = record.end_time or record.update_timestamp.timestamp()
    return datetime.fromtimestamp(ended, tz).date()


def _failed(instance: DagsterInstance, runs_filter: RunsFilter) -> list[RunRecord]:
    return list(instance.get_run_records(filters=runs_filter))


def failed_runs_of_day(instance: DagsterInstance, day: date, tz: ZoneInfo) -> list[RunRecord]:
    """Every failed run that belongs to ``day`` (see :func:`run_day`), oldest first."""
    by_partition = _failed(
        instance,
        RunsFilter(statuses=[DagsterRunStatus.FAILURE], tags={PARTITION_TAG: day.isoformat()}),
    )
    start = datetime.combine(day, time(0), tz)
    by_time = _failed(
        instance,
        RunsFilter(
            statuses=[DagsterRunStatus.FAILURE],
            updated_after=start - timedelta(hours=1),
            updated_before=start + timedelta(days=1, hours=1),
        ),
    )
    records = {r.dagster_run.run_id: r for r in by_partition}
    for r in by_time:
        if r.dagster_run.run_id not in records and run_day(r, tz) == day:
            records[r.dagster_run.run_id] = r
    return sorted(records.values(), key=lambda r: (r.end_time or 0.0, r.dagster_run.run_id))


def _failure_details(instance: DagsterInstance, run_id: str) -> tuple[list[str], str]:
    """The failed steps and the run's failure message (the first step error when it says more)."""
    steps: list[str] = []
    step_error = ""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        if event is None:
            continue
        if event.step_key and event.step_key not in steps:
            steps.append(event.step_key)
        error = getattr(event.event_specific_data, "error", None)
        if error is not None and not step_error:
            while error.cause is not None:  # Dagster wraps the asset's own error: show that one
                error = error.cause
            step_error = f"{event.step_key}: {error.message.strip()}"
    run_message = ""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE):
        if entry.dagster_event is not None and entry.dagster_event.message:
            run_message = entry.dagster_event.message
    message = step_error or run_message or "the run failed (no failure event was recorded)"
    return steps, message[:MESSAGE_LIMIT]


def run_failure_rows(instance: DagsterInstance, day: date, tz: ZoneInfo) -> pa.Table:
    """The day's failed runs as ``raw.run_failures`` rows (an empty table when none failed)."""
    rows: dict[str, list[object]] = {name: [] for name in TABLES["raw.run_failures"].schema.names}
    for record in failed_runs_of_day(instance, day, tz):
        run = record.dagster_run
        steps, message = _failure_details(instance, run.run_id)
        ended = record.end_time or record.update_timestamp.timestamp()
        rows["run_id"].append(run.run_id)
        rows["job"].append(run.job_name)
        rows["partition"].append(run.tags.get(PARTITION_TAG))
        rows["failed_at"].append(int(ended * 1_000_000_000))
        rows["steps"].append(", ".join(steps) or None)
        rows["message"].append(message)
    return pa.Table.from_pydict(rows, schema=TABLES["raw.run_failures"].schema)
