"""Apache Kafka (KRaft, one combined broker + controller) installed from Maven Central.

The lifecycle (install once, private home, generated credentials, start, wait,
stop, status) is :class:`deploy.local_service.LocalService`; this module adds
what is Kafka's own. Install: Maven resolves the broker's class path
(``pom.xml`` beside this file) into ``<cache>/kafka/<version>/libs`` once.
Configure: write ``server.properties`` and format the storage on first start
(cluster id generated). Command: ``kafka.Kafka`` on the JVM, bound to
127.0.0.1. Healthy: the broker answers a metadata request; once it does, the
read-only principal's ACLs are granted. The first start on two loaded cores
can be slow, so a failed start is tried once more.

Security (nobody else on the machine may produce to ``orders`` or delete topics):

- The client listener on 127.0.0.1 requires SASL/SCRAM-SHA-512. It is
  SASL_PLAINTEXT, not SASL_SSL: the traffic never leaves the loopback
  interface, and SCRAM never sends the password itself. A broker reachable
  from other hosts needs TLS as well (SASL_SSL), which this node does not set up.
- The KRaft controller listener, also on 127.0.0.1, takes SASL/PLAIN with one
  user known only to this node (KRaft controllers cannot use SCRAM: its
  credentials live in the metadata the controller serves). Clients of data
  (produce, fetch, groups) are never served there, and an unauthenticated
  connection is refused.
- Principals: ``admin`` (a super user: the platform's own processes, which
  create and delete topics and write ``orders`` and ``control``), ``broker``
  (the node talking to itself, super user), ``controller`` (the controller
  listener) and ``client``, limited by ACLs to reading topics and using
  consumer groups, so only the platform's principals write anything. The
  authorizer is ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``.
- Credentials are generated on first start (never a well-known default), kept
  in ``home/credentials.json`` (mode 0600, ``home`` 0700) and reused on every
  later start. The SCRAM users are added when the storage is formatted
  (``StorageTool format --add-scram``) through a Java argument file, the
  broker's own logins are in ``server.properties`` (mode 0600): no secret is
  ever on a command line.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from deploy.local_service import (
    LocalService,
    SecretsFile,
    install_once,
    is_installed,
    write_private,
)
from deploy.process import ServiceError

HERE = Path(__file__).resolve().parent
KAFKA_VERSION = "4.1.1"
SCRAM = "SCRAM-SHA-512"
PRINCIPALS = ("admin", "client", "broker", "controller")
"""Who has credentials: the platform (super user), read-only clients, the node itself twice."""


def sasl_config(username: str, password: str) -> dict[str, str]:
    """librdkafka settings that log in as ``username`` on a SCRAM-SHA-512 listener."""
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": SCRAM,
        "sasl.username": username,
        "sasl.password": password,
    }


def read_credentials(path: Path, principal: str = "admin") -> dict[str, str]:
    """``username`` and ``password`` of ``principal`` from a credentials file.

    The file is this service's ``credentials.json`` (one entry per principal)
    or a file holding one ``{"username": ..., "password": ...}`` object.
    """
    return _login(json.loads(path.read_text()), principal, path)


def _login(data: object, principal: str, path: Path) -> dict[str, str]:
    entry = data.get(principal, data) if isinstance(data, dict) else None
    if not isinstance(entry, dict) or not {"username", "password"} <= entry.keys():
        raise ServiceError(f"{path} holds no username and password for {principal!r}")
    return {"username": str(entry["username"]), "password": str(entry["password"])}


def _new_login(principal: str) -> dict[str, str]:
    """A generated login: never a well-known default."""
    return {
        "username": f"marketlake-{principal}-{secrets.token_hex(4)}",
        "password": secrets.token_urlsafe(30),
    }


def _jaas(module: str, **options: str) -> str:
    return f"{module} required " + " ".join(f'{k}="{v}"' for k, v in options.items()) + ";"


@dataclass
class KafkaService(LocalService):
    """One local Kafka node; ``home`` holds config, data, credentials, log and pid file."""

    port: int = 19092
    controller_port: int = 19093
    heap_mb: int = 1024
    java: str = "java"
    start_timeout: float = 90.0

    name = "kafka"
    title = "Kafka"
    start_attempts = 2
    poll_interval = 1.0
    stop_timeout = 60.0

    # -- locations ------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return self.address

    @property
    def libs(self) -> Path:
        return self.cache / "kafka" / KAFKA_VERSION / "libs"

    @property
    def config_file(self) -> Path:
        return self.home / "config" / "server.properties"

    def _process_marker(self) -> str:
        return str(self.config_file)

    # -- credentials ----------------------------------------------------------------------
    def _secrets(self) -> SecretsFile:
        return SecretsFile(
            self.credentials_file,
            self.title,
            {p: partial(_new_login, p) for p in PRINCIPALS},
            data=self.data_dir / "meta.properties",  # formatted with the SCRAM users
        )

    def credentials(self, principal: str = "admin") -> dict[str, str]:
        """``username`` and ``password`` of ``principal`` (generated on first start)."""
        return _login(self._credentials(), principal, self.credentials_file)

    def client_config(self, principal: str = "admin") -> dict[str, str]:
        """SASL settings for a confluent_kafka client (``admin``: the platform; ``client``)."""
        creds = self.credentials(principal)
        return sasl_config(creds["username"], creds["password"])

    def env(self) -> dict[str, str]:
        """The platform's settings (MARKETLAKE_*) that point a process at this broker."""
        return {
            "MARKETLAKE_EVENT_LOG": "kafka",
            "MARKETLAKE_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "MARKETLAKE_KAFKA_CREDENTIALS_FILE": str(self.credentials_file),
        }

    # -- install ------------------------------------------------------------------------
    def install(self) -> Path:
        """Resolve the broker's jars with Maven (once; cached outside the repository)."""
        return install_once(self.libs, self._resolve)

    def installed(self) -> bool:
        return is_installed(self.libs)

    def _resolve(self, into: Path) -> str:
        if shutil.which("mvn") is None:
            raise ServiceError("Maven (mvn) is needed to install Kafka: apt-get install maven")
        pom = self.libs.parent / "pom.xml"
        shutil.copy(HERE / "pom.xml", pom)
        cmd = [
            "mvn", "-q", "-B", "-f", str(pom),
            "dependency:copy-dependencies", f"-DoutputDirectory={into}",
            "-DincludeScope=runtime", f"-Dkafka.version={KAFKA_VERSION}",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ServiceError(
                f"Maven could not resolve Kafka {KAFKA_VERSION}:\n{proc.stdout[-2000:]}"
            )
        return KAFKA_VERSION

    # -- configure ----------------------------------------------------------------------
    def configure(self) -> None:
        """Write server.properties (mode 0600: it holds the node's own logins); format the
        storage the first time, with the SCRAM users."""
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.parent.chmod(0o700)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        broker, controller = self.credentials("broker"), self.credentials("controller")
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
        plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"BROKER://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"BROKER://{self.host}:{self.port}",
            "inter.broker.listener.name": "BROKER",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "BROKER:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
            # clients: SCRAM only; the node logs in to itself as 'broker'
            "listener.name.broker.sasl.enabled.mechanisms": SCRAM,
            "sasl.mechanism.inter.broker.protocol": SCRAM,
            f"listener.name.broker.{SCRAM.lower()}.sasl.jaas.config": _jaas(
                scram, username=broker["username"], password=broker["password"]
            ),
            # controller: PLAIN with the one user this file defines (no SCRAM on controllers)
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": _jaas(
                plain,
                username=controller["username"],
                password=controller["password"],
                **{f"user_{controller['username']}": controller["password"]},
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": ";".join(
                f"User:{self.credentials(p)['username']}" for p in ("admin", "broker", "controller")
            ),
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
        }
        write_private(self.config_file, "".join(f"{k}={v}\n" for k, v in props.items()))
        if not (self.data_dir / "meta.properties").exists():
            self._format()

    def _format(self) -> None:
        """Format the storage (cluster id generated) with the SCRAM users in its metadata.

        The arguments, passwords included, go through a Java argument file
        (``java @file``, mode 0600, removed afterwards), so they are never on
        the command line that ``ps`` and /proc/<pid>/cmdline show.
        """
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        args = ["kafka.tools.StorageTool", "format",
                f"--cluster-id={cluster_id}", f"--config={self.config_file}"]  # fmt: skip
        for principal in ("admin", "client", "broker"):
            creds = self.credentials(principal)
            args += [
                "--add-scram",
                f"{SCRAM}=[name={creds['username']},password={creds['password']}]",
            ]
        argfile = self.config_file.parent / "format.args"
        # one argument per line, quoted (backslash escapes inside quotes): the launcher's syntax
        quoted = (a.replace("\\", "\\\\").replace('"', '\\"') for a in args)
        write_private(argfile, "".join(f'"{a}"\n' for a in quoted))
        try:
            proc = subprocess.run(
                [*self._java_cmd(), f"@{argfile}"], capture_output=True, text=True
            )
        finally:
            argfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise ServiceError(f"formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")

    def _java_cmd(self, heap_mb: int = 256) -> list[str]:
        return [
            self.java,
            f"-Xms{min(heap_mb, 256)}m",
            f"-Xmx{heap_mb}m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
        ]

    # -- run ----------------------------------------------------------------------------
    def command(self) -> list[str]:
        """The broker on the JVM (its logins are in ``server.properties``, never here)."""
        return [*self._java_cmd(self.heap_mb), "kafka.Kafka", str(self.config_file)]

    def server_env(self) -> dict[str, str]:
        return {"KAFKA_HEAP_OPTS": f"-Xmx{self.heap_mb}m"}

    def _started(self) -> None:
        self._grant_client_acls()

    def _grant_client_acls(self) -> None:
        """``client`` may read every topic and use consumer groups, nothing more (idempotent)."""
        from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported implicitly
            AclBinding,
            AclOperation,
            AclPermissionType,
            AdminClient,
            ResourcePatternType,
            ResourceType,
        )

        principal = f"User:{self.credentials('client')['username']}"
        grants = [
            (ResourceType.TOPIC, AclOperation.READ),
            (ResourceType.TOPIC, AclOperation.DESCRIBE),
            (ResourceType.GROUP, AclOperation.READ),
            (ResourceType.GROUP, AclOperation.DESCRIBE),
        ]
        admin = AdminClient(
            {"bootstrap.servers": self.bootstrap, "log_level": 0, **self.client_config()}
        )
        bindings = [
            AclBinding(kind, "*", ResourcePatternType.LITERAL, principal, "*", op,
                       AclPermissionType.ALLOW)
            for kind, op in grants
        ]  # fmt: skip
        for fut in admin.create_acls(bindings, request_timeout=30).values():
            fut.result(60)

    def healthy(self, timeout: float = 3.0) -> bool:
        """The broker answers the platform principal's metadata request."""
        from confluent_kafka.admin import AdminClient

        if not self._listening():
            return False
        try:
            admin = AdminClient(
                {"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 2000, "log_level": 0,
                 **self.client_config()}
            )  # fmt: skip
            md = admin.list_topics(timeout=timeout)
            return bool(md.brokers)
        except Exception:
            return False


def java_for_kafka() -> str:
    """The JDK's java: $JAVA_HOME/bin/java when set, else the one on PATH (17 is enough)."""
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"
