"""On the stack, `marketlake query` on DuckDB reads the lake with a read-only S3 key.

MinIO's STS (``AssumeRole`` signed with the root key) hands out temporary
credentials whose session policy only reads the lake's bucket: DuckDB and
pyiceberg read through them, and the store itself refuses their writes and
deletes, whatever DuckDB's statement filter says. Operators (``--write``) keep
the root key.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest
from pyarrow import fs as pafs

from assets.platform import stack
from assets.platform.lake_engines import lake_config, query_engine
from lake.catalog import open_catalog
from lake.query import DuckDBEngine, LakeQueryError
from settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(lake_stack, monkeypatch, tmp_path) -> Settings:
    env = {**lake_stack.env, "MARKETLAKE_MODE": "stack", "MARKETLAKE_DATA_DIR": str(tmp_path)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


@pytest.fixture(scope="module")
def table(lake_stack) -> str:
    name = f"rokey.t_{uuid.uuid4().hex[:8]}"
    lake_stack.trino.execute("CREATE SCHEMA IF NOT EXISTS iceberg.rokey")
    lake_stack.trino.execute(f"CREATE TABLE iceberg.{name} AS SELECT 7 AS x")
    return name


def _filesystem(store, creds: dict[str, str]) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key=creds["access_key"],
        secret_key=creds["secret_key"],
        session_token=creds["session_token"],
        region=store.region,
        scheme="http",
        endpoint_override=store.address,
    )


def test_the_read_only_key_reads_the_lake_bucket_and_nothing_more(settings, table):
    store = stack.minio(settings)
    bucket = settings.lake_bucket
    creds = store.read_only_credentials(bucket, duration_s=900)
    assert creds["access_key"] != store.access_key and creds["session_token"]
    expires = datetime.fromisoformat(creds["expiration"].replace("Z", "+00:00"))
    assert 0 < (expires - datetime.now(UTC)).total_seconds() <= 900 + 60
    root, ro = store.filesystem(), _filesystem(store, creds)
    listed = ro.get_file_info(pafs.FileSelector(f"{bucket}/warehouse", recursive=True))
    files = [info.path for info in listed if info.type == pafs.FileType.File]
    assert files
    with ro.open_input_stream(files[0]) as f:
        assert f.read(4)
    with (
        pytest.raises(OSError, match="ACCESS_DENIED"),
        ro.open_output_stream(f"{bucket}/warehouse/intruder.txt") as out,
    ):
        out.write(b"no")
    with pytest.raises(OSError, match="ACCESS_DENIED"):
        ro.delete_file(files[0])
    assert root.get_file_info(files[0]).type == pafs.FileType.File
    assert root.get_file_info(f"{bucket}/warehouse/intruder.txt").type == pafs.FileType.NotFound
    other = f"other-{uuid.uuid4().hex[:8]}"
    store.ensure_bucket(other)
    with root.open_output_stream(f"{other}/secret.txt") as out:
        out.write(b"secret")
    with pytest.raises(OSError, match="ACCESS_DENIED"):
        ro.open_input_stream(f"{other}/secret.txt").read()


def test_marketlake_query_on_duckdb_reads_with_the_read_only_key(settings, table):
    store = stack.minio(settings)
    engine = query_engine(settings, "duckdb")
    try:
        assert isinstance(engine, DuckDBEngine)
        props = engine.catalog.properties
        assert props["s3.access-key-id"] != store.access_key
        assert props["s3.session-token"]
        assert engine.query(f"SELECT x FROM {table}").to_pylist() == [{"x": 7}]
    finally:
        engine.close()
    operator = query_engine(settings, "duckdb", allow_writes=True)
    try:
        assert operator.catalog.properties["s3.access-key-id"] == store.access_key  # type: ignore[attr-defined]
    finally:
        operator.close()


def test_the_store_refuses_duckdbs_writes_with_the_read_only_key(settings, table):
    config = stack.read_only_lake(settings, lake_config(settings))
    assert config.s3 is not None and config.s3.session_token
    target = f"s3://{settings.lake_bucket}/warehouse/rokey/copied.csv"
    engine = DuckDBEngine(open_catalog(config), config.s3, allow_writes=True)  # filter lifted
    try:
        assert engine.query(f"SELECT x FROM {table}").to_pylist() == [{"x": 7}]
        with pytest.raises(LakeQueryError, match=r"403|Forbidden|Access Denied"):
            engine.query(f"COPY (SELECT 1 AS x) TO '{target}'")
    finally:
        engine.close()
    root = stack.minio(settings).filesystem()
    assert root.get_file_info(target.removeprefix("s3://")).type == pafs.FileType.NotFound
    # the root key (what the platform's writers use) still writes
    writer = DuckDBEngine(
        open_catalog(lake_config(settings)), dataclasses.replace(config.s3, **_root(settings)),
        allow_writes=True,
    )  # fmt: skip
    try:
        writer.query(f"COPY (SELECT 1 AS x) TO '{target}'")
    finally:
        writer.close()
    assert root.get_file_info(target.removeprefix("s3://")).type == pafs.FileType.File
    root.delete_file(target.removeprefix("s3://"))


def _root(settings: Settings) -> dict[str, str | None]:
    store = stack.minio(settings)
    return {"access_key": store.access_key, "secret_key": store.secret_key, "session_token": None}
