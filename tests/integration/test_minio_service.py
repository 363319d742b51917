"""MinIO as deploy/ runs it: built once, generated credentials, plain S3, objects kept."""

from __future__ import annotations

import json
import stat
import time
import urllib.request
from collections.abc import Iterator

import pytest
from pyarrow import fs as pafs

from deploy.minio.minio_service import MINIO_VERSION, MinioService
from deploy.process import ServiceError
from settings import Settings
from tests.support import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def minio(tmp_path_factory) -> Iterator[MinioService]:
    """One MinIO server for this module (built once into the shared cache: minutes the first time)."""
    svc = MinioService(
        home=tmp_path_factory.mktemp("minio"),
        cache=Settings().cache_dir,
        port=free_port(),
        console_port=free_port(),
    )
    svc.start()
    yield svc
    svc.stop()


def _s3(svc: MinioService, access_key: str, secret_key: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key=access_key,
        secret_key=secret_key,
        region="us-east-1",
        scheme="http",
        endpoint_override=svc.address,
        connect_timeout=5,
        request_timeout=10,
    )


def _get(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as r:
        return int(r.status)


def test_install_is_cached_and_server_is_healthy(minio):
    binary = minio.install()
    assert binary.is_file() and binary.parent.name == "bin"
    assert (binary.parent / ".complete").read_text() == MINIO_VERSION
    mtime = binary.stat().st_mtime_ns
    t0 = time.monotonic()
    assert minio.install() == binary  # second install: nothing to build
    assert time.monotonic() - t0 < 1.0
    assert binary.stat().st_mtime_ns == mtime
    st = minio.status()
    assert st == {
        "service": "minio",
        "state": "healthy",
        "address": f"127.0.0.1:{minio.port}",
        "pid": minio.process.pid(),
        "data_dir": str(minio.home / "data"),
        "log": str(minio.home / "minio.log"),
        "installed": True,
        "url": None,
        "credentials": str(minio.credentials_file),
    }
    assert isinstance(st["pid"], int)
    assert minio.endpoint == f"http://127.0.0.1:{minio.port}"
    assert _get(f"{minio.endpoint}/minio/health/live") == 200
    assert _get(f"{minio.endpoint}/minio/health/ready") == 200
    assert _get(f"http://{minio.console_address}/") == 200  # the web console
    assert f"API: http://127.0.0.1:{minio.port}" in minio.process.log_file.read_text()


def test_credentials_are_generated_private_and_not_the_defaults(minio):
    assert stat.S_IMODE(minio.credentials_file.stat().st_mode) == 0o600
    stored = json.loads(minio.credentials_file.read_text())
    assert stored == {"access_key": minio.access_key, "secret_key": minio.secret_key}
    assert minio.access_key != "minioadmin" and minio.secret_key != "minioadmin"
    assert len(minio.secret_key) >= 30


def test_bucket_and_object_roundtrip_over_s3(minio):
    assert minio.ensure_bucket("lake") is True
    assert minio.ensure_bucket("lake") is False  # already there
    s3 = _s3(minio, minio.access_key, minio.secret_key)
    assert s3.get_file_info("lake").type == pafs.FileType.Directory
    payload = b"symbol,price\nAAPL,1954000\n" * 1000
    with s3.open_output_stream("lake/raw/trades/part-0.csv") as f:
        f.write(payload)
    with s3.open_input_stream("lake/raw/trades/part-0.csv") as f:
        assert f.read() == payload
    listed = s3.get_file_info(pafs.FileSelector("lake", recursive=True))
    assert "lake/raw/trades/part-0.csv" in {i.path for i in listed}
    with pytest.raises(ServiceError, match="Bad_Bucket"):
        minio.ensure_bucket("Bad_Bucket")  # not a valid S3 bucket name


def test_default_and_wrong_credentials_are_refused(minio):
    minio.ensure_bucket("lake")
    for access_key, secret_key in [
        ("minioadmin", "minioadmin"),
        (minio.access_key, "not-the-secret-key"),
    ]:
        s3 = _s3(minio, access_key, secret_key)
        with pytest.raises(
            OSError, match=r"ACCESS_DENIED|AccessDenied|InvalidAccessKeyId|Signature"
        ):
            s3.get_file_info("lake")
        with pytest.raises(OSError), s3.open_output_stream("lake/intruder.txt") as f:
            f.write(b"nope")
    good = _s3(minio, minio.access_key, minio.secret_key)
    assert good.get_file_info("lake/intruder.txt").type == pafs.FileType.NotFound


def test_stop_then_start_keeps_objects_and_credentials(minio):
    minio.ensure_bucket("kept")
    s3 = minio.filesystem()
    with s3.open_output_stream("kept/before-stop.txt") as f:
        f.write(b"still here")
    creds = (minio.access_key, minio.secret_key)
    assert minio.stop() is True
    st = minio.status()
    assert st["state"] == "stopped" and st["pid"] is None
    assert not minio.healthy()
    assert minio.stop() is False  # nothing left to stop

    minio.start()
    assert minio.healthy()
    assert (minio.access_key, minio.secret_key) == creds  # reused, not regenerated
    with minio.filesystem().open_input_stream("kept/before-stop.txt") as f:
        assert f.read() == b"still here"
    assert minio.ensure_bucket("kept") is False
