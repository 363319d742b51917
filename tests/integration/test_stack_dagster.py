"""``stack up dagster``: the Dagster UI and daemon run detached, on the stack's PostgreSQL.

The stack's service table starts what Dagster needs first (PostgreSQL, MinIO),
then ``marketlake ui`` as a managed process in stack mode; its status names
the instance's home and the accounts its login checks, and a stop leaves no
webserver or daemon behind.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest

from assets.platform.stack import services
from settings import Settings
from tests.support import free_port

pytestmark = pytest.mark.integration


def _processes(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if marker in line]


def test_stack_up_dagster_runs_ui_and_daemon_on_postgres_and_stops(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        stack_dir=tmp_path / "stack",
        postgres_port=free_port(),
        minio_port=free_port(),
        minio_console_port=free_port(),
        dagster_port=free_port(),
    )
    table = services(settings)
    dagster = table["dagster"]
    try:
        dagster.start()
        st = dagster.status()
        assert st["state"] == "healthy"
        assert st["url"] == f"http://127.0.0.1:{settings.dagster_port}"
        assert st["credentials"] == str(settings.accounts_path)
        assert table["postgres"].status()["state"] == "healthy"  # started first
        login = f"http://127.0.0.1:{settings.dagster_port}/_marketlake/login"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(login, timeout=10) as resp:
            assert resp.status == 200
        config = (settings.data_dir / "dagster" / "dagster.yaml").read_text()
        assert "orchestration.backfill" in config  # the PostgreSQL storage, not SQLite
        assert "password_file" in config
        assert _processes(f"--port {settings.dagster_port}")
        assert _processes("dagster-daemon run -m orchestration.definitions")
    finally:
        for name in ("dagster", "minio", "postgres"):
            table[name].stop()
    assert dagster.status()["state"] == "stopped"
    assert not _processes(f"--port {settings.dagster_port}")
