"""The dashboards benchmark's arithmetic and text: percentiles, warm-up, targets, the table."""

from __future__ import annotations

import pytest

from orchestration.bench.dashboards_bench import Rendered, _percentile, time_chart
from orchestration.cli.bench_commands import BENCHMARKS, BenchTarget

pytestmark = pytest.mark.unit


def test_percentile_interpolates_between_ranks():
    assert _percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert _percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.95) == pytest.approx(4.8)
    assert _percentile([7.0], 0.95) == 7.0


def test_time_chart_warms_up_once_then_times_each_run():
    calls: list[int] = []
    figures = time_chart(lambda: calls.append(1), runs=4)
    assert len(calls) == 5
    assert 0 <= figures["p50_s"] <= figures["p95_s"] <= figures["max_s"]


def test_a_dashboard_with_a_pending_chart_or_an_error_is_not_rendered():
    assert Rendered("market", 1.0, ["a"]).ok
    assert not Rendered("market", 1.0, ["a"], errors=["Unexpected error"]).ok
    assert not Rendered("market", 1.0, ["a"], pending=["a"]).ok
    assert not Rendered("market", 1.0, []).ok


def test_the_figures_print_targets_and_fail_only_on_a_broken_dashboard():
    spec = BENCHMARKS[BenchTarget.dashboards]
    chart = {"dashboard": "Market", "chart": "Traded notional", "id": 1,
             "p50_s": 0.2, "p95_s": 0.3, "max_s": 0.3, "met": True}  # fmt: skip
    board = {"dashboard": "Market", "slug": "market", "charts": 1, "first_s": 6.0,
             "median_s": 5.5, "max_s": 6.0, "errors": [], "pending": [], "met": False}  # fmt: skip
    figures = {
        "days": ["2026-12-03", "2026-12-04"], "runs": 5, "target_chart_s": 2.0,
        "target_dashboard_s": 5.0, "charts": [chart], "dashboards": [board],
        "charts_met": True, "dashboards_met": False,
    }  # fmt: skip
    text = "\n".join(spec.lines(figures))
    assert "target every chart < 2 s: [green]met" in text
    assert "target every dashboard < 5 s: [red]NOT met" in text
    assert spec.table is not None and spec.table(figures).row_count == 2
    assert not spec.failed(figures)  # slow is a figure, not a failure
    assert spec.failed({**figures, "dashboards": [{**board, "pending": ["Traded notional"]}]})
