"""Trino's security configuration as deploy/ writes it, without starting Trino.

Generated secrets (mode 0600, reused), the self-signed certificate made by the
JDK's keytool, HTTPS-only password authentication, PBKDF2 hashes in the format
Trino's file authenticator reads, the access rules of the two principals, and
the clients' side: TrinoEngine and query_engine.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from assets.platform.lake_engines import query_engine
from deploy.process import ServiceError
from deploy.trino.trino_service import (
    TrinoService,
    access_rules,
    java_for_trino,
    memory_catalog,
    pbkdf2_hash,
)
from lake.query import LakeQueryError, TrinoEngine
from settings import Settings

pytestmark = pytest.mark.unit


def _java() -> str:
    try:
        return java_for_trino()
    except ServiceError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def svc(tmp_path) -> TrinoService:
    return TrinoService(
        home=tmp_path / "trino",
        cache=tmp_path / "cache",
        port=18999,
        catalogs={"scratch": memory_catalog()},
    )


def _props(path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return dict(pairs)


def test_pbkdf2_hash_is_what_trinos_file_authenticator_reads():
    iterations, salt, digest = pbkdf2_hash("s3cret").split(":")
    assert int(iterations) >= 1000 and len(bytes.fromhex(salt)) == 16
    expected = hashlib.pbkdf2_hmac("sha1", b"s3cret", bytes.fromhex(salt), int(iterations), 32)
    assert digest == expected.hex() and digest == digest.lower()
    assert pbkdf2_hash("s3cret") != pbkdf2_hash("s3cret")  # a fresh salt each time


def test_access_rules_give_the_reader_reads_only():
    rules = access_rules("w", "r")
    assert rules["catalogs"] == [
        {"user": "w", "catalog": ".*", "allow": "all"},
        {"user": "r", "catalog": ".*", "allow": "read-only"},
        {"catalog": ".*", "allow": "none"},
    ]
    assert {"user": "r", "privileges": ["SELECT"]} in rules["tables"]
    assert {"user": "r", "owner": False} in rules["schemas"]
    for section in ("procedures", "system_information"):
        assert all(rule["user"] == "w" for rule in rules[section])
    assert "impersonation" not in rules  # no impersonation rules: nobody may impersonate
    only = access_rules("w", "r", ("lake_ro",))["catalogs"]
    assert only[1] == {"user": "r", "catalog": "lake_ro|system", "allow": "read-only"}


def test_the_stack_gives_the_reader_a_connector_level_read_only_catalog():
    from assets.platform import stack

    class Fake:
        host, port, database, user, password = "127.0.0.1", 1, "lake", "u", "p"
        endpoint, access_key, secret_key, region = "http://127.0.0.1:2", "a", "s", "us-east-1"

    catalogs = stack.trino_catalogs(Settings(), Fake(), Fake())  # type: ignore[arg-type]
    assert set(catalogs) == {stack.WRITE_CATALOG, stack.READ_CATALOG}
    assert catalogs[stack.READ_CATALOG]["iceberg.security"] == "read_only"
    assert "iceberg.security" not in catalogs[stack.WRITE_CATALOG]
    assert stack.trino(Settings()).reader_catalogs == (stack.READ_CATALOG,)


def test_credentials_are_generated_private_and_reused(svc):
    assert svc._ensure_credentials() is True
    assert svc.home.stat().st_mode & 0o777 == 0o700
    assert svc.credentials_file.stat().st_mode & 0o777 == 0o600
    first = json.loads(svc.credentials_file.read_text())
    assert set(first) == {
        "writer_password",
        "reader_password",
        "shared_secret",
        "keystore_password",
    }
    assert len(set(first.values())) == 4 and all(len(v) >= 40 for v in first.values())
    svc.credentials_file.chmod(0o644)
    assert svc._ensure_credentials() is False  # reused, and made private again
    assert json.loads(svc.credentials_file.read_text()) == first
    assert svc.credentials_file.stat().st_mode & 0o777 == 0o600
    assert svc.principal() == ("marketlake", first["writer_password"])
    assert svc.principal(reader=True) == ("marketlake_reader", first["reader_password"])


def test_a_lost_secret_is_generated_again_and_the_rest_kept(svc):
    svc._ensure_credentials()
    creds = json.loads(svc.credentials_file.read_text())
    del creds["keystore_password"]
    svc.credentials_file.write_text(json.dumps(creds))
    assert svc._ensure_credentials() is True  # the keystore must be made again
    again = json.loads(svc.credentials_file.read_text())
    assert again["writer_password"] == creds["writer_password"] and again["keystore_password"]


def test_no_credentials_yet_is_a_clear_error(svc):
    with pytest.raises(ServiceError, match="start the service first"):
        svc.principal()


def test_user_names_are_checked(tmp_path):
    with pytest.raises(ServiceError, match="user name"):
        TrinoService(home=tmp_path, cache=tmp_path, reader_user="bad.name")
    with pytest.raises(ServiceError, match="different"):
        TrinoService(home=tmp_path, cache=tmp_path, user="same", reader_user="same")


def test_configuration_is_https_only_with_passwords_and_rules(svc):
    svc._ensure_credentials()
    svc._ensure_certificate(_java())
    assert svc.keystore_file.stat().st_mode & 0o777 == 0o600
    assert svc.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    cert = svc.ca_file.read_text()
    svc._ensure_certificate(_java())
    assert svc.ca_file.read_text() == cert  # kept while the keystore exists
    svc.configure()
    config = _props(svc.config_file)
    creds = json.loads(svc.credentials_file.read_text())
    assert config["http-server.http.enabled"] == "false"
    assert config["http-server.https.enabled"] == "true"
    assert config["http-server.https.port"] == "18999"
    assert config["http-server.authentication.type"] == "PASSWORD"
    assert "http-server.authentication.allow-insecure-over-http" not in config
    assert config["internal-communication.shared-secret"] == creds["shared_secret"]
    assert config["discovery.uri"] == "https://127.0.0.1:18999"
    assert svc.config_file.stat().st_mode & 0o777 == 0o600
    assert _props(svc.etc_dir / "password-authenticator.properties") == {
        "password-authenticator.name": "file",
        "file.password-file": str(svc.etc_dir / "password.db"),
    }
    password_db = (svc.etc_dir / "password.db").read_text()
    assert (svc.etc_dir / "password.db").stat().st_mode & 0o777 == 0o600
    assert [line.split(":", 1)[0] for line in password_db.splitlines()] == [
        "marketlake",
        "marketlake_reader",
    ]
    assert all(secret not in password_db for secret in creds.values())
    assert _props(svc.etc_dir / "access-control.properties")["access-control.name"] == "file"
    rules = json.loads((svc.etc_dir / "rules.json").read_text())
    assert rules == access_rules("marketlake", "marketlake_reader")
    assert all(secret not in " ".join(svc.command()) for secret in creds.values())


def test_trino_engine_sends_passwords_over_https_only(tmp_path):
    with pytest.raises(LakeQueryError, match="HTTPS"):
        TrinoEngine("127.0.0.1", 9, "u", password="p", https=False)
    ca = tmp_path / "ca.pem"
    engine = TrinoEngine("127.0.0.1", 9, "u", password="p", ca_file=ca)  # never connected
    try:
        assert engine.conn.http_scheme == "https"
        session = engine.conn._http_session
        assert session.verify == str(ca) and session.trust_env is False
    finally:
        engine.close()
    plain = TrinoEngine("127.0.0.1", 9)
    try:
        assert plain.conn.http_scheme == "http" and plain.conn.auth is None
    finally:
        plain.close()


def test_query_engine_says_how_to_get_trinos_credentials(tmp_path):
    settings = Settings(mode="stack", stack_dir=tmp_path / "stack", data_dir=tmp_path / "data")
    with pytest.raises(LakeQueryError, match="stack up trino"):
        query_engine(settings, "trino")
