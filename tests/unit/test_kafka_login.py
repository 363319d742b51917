"""How the platform's Kafka login is found (settings, a credentials file, the stack's generated
one) and handed to child processes: in their environment, never on a command line."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import KafkaError, KafkaException
from pydantic import SecretStr

from assets.platform.stack import kafka_env, kafka_security
from deploy.kafka.kafka_service import KafkaService, read_credentials
from deploy.process import ServiceError
from orchestration.sidecar import _settings_env
from settings import Settings
from streaming.transport.kafka import fenced, transient

SCRAM = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512"}


def _stack_credentials(tmp_path) -> dict:
    home = tmp_path / "stack" / "kafka"
    home.mkdir(parents=True)
    creds = {p: {"username": f"u-{p}", "password": f"pw-{p}"} for p in ("admin", "client")}
    (home / "credentials.json").write_text(json.dumps(creds))
    return creds


def test_explicit_login_wins(tmp_path):
    _stack_credentials(tmp_path)
    s = Settings(stack_dir=tmp_path / "stack", kafka_username="me", kafka_password=SecretStr("x"))
    assert kafka_security(s) == {**SCRAM, "sasl.username": "me", "sasl.password": "x"}
    env = kafka_env(s)
    assert env["MARKETLAKE_KAFKA_USERNAME"] == "me" and env["MARKETLAKE_KAFKA_PASSWORD"] == "x"


def test_the_local_stack_broker_uses_its_generated_admin_login(tmp_path):
    _stack_credentials(tmp_path)
    s = Settings(stack_dir=tmp_path / "stack")
    assert kafka_security(s) == {**SCRAM, "sasl.username": "u-admin", "sasl.password": "pw-admin"}
    path = tmp_path / "stack" / "kafka" / "credentials.json"
    assert kafka_env(s) == {
        "MARKETLAKE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
        "MARKETLAKE_KAFKA_CREDENTIALS_FILE": str(path),
    }


def test_another_cluster_gets_no_stack_login_unless_told(tmp_path):
    _stack_credentials(tmp_path)
    other = Settings(stack_dir=tmp_path / "stack", kafka_bootstrap_servers="10.0.0.1:9092")
    assert kafka_security(other) is None
    own = tmp_path / "login.json"
    own.write_text(json.dumps({"username": "svc", "password": "pw"}))
    told = Settings(kafka_bootstrap_servers="10.0.0.1:9092", kafka_credentials_file=own)
    assert kafka_security(told) == {**SCRAM, "sasl.username": "svc", "sasl.password": "pw"}
    never_started = Settings(stack_dir=tmp_path / "none")
    assert kafka_security(never_started) is None  # nothing to log in with yet


def test_a_credentials_file_without_the_principal_is_refused(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"client": {"username": "c", "password": "p"}}))
    with pytest.raises(ServiceError, match="admin"):
        read_credentials(path)


def test_children_get_the_password_in_their_environment_not_masked():
    s = Settings(kafka_username="me", kafka_password=SecretStr("s3cret"))
    env = _settings_env(s)
    assert env["MARKETLAKE_KAFKA_PASSWORD"] == "s3cret"


def test_generated_credentials_are_private_and_reused(tmp_path):
    svc = KafkaService(home=tmp_path / "kafka", cache=tmp_path / "cache")
    svc.home.mkdir()
    svc._ensure_credentials()
    first = svc.credentials_file.read_text()
    assert oct(svc.credentials_file.stat().st_mode & 0o777) == "0o600"
    svc._ensure_credentials()
    assert svc.credentials_file.read_text() == first
    other = KafkaService(home=tmp_path / "other", cache=tmp_path / "cache")
    other.home.mkdir()
    other._ensure_credentials()
    assert other.credentials("admin") != svc.credentials("admin")  # never a fixed default
    assert svc.client_config("client")["sasl.username"] == svc.credentials("client")["username"]


def test_storage_without_credentials_is_not_silently_reopened(tmp_path):
    svc = KafkaService(home=tmp_path / "kafka", cache=tmp_path / "cache")
    svc.data_dir.mkdir(parents=True)
    (svc.data_dir / "meta.properties").write_text("formatted before authentication\n")
    with pytest.raises(ServiceError, match="credentials"):
        svc._ensure_credentials()


@pytest.mark.parametrize(
    "code",
    [KafkaError.FENCED_LEADER_EPOCH, KafkaError.NOT_LEADER_FOR_PARTITION,
     KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError._TRANSPORT,
     KafkaError._ALL_BROKERS_DOWN, KafkaError.REQUEST_TIMED_OUT, KafkaError.NETWORK_EXCEPTION],
)  # fmt: skip
def test_broker_trouble_is_transient(code):
    assert transient(KafkaError(code))


def test_fencing_and_authorization_are_not_retried():
    for code in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
        assert not transient(KafkaError(code)) and fenced(KafkaException(KafkaError(code)))
    assert not transient(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    assert not transient(KafkaError(KafkaError._TRANSPORT, fatal=True))
