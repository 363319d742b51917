"""``marketlake bench intelligence`` as a user runs it: documents/s through parsing and extraction."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orchestration.bench.intelligence_bench import bench_intelligence, build_corpus
from settings import Settings

pytestmark = pytest.mark.e2e


def test_bench_intelligence_reports_documents_per_second() -> None:
    env = {**os.environ, "MARKETLAKE_SHARED_DATA_DIR": str(Settings().shared_data_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "bench", "intelligence", "--n", "1500",
         "--json"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["benchmark"] == "intelligence"
    assert result["documents"] >= 1500
    assert result["quarantined"] == 0  # the corpus is well-formed: every payload parses
    kinds = result["by_kind"]
    assert {"generated_feed", "generated_page"} <= set(kinds)
    assert sum(k["documents"] for k in kinds.values()) == result["documents"]
    assert result["docs_per_s"] == pytest.approx(result["documents"] / result["seconds"], rel=0.01)
    assert result["shared_data"] is Settings().shared_data_dir.is_dir()


def test_the_corpus_is_seeded_and_the_cpu_affinity_is_restored() -> None:
    a = build_corpus(None, 500, seed=3)
    b = build_corpus(None, 500, seed=3)
    c = build_corpus(None, 500, seed=4)
    assert [f.body for f in a.payloads] == [f.body for f in b.payloads]
    assert [f.body for f in a.payloads] != [f.body for f in c.payloads]
    before = os.sched_getaffinity(0)
    result = bench_intelligence(None, 300, seed=3)
    assert os.sched_getaffinity(0) == before
    assert result["pinned_cpu"] in before and not result["shared_data"]
