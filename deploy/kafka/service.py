"""Apache Kafka (KRaft, one combined broker + controller) installed from Maven Central.

Install: Maven resolves the broker's class path (``pom.xml`` beside this file)
into ``<cache>/kafka/<version>/libs`` once; a marker file makes a second
install a no-op. Start: write ``server.properties``, format the storage on
first start (cluster id generated), launch ``kafka.Kafka`` on the JVM bound to
127.0.0.1, and wait until the broker answers a metadata request. The first
start on two loaded cores can be slow, so a start that times out is retried once.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from deploy.process import ManagedProcess, ServiceError, service_status, wait_until

HERE = Path(__file__).resolve().parent
KAFKA_VERSION = "4.1.1"


@dataclass
class KafkaService:
    """One local Kafka node; ``home`` holds config, data, log and pid file."""

    home: Path
    cache: Path
    host: str = "127.0.0.1"
    port: int = 19092
    controller_port: int = 19093
    heap_mb: int = 1024
    java: str = "java"
    start_timeout: float = 90.0

    name = "kafka"

    def __post_init__(self) -> None:
        self.process = ManagedProcess(
            "kafka", self.home, marker=f"{self.home}/config/server.properties"
        )

    # -- locations ------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def libs(self) -> Path:
        return self.cache / "kafka" / KAFKA_VERSION / "libs"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def config_file(self) -> Path:
        return self.home / "config" / "server.properties"

    # -- install ------------------------------------------------------------------------
    def install(self) -> Path:
        """Resolve the broker's jars with Maven (once; cached outside the repository)."""
        marker = self.libs / ".complete"
        if marker.exists():
            return self.libs
        if shutil.which("mvn") is None:
            raise ServiceError("Maven (mvn) is needed to install Kafka: apt-get install maven")
        work = self.libs.parent
        work.mkdir(parents=True, exist_ok=True)
        shutil.copy(HERE / "pom.xml", work / "pom.xml")
        tmp = work / "libs.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            "mvn", "-q", "-B", "-f", str(work / "pom.xml"),
            "dependency:copy-dependencies", f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime", f"-Dkafka.version={KAFKA_VERSION}",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ServiceError(
                f"Maven could not resolve Kafka {KAFKA_VERSION}:\n{proc.stdout[-2000:]}"
            )
        shutil.rmtree(self.libs, ignore_errors=True)
        tmp.rename(self.libs)
        marker.write_text(KAFKA_VERSION)
        return self.libs

    # -- configure ----------------------------------------------------------------------
    def configure(self) -> None:
        """Write server.properties; format the storage the first time."""
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        if not (self.data_dir / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            proc = subprocess.run(
                [*self._java_cmd(), "kafka.tools.StorageTool", "format",
                 f"--cluster-id={cluster_id}", f"--config={self.config_file}"],
                capture_output=True, text=True,
            )  # fmt: skip
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
    def start(self) -> None:
        """Install if needed, start and wait until healthy (one retry on a slow start)."""
        self.install()
        if self.process.pid() is not None and self.healthy():
            return
        self.configure()
        for attempt in (1, 2):
            self.process.start(
                [*self._java_cmd(self.heap_mb), "kafka.Kafka", str(self.config_file)],
                env={"KAFKA_HEAP_OPTS": f"-Xmx{self.heap_mb}m"},
            )
            if wait_until(self._ready, self.start_timeout, interval=1.0):
                return
            self.process.stop(timeout=15)
            if attempt == 2:
                raise ServiceError(
                    f"Kafka did not become healthy on {self.bootstrap} in "
                    f"{self.start_timeout:.0f}s (twice); log {self.process.log_file}:\n"
                    + self.process.log_tail()
                )

    def _ready(self) -> bool:
        if self.process.pid() is None:
            raise ServiceError(f"Kafka exited during start; log:\n{self.process.log_tail()}")
        return self.healthy()

    def healthy(self, timeout: float = 3.0) -> bool:
        """The broker answers a metadata request."""
        from confluent_kafka.admin import AdminClient

        try:  # cheap first: is anything listening?
            socket.create_connection((self.host, self.port), timeout=1.0).close()
        except OSError:
            return False
        try:
            admin = AdminClient(
                {"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 2000, "log_level": 0}
            )
            md = admin.list_topics(timeout=timeout)
            return bool(md.brokers)
        except Exception:
            return False

    def stop(self) -> bool:
        return self.process.stop(timeout=60)

    def kill(self) -> None:
        self.process.kill()

    def status(self) -> dict[str, object]:
        return service_status(
            self.name,
            self.process,
            self.healthy,
            self.bootstrap,
            self.data_dir,
            (self.libs / ".complete").exists(),
        )


def java_for_kafka() -> str:
    """The JDK's java: $JAVA_HOME/bin/java when set, else the one on PATH (17 is enough)."""
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"
