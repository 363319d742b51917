"""Trino (one node: coordinator and worker) installed from Maven Central, run on Java 24+.

Why this shape. The full ``io.trino:trino-server`` tarball is about 800 MB,
nearly all of it connectors the platform never uses, so the install takes the
engine alone, ``io.trino:trino-server-core:<v>:tar.gz`` (about 190 MB, with the
``password-authenticators`` plugin inside), plus the plugin zips it needs:
``trino-iceberg`` (the lake) and ``trino-memory`` (a catalog that needs no other
service). Each archive is checked against the SHA-1 Maven Central publishes
beside it and unpacked once into ``<cache>/trino/<version>/``. 476 is the
newest release whose server-core tarball and plugin zips are on Maven Central
(later releases publish jars only).

The lifecycle (install once, private home, generated credentials, start,
wait, stop, status) is :class:`deploy.local_service.LocalService`; this
module adds what is Trino's own. Configure: write ``config.properties`` (node
and server settings), ``jvm.config``, ``log.properties``, the security files
below and one ``catalog/<name>.properties`` per catalog the caller passes
under ``<home>/etc``. Command: ``io.trino.server.TrinoServer`` on a JDK 24+ directly
(the command Trino's launcher would build, without the launcher), bound to
127.0.0.1. Healthy: ``/v1/info`` reports that startup finished and ``SELECT 1``
answers; a start returns only once every catalog can be scheduled. The first
start on two loaded cores can be slow, so a failed start is tried once more,
and its error shows the errors Trino logged. Catalogs are read at start only
(static catalog management): changing them needs a restart.

Security (nothing is anonymous, nothing secret is on a command line):

- HTTPS only (``http-server.http.enabled=false``), bound to ``host``, with a
  self-signed certificate (EC P-256, SAN ``IP:<host>``, ``IP:127.0.0.1``,
  ``DNS:localhost``, ten years) that ``keytool`` of the JDK running Trino
  generates on first start into ``home/tls/keystore.p12``; its certificate is
  exported to ``home/tls/ca.pem``, which clients pass as ``verify`` (``ca_file``).
  Trino refuses password authentication over plain HTTP, and a real TLS
  listener costs nothing here, so ``allow-insecure-over-http`` is not used.
- Password-file authentication (``http-server.authentication.type=PASSWORD``,
  the ``file`` authenticator of the bundled plugin): ``etc/password.db`` holds
  PBKDF2 hashes (``iterations:salt:hash`` in hex, HMAC-SHA1 as Trino's file
  authenticator computes it; hashlib, so no bcrypt dependency). A request
  without credentials gets 401, a wrong password too.
- Two principals, both with generated passwords: the writer (``user``, the
  platform's own code: ``execute``, publishing checks, tests that create
  tables) and the reader (``reader_user``: ``marketlake query``, dashboards).
  File-based system access control (``etc/rules.json``) gives the writer every
  catalog, schema ownership and all table privileges; the reader read-only
  catalogs (``reader_catalogs``, or all) and SELECT on tables, so its
  CREATE/INSERT/DELETE/DROP/ALTER are refused with "Access Denied". Nobody else
  matches any rule. Those rules let anyone run table procedures (``ALTER TABLE
  ... EXECUTE``), so the stack gives the reader a catalog that is read-only in
  the connector itself (``iceberg_jdbc_catalog(read_only=True)``).
- Internal communication (the node talking to itself: discovery, tasks) is
  authenticated with a generated ``internal-communication.shared-secret`` and
  runs over the same HTTPS listener, trusting ``ca.pem``.
- Passwords, the shared secret and the keystore password are generated
  (``secrets``) on first start into ``home/credentials.json`` (mode 0600, home
  0700) and reused on every later start (one that is lost is generated again,
  and then the certificate too); they reach Trino through its config files
  (0600, as every file under ``etc``) and ``keytool`` through its environment
  (``-storepass:env``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import resource
import secrets
import shutil
import subprocess
import tarfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.local_service import (
    LocalService,
    SecretsFile,
    fetch,
    install_once,
    is_installed,
    write_private,
)
from deploy.process import ServiceError

TRINO_VERSION = "476"
MIN_JAVA = 24  # Trino 476 refuses older JDKs (the docs name 24.0.1; 25 works)
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"
# plugin directory name -> artifactId of its zip (io.trino:<artifactId>:<version>:zip)
PLUGINS = {"iceberg": "trino-iceberg", "memory": "trino-memory"}
_CATALOG_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_NO_NODES_GRACE_S = 30.0  # the node manager refreshes from discovery every 5 s
_AIRLIFT_ERROR = re.compile(r"^\d+\) ")  # "1) Error: Configuration property 'x' was not used"
_USER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # also safe inside rules.json's regexes
PBKDF2_ITERATIONS = 100_000  # Trino's file authenticator wants >= 1000; results are cached
CERT_VALIDITY_DAYS = 3650
WRITER_TABLE_PRIVILEGES = ("SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT")
# credentials.json: generated secrets (each secrets.token_urlsafe(32), about 43 characters)
_SECRETS = ("writer_password", "reader_password", "shared_secret", "keystore_password")

# Trino's recommended jvm.config (docs: installation/deployment, and the lines its
# own tests and Docker image add for Java 24+), minus heap dumps (a 2-3 GB file
# per OutOfMemoryError) and the RAM percentages (we size the heap explicitly).
JVM_OPTIONS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:G1HeapRegionSize=32M",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:ReservedCodeCacheSize=256M",
    "-XX:PerMethodRecompilationCutoff=10000",
    "-XX:PerBytecodeRecompilationCutoff=10000",
    "-Djdk.attach.allowAttachSelf=true",
    "-Djdk.nio.maxCachedBufferSize=2000000",
    "-Dfile.encoding=UTF-8",
    "-XX:+EnableDynamicAgentLoading",
    "-XX:+UnlockDiagnosticVMOptions",
    "-XX:G1NumCollectionsKeepPinned=10000000",
    "--add-modules=jdk.incubator.vector",
    "--sun-misc-unsafe-memory-access=allow",
    "--enable-native-access=ALL-UNNAMED",
)


@dataclass
class TrinoService(LocalService):
    """One local Trino node; ``home`` holds config, data, log and pid file.

    ``catalogs`` maps a catalog name to its properties (``connector.name`` and
    the connector's settings), written to ``etc/catalog/<name>.properties`` on
    every start; nothing else is configured. See ``iceberg_jdbc_catalog`` and
    ``memory_catalog`` for the two connectors the install ships.

    ``user`` is the writer principal (full access), ``reader_user`` the read-only
    one; their passwords are generated on first start (``password``,
    ``reader_password``) and clients verify the server against ``ca_file``. The
    reader reads ``reader_catalogs`` (and ``system``) if given, else every catalog;
    give it catalogs whose connector is read-only itself (``iceberg_jdbc_catalog(...,
    read_only=True)``) to refuse table procedures too (see ``access_rules``).
    """

    port: int = 18080
    heap_mb: int = 2560
    catalogs: dict[str, dict[str, str]] = field(default_factory=dict)
    java: str | None = None  # default: java_for_trino()
    user: str = "marketlake"  # the writer principal
    reader_user: str = "marketlake_reader"  # the read-only principal
    reader_catalogs: tuple[str, ...] | None = None  # what the reader reads; None: every catalog
    start_timeout: float = 180.0
    maven_repository: str = MAVEN_CENTRAL

    name = "trino"
    title = "Trino"
    start_attempts = 2
    poll_interval = 2.0
    stop_timeout = 60.0

    def __post_init__(self) -> None:
        for name in (self.user, self.reader_user):
            if not _USER_NAME.match(name):
                raise ServiceError(f"Trino user name {name!r}: use lowercase letters, digits, _")
        if self.user == self.reader_user:
            raise ServiceError("the writer and the reader must be different Trino users")
        for catalog in self.reader_catalogs or ():
            if not _CATALOG_NAME.match(catalog):
                raise ServiceError(f"catalog name {catalog!r}: use lowercase letters, digits, _")
        super().__post_init__()

    # -- locations ------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"https://{self.address}"

    @property
    def install_dir(self) -> Path:
        return self.cache / "trino" / TRINO_VERSION

    @property
    def etc_dir(self) -> Path:
        return self.home / "etc"

    @property
    def config_file(self) -> Path:
        return self.etc_dir / "config.properties"

    @property
    def catalog_dir(self) -> Path:
        return self.etc_dir / "catalog"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def keystore_file(self) -> Path:
        return self.tls_dir / "keystore.p12"

    @property
    def ca_file(self) -> Path:
        """The server's self-signed certificate (PEM): what clients verify against."""
        return self.tls_dir / "ca.pem"

    def _process_marker(self) -> str:
        return str(self.config_file)

    # -- credentials ----------------------------------------------------------------------
    def _secrets(self) -> SecretsFile:
        return SecretsFile(self.credentials_file, self.title, dict.fromkeys(_SECRETS, _new_secret))

    @property
    def password(self) -> str:
        """The writer's password (``user``), generated on first start."""
        return str(self._credentials()["writer_password"])

    @property
    def reader_password(self) -> str:
        """The read-only principal's password (``reader_user``), generated on first start."""
        return str(self._credentials()["reader_password"])

    def principal(self, reader: bool = False) -> tuple[str, str]:
        """(user, password) of the writer, or of the reader."""
        creds = self._credentials()
        if reader:
            return self.reader_user, creds["reader_password"]
        return self.user, creds["writer_password"]

    def _ensure_certificate(self, java: str, renew: bool = False) -> None:
        """A self-signed key pair in ``keystore.p12`` and its certificate in ``ca.pem``.

        ``keytool`` of the JDK that runs Trino makes both; the store password reaches it
        through its environment, never its command line.
        """
        if renew:
            shutil.rmtree(self.tls_dir, ignore_errors=True)
        if self.keystore_file.is_file() and self.ca_file.is_file():
            return
        keytool = Path(java).parent / "keytool"
        if not keytool.is_file():
            raise ServiceError(f"no keytool beside {java}: cannot make Trino's TLS certificate")
        shutil.rmtree(self.tls_dir, ignore_errors=True)
        self.tls_dir.mkdir(mode=0o700, parents=True)
        env = {**os.environ, "MARKETLAKE_TRINO_STOREPASS": self._credentials()["keystore_password"]}
        names = dict.fromkeys([self.host, "127.0.0.1", "localhost"])
        san = ",".join(f"{'IP' if _is_ip(n) else 'DNS'}:{n}" for n in names)
        store = ["-keystore", str(self.keystore_file), "-storetype", "PKCS12",
                 "-storepass:env", "MARKETLAKE_TRINO_STOREPASS"]  # fmt: skip
        for args in (
            ["-genkeypair", "-alias", "trino", "-keyalg", "EC", "-groupname", "secp256r1",
             "-sigalg", "SHA256withECDSA", "-dname", "CN=marketlake-trino",
             "-validity", str(CERT_VALIDITY_DAYS), "-ext", f"SAN={san}",
             "-ext", "BC:c=ca:true", "-ext", "KU=digitalSignature,keyCertSign",
             "-ext", "EKU=serverAuth,clientAuth", *store],
            ["-exportcert", "-rfc", "-alias", "trino", "-file", str(self.ca_file), *store],
        ):  # fmt: skip
            proc = subprocess.run(
                [str(keytool), "-noprompt", *args],
                env=env, capture_output=True, text=True, check=False, timeout=120,
            )  # fmt: skip
            if proc.returncode != 0:
                shutil.rmtree(self.tls_dir, ignore_errors=True)
                raise ServiceError(
                    f"keytool {args[0]} failed:\n{(proc.stdout + proc.stderr)[-2000:]}"
                )
        self.keystore_file.chmod(0o600)

    # -- install ------------------------------------------------------------------------
    def install(self) -> Path:
        """Download and unpack server core and plugins (once; cached outside the repository)."""
        return install_once(self.install_dir, self._unpack)

    def installed(self) -> bool:
        return is_installed(self.install_dir)

    def _unpack(self, into: Path) -> str:
        downloads = into / "downloads"
        downloads.mkdir()
        core = self._download("trino-server-core", "tar.gz", downloads)
        with tarfile.open(core) as tar:
            tar.extractall(into, filter="data")
        core.unlink()
        top = into / f"trino-server-core-{TRINO_VERSION}"
        for child in top.iterdir():
            child.rename(into / child.name)
        top.rmdir()
        for plugin, artifact in PLUGINS.items():
            archive = self._download(artifact, "zip", downloads)
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(downloads / plugin)
            archive.unlink()
            (downloads / plugin / f"{artifact}-{TRINO_VERSION}").rename(into / "plugin" / plugin)
        shutil.rmtree(downloads)
        if not any((into / "lib").glob("io.trino_trino-server-main-*.jar")):
            raise ServiceError(f"Trino {TRINO_VERSION} server core is incomplete in {into}")
        return TRINO_VERSION

    def _download(self, artifact: str, ext: str, into: Path) -> Path:
        """io.trino:<artifact>:<version>:<ext> from the Maven repository, SHA-1 checked."""
        name = f"{artifact}-{TRINO_VERSION}.{ext}"
        url = f"{self.maven_repository.rstrip('/')}/io/trino/{artifact}/{TRINO_VERSION}/{name}"
        target = into / name
        digest = hashlib.sha1()
        try:
            with urllib.request.urlopen(f"{url}.sha1", timeout=60) as resp:
                expected = resp.read().decode().split()[0].strip().lower()
            with urllib.request.urlopen(url, timeout=60) as resp, target.open("wb") as out:
                while chunk := resp.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            raise ServiceError(f"could not download {url}: {exc}") from exc
        if digest.hexdigest() != expected:
            raise ServiceError(f"{url}: SHA-1 {digest.hexdigest()} != published {expected}")
        return target

    # -- configure ----------------------------------------------------------------------
    def configure(self) -> None:
        """Write server, JVM, log, security and catalog configuration under ``home/etc``.

        Needs the credentials and the certificate (``start`` makes them first).
        """
        for name, props in self.catalogs.items():
            if not _CATALOG_NAME.match(name):
                raise ServiceError(f"catalog name {name!r}: use lowercase letters, digits, _")
            if "connector.name" not in props:
                raise ServiceError(f"catalog {name!r} has no connector.name")
        creds = self._credentials()
        self.catalog_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.home / "tmp").mkdir(parents=True, exist_ok=True)
        # node.* normally sit in node.properties, which only the launcher reads (and
        # turns into -D flags); the server reads one file, so they go in config.properties.
        _write_properties(
            self.config_file,
            {
                "node.environment": "marketlake",
                "node.id": "marketlake-trino-1",
                "node.bind-ip": self.host,
                "node.internal-address": self.host,
                "coordinator": "true",
                "node-scheduler.include-coordinator": "true",
                "http-server.http.enabled": "false",
                "http-server.https.enabled": "true",
                "http-server.https.port": str(self.port),
                "http-server.https.keystore.path": str(self.keystore_file),
                "http-server.https.keystore.key": creds["keystore_password"],
                "http-server.authentication.type": "PASSWORD",
                "internal-communication.shared-secret": creds["shared_secret"],
                "internal-communication.https.required": "true",
                "internal-communication.https.keystore.path": str(self.keystore_file),
                "internal-communication.https.keystore.key": creds["keystore_password"],
                "internal-communication.https.truststore.path": str(self.ca_file),
                "discovery.uri": self.url,
                "plugin.dir": str(self.install_dir / "plugin"),
                "query.max-memory": f"{max(self.heap_mb * 4 // 10, 256)}MB",
                "query.max-memory-per-node": f"{max(self.heap_mb * 3 // 10, 128)}MB",
                "http-server.log.path": str(self.data_dir / "var" / "log" / "http-request.log"),
                "log.levels-file": str(self.etc_dir / "log.properties"),
            },
        )  # holds the shared secret and the keystore password
        _write_properties(
            self.etc_dir / "password-authenticator.properties",
            {
                "password-authenticator.name": "file",
                "file.password-file": str(self.etc_dir / "password.db"),
            },
        )
        write_private(
            self.etc_dir / "password.db",
            "".join(
                f"{user}:{pbkdf2_hash(password)}\n"
                for user, password in (self.principal(), self.principal(reader=True))
            ),
        )
        _write_properties(
            self.etc_dir / "access-control.properties",
            {
                "access-control.name": "file",
                "security.config-file": str(self.etc_dir / "rules.json"),
            },
        )
        write_private(
            self.etc_dir / "rules.json",
            json.dumps(access_rules(self.user, self.reader_user, self.reader_catalogs), indent=2),
        )
        write_private(self.etc_dir / "jvm.config", "\n".join(self._jvm_options()) + "\n")
        _write_properties(self.etc_dir / "log.properties", {"io.trino": "INFO"})
        for stale in self.catalog_dir.glob("*.properties"):
            if stale.stem not in self.catalogs:
                stale.unlink()
        for name, props in self.catalogs.items():
            _write_properties(self.catalog_dir / f"{name}.properties", props)

    def _jvm_options(self) -> list[str]:
        return [
            f"-Xmx{self.heap_mb}m",
            *JVM_OPTIONS,
            f"-Djava.io.tmpdir={self.home / 'tmp'}",
            f"-XX:ErrorFile={self.home / 'hs_err_pid%p.log'}",
        ]

    def command(self) -> list[str]:
        """The java command line that runs the server (what Trino's launcher would exec)."""
        return [
            self._java(),
            "-cp",
            f"{self.install_dir / 'lib'}/*",
            *self._jvm_options(),
            f"-Dconfig={self.config_file}",
            "io.trino.server.TrinoServer",
        ]

    def _java(self) -> str:
        return self.java or java_for_trino()

    # -- run ----------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Credentials, the certificate (made again when a secret was generated: its store
        password may be among them), the configuration, and enough file descriptors."""
        renew = self._ensure_credentials()
        self._ensure_certificate(self._java(), renew=renew)
        self.configure()
        _raise_open_files_limit(8192)  # Trino refuses to start below 4096 descriptors

    def _started(self) -> None:
        self._await_catalogs()

    def _await_catalogs(self) -> None:
        """Return once every catalog can be scheduled, not only ``SELECT 1``.

        A healthy node takes a catalog into its scheduler's node set only at the
        node manager's next refresh, so a client's first query right after start
        could fail with NO_NODES_AVAILABLE; one scan per catalog here (retried by
        ``execute``) keeps that window inside ``start``. Any other error (a
        catalog whose backend is not up) is the catalog's, not the start's.
        """
        from trino.exceptions import TrinoQueryError

        for name in sorted(self.catalogs):
            try:
                self.execute(f"SELECT count(*) FROM {name}.information_schema.schemata")
            except TrinoQueryError as exc:
                if exc.error_name == "NO_NODES_AVAILABLE":
                    raise ServiceError(f"Trino catalog {name!r} never became schedulable") from exc

    def failure_report(self) -> str:
        """The errors Trino logged since this start (they precede long stack traces), then the tail."""
        try:
            with self.process.log_file.open("rb") as fh:
                fh.seek(self._log_offset)
                lines = fh.read().decode(errors="replace").splitlines()
        except OSError:
            lines = []
        errors = [ln for ln in lines if "\tERROR\t" in ln or _AIRLIFT_ERROR.match(ln)]
        report = "\n".join(dict.fromkeys(errors[:12]))
        return (f"errors:\n{report}\n" if report else "") + "last lines:\n" + "\n".join(lines[-25:])

    def info(self, timeout: float = 3.0) -> dict[str, Any] | None:
        """``GET /v1/info`` (version, uptime, ``starting``; public), or None when nothing answers."""
        if not self.ca_file.is_file():
            return None
        try:
            data: dict[str, Any] = json.loads(fetch(f"{self.url}/v1/info", timeout, self.ca_file))
        except (OSError, ValueError):
            return None
        return data

    def healthy(self, timeout: float = 10.0) -> bool:
        """Startup finished (``/v1/info`` says starting=false) and ``SELECT 1`` answers."""
        info = self.info()
        if info is None or info.get("starting", True):
            return False
        try:
            return self.execute("SELECT 1", timeout=timeout) == [[1]]
        except Exception:
            return False

    def connect(
        self,
        catalog: str | None = None,
        schema: str | None = None,
        timeout: float = 60.0,
        *,
        reader: bool = False,
    ) -> Any:
        """A DB-API connection (the ``trino`` client) to this node, as the writer or the reader."""
        import trino

        user, password = self.principal(reader)
        return trino.dbapi.connect(  # type: ignore[no-untyped-call]  # the client is unannotated
            host=self.host,
            port=self.port,
            user=user,
            auth=trino.auth.BasicAuthentication(user, password),
            catalog=catalog,
            schema=schema,
            http_scheme="https",
            http_session=https_session(self.ca_file),
            request_timeout=timeout,
        )

    def execute(self, sql: str, timeout: float = 60.0, *, reader: bool = False) -> list[list[Any]]:
        """Run one statement as the writer (or the reader) and return all its rows.

        A catalog joins the scheduler's node set only when the node manager next
        refreshes from discovery (every few seconds), so in the first seconds
        after start a statement on a catalog can fail with NO_NODES_AVAILABLE
        although the node is healthy; that one error is retried for a while.
        """
        from trino.exceptions import TrinoQueryError

        deadline = time.monotonic() + _NO_NODES_GRACE_S
        while True:
            conn = self.connect(timeout=timeout, reader=reader)
            try:
                cur = conn.cursor()
                cur.execute(sql)
                return [list(row) for row in cur.fetchall()]
            except TrinoQueryError as exc:
                if exc.error_name != "NO_NODES_AVAILABLE" or time.monotonic() > deadline:
                    raise
            finally:
                conn.close()
            time.sleep(0.5)

    def status(self) -> dict[str, object]:
        return {
            **super().status(),
            "version": TRINO_VERSION,
            "url": self.url,
            "catalogs": sorted(self.catalogs),
        }


# -- catalogs -------------------------------------------------------------------------
def memory_catalog() -> dict[str, str]:
    """Tables held in the node's memory: needs no other service (tests, scratch work)."""
    return {"connector.name": "memory"}


def iceberg_jdbc_catalog(
    *,
    catalog_name: str,
    jdbc_url: str,
    jdbc_user: str,
    jdbc_password: str,
    warehouse: str,
    s3_endpoint: str,
    s3_access_key: str,
    s3_secret_key: str,
    s3_region: str = "us-east-1",
    read_only: bool = False,
) -> dict[str, str]:
    """Iceberg on Iceberg's JDBC catalog (PostgreSQL) with data on S3 (MinIO or any S3).

    ``catalog_name`` must equal pyiceberg's ``SqlCatalog`` name: both keep their
    rows in the same ``iceberg_tables`` table, keyed by it (Trino does not create
    that table; pyiceberg does). ``jdbc_url`` is ``jdbc:postgresql://host:port/db``;
    ``warehouse`` is where new schemas go, e.g. ``s3://lake/warehouse``.

    ``read_only`` sets the connector's own ``iceberg.security=read_only``: every
    write, DDL and table procedure (``ALTER TABLE ... EXECUTE``) is refused on that
    catalog whoever asks, which file-based system access control alone cannot do
    (it lets anyone run table procedures).
    """
    security = {"iceberg.security": "read_only"} if read_only else {}
    return {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "jdbc",
        "iceberg.jdbc-catalog.catalog-name": catalog_name,
        "iceberg.jdbc-catalog.driver-class": "org.postgresql.Driver",
        "iceberg.jdbc-catalog.connection-url": jdbc_url,
        "iceberg.jdbc-catalog.connection-user": jdbc_user,
        "iceberg.jdbc-catalog.connection-password": jdbc_password,
        "iceberg.jdbc-catalog.default-warehouse-dir": warehouse,
        "fs.native-s3.enabled": "true",
        "s3.endpoint": s3_endpoint,
        "s3.region": s3_region,
        "s3.path-style-access": "true",
        "s3.aws-access-key": s3_access_key,
        "s3.aws-secret-key": s3_secret_key,
        **security,
    }


# -- security -------------------------------------------------------------------------
def access_rules(
    writer: str, reader: str, reader_catalogs: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """File-based system access control: ``writer`` may do anything, ``reader`` only read.

    The reader reads ``reader_catalogs`` and ``system`` (every catalog if None). Rules
    match names as whole-string regexes (users and catalogs are ``[a-z][a-z0-9_]*``);
    the first matching rule wins and no match means no access, so any other user gets
    nothing. One gap these rules cannot close: Trino's file-based access control
    allows table procedures (``ALTER TABLE ... EXECUTE optimize | expire_snapshots |
    rollback_to_snapshot | add_files ...``) to anyone who can see the table, so the
    reader's catalogs must refuse them themselves (``iceberg.security=read_only``).
    """
    readable = ".*" if reader_catalogs is None else "|".join([*reader_catalogs, "system"])
    return {
        "catalogs": [
            {"user": writer, "catalog": ".*", "allow": "all"},
            {"user": reader, "catalog": readable, "allow": "read-only"},
            {"catalog": ".*", "allow": "none"},
        ],
        "schemas": [{"user": writer, "owner": True}, {"user": reader, "owner": False}],
        "tables": [
            {"user": writer, "privileges": list(WRITER_TABLE_PRIVILEGES)},
            {"user": reader, "privileges": ["SELECT"]},
        ],
        "procedures": [{"user": writer, "privileges": ["EXECUTE"]}],
        "queries": [
            {"user": writer, "allow": ["execute", "view", "kill"]},
            {"user": reader, "allow": ["execute"]},
        ],
        "system_information": [{"user": writer, "allow": ["read", "write"]}],
        "authorization": [],  # nobody changes an owner (ALTER ... SET AUTHORIZATION)
    }


def pbkdf2_hash(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    """``iterations:salt:hash`` (hex) as Trino's file authenticator reads it (PBKDF2-HMAC-SHA1)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, iterations, dklen=32)
    return f"{iterations}:{salt.hex()}:{digest.hex()}"


def https_session(ca_file: str | Path) -> Any:
    """A ``requests`` session that trusts ``ca_file`` only, for the ``trino`` client.

    The client's own ``verify=`` is overridden by ``$REQUESTS_CA_BUNDLE`` or
    ``$CURL_CA_BUNDLE`` (requests' environment settings win over a session's), and
    proxies from the environment would catch 127.0.0.1: the session ignores the
    environment (``trust_env=False``). A connection that fails before Trino answers
    (a TLS handshake cut short, a pooled connection Trino's server had just closed:
    seen on a loaded machine) is tried again on a new one, at most three times; a
    request Trino may have read is never sent twice (no read retries).
    """
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_file)
    retry = Retry(
        total=3, connect=3, other=3, read=0, status=0, redirect=0, backoff_factor=0.2,
        allowed_methods=None, raise_on_status=False,
    )  # fmt: skip
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# -- helpers --------------------------------------------------------------------------
def java_for_trino() -> str:
    """A ``java`` of JDK 24+ with the jdk.incubator.vector module.

    Looked for in order: ``$TRINO_JAVA_HOME``, ``$MARKETLAKE_TRINO_JAVA_HOME``,
    ``$JAVA_HOME`` (if new enough), then the newest JDK under /usr/lib/jvm.
    """
    for var in ("TRINO_JAVA_HOME", "MARKETLAKE_TRINO_JAVA_HOME"):
        if home := os.environ.get(var):
            java = Path(home) / "bin" / "java"
            if not java.is_file():
                raise ServiceError(f"${var}={home} has no bin/java")
            problem = _jdk_problem(Path(home))
            if problem:
                raise ServiceError(f"${var}={home}: {problem}")
            return str(java)
    candidates: list[Path] = []
    if home := os.environ.get("JAVA_HOME"):
        candidates.append(Path(home))
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        found = [p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink()]
        candidates += sorted(found, key=lambda p: _jdk_version(p) or 0, reverse=True)
    for home_dir in candidates:
        if (home_dir / "bin" / "java").is_file() and _jdk_problem(home_dir) is None:
            return str(home_dir / "bin" / "java")
    raise ServiceError(
        f"Trino {TRINO_VERSION} needs a JDK {MIN_JAVA}+ with jdk.incubator.vector "
        "(e.g. Temurin 25); none found in $TRINO_JAVA_HOME, $JAVA_HOME or /usr/lib/jvm. "
        "Install one and set TRINO_JAVA_HOME to it."
    )


def _release(home: Path) -> dict[str, str]:
    try:
        text = (home / "release").read_text()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip().strip('"') for k, v in pairs}


def _jdk_version(home: Path) -> int | None:
    version = _release(home).get("JAVA_VERSION", "")
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _jdk_problem(home: Path) -> str | None:
    """Why this JDK cannot run Trino, or None (judged from its ``release`` file)."""
    release = _release(home)
    version = _jdk_version(home)
    if version is None:
        return "no readable release file (JAVA_VERSION)"
    if version < MIN_JAVA:
        return f"Java {version} is too old (Trino {TRINO_VERSION} needs {MIN_JAVA}+)"
    modules = release.get("MODULES")
    if modules is not None and "jdk.incubator.vector" not in modules.split():
        return "the JDK lacks the jdk.incubator.vector module"
    return None


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def _write_properties(path: Path, props: dict[str, str]) -> None:
    """A Java .properties file (values escaped), readable by its owner only."""
    lines = []
    for key, value in props.items():
        if not key or any(c in key for c in " =:\n#!"):
            raise ServiceError(f"{path.name}: invalid property name {key!r}")
        value = _escape(str(value))
        if value.startswith(" "):
            value = "\\" + value
        lines.append(f"{key}={value}\n")
    write_private(path, "".join(lines))


def _raise_open_files_limit(wanted: int) -> None:
    """Raise this process's soft descriptor limit (inherited by the server) if it is low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
