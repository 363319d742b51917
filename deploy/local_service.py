"""The lifecycle every local service shares, so that each service module holds only its own part.

Kafka, PostgreSQL, MinIO, Trino, Ollama and Superset all run the same way: installed once
into a cache outside the repository, a private home (0700), credentials
generated on the first start and reused on every later one, configuration
written, one detached process bound to 127.0.0.1, a wait until it answers a
real request (retried where a first start on two loaded cores can be too
slow), and a clean stop. :class:`LocalService` is that lifecycle; a service
adds what is its own: ``install``, ``configure``, ``command``, ``healthy`` and
``installed``, plus a few hooks and numbers when it needs them.

Beside it, what the services share for files that another user must never
read and that must never be seen half-written: :func:`write_private` (mode 0600
from the first byte, replaced atomically), :class:`SecretsFile` (generated
secrets in such a file, reused, never silently generated again over data made
with them) and :func:`install_once` (a build or download done once per cache,
in a staging directory that takes its place only when complete).
:class:`GoModuleService` is the part MinIO and Ollama share: a server built
from its Go module.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from deploy.process import ManagedProcess, ServiceError, tail, wait_until

COMPLETE = ".complete"
"""The marker inside an install directory that says the install finished (it holds the version)."""
RETRY_PAUSE_S = 2.0  # between start attempts: e.g. a killed PostgreSQL's backends hold its memory
FAILED_START_STOP_S = 15.0  # SIGTERM to SIGKILL for a server that failed to start


class _Exited(Exception):
    """The server process ended while its start waited for it."""


@dataclass
class _Placement:
    """Where a service lives: the first constructor arguments of every service.

    ``home`` holds its config, data, credentials, log and pid file; ``cache``
    its install, shared by every home; ``host`` is the only address it binds.
    """

    home: Path
    cache: Path
    host: str = "127.0.0.1"


class LocalService(_Placement, ABC):
    """One server run as a local process (no Docker), from install to stop.

    A service is a dataclass subclass whose fields go on from ``home``, ``cache``
    and ``host`` with ``port``, its own settings and ``start_timeout``, each with
    the service's default. It implements ``install``, ``configure``,
    ``command``, ``healthy`` and ``installed``, and may override ``server_env``
    (the server's environment: where secrets go instead of its command line),
    ``_secrets`` (what it generates on first start), ``_started`` (work once
    healthy), ``_process_marker``, ``failure_report``, ``data_dir`` and
    ``credentials_file``.
    """

    name: str  # names the pid and log files; "service" in the status (set by each class)
    title: ClassVar[str]  # how messages call it ("PostgreSQL")
    start_attempts: ClassVar[int] = 1  # 2 where a first start on two loaded cores can be too slow
    poll_interval: ClassVar[float] = 0.5  # seconds between health checks while starting
    stop_timeout: ClassVar[float] = 30.0  # seconds from SIGTERM to SIGKILL

    port: int
    start_timeout: float
    process: ManagedProcess

    def __post_init__(self) -> None:
        self.process = ManagedProcess(self.name, self.home, marker=self._process_marker())
        self._log_offset = 0  # where the current start's lines begin in the log

    # -- what each service says about itself ------------------------------------------
    @abstractmethod
    def install(self) -> Path:
        """Install once (cached; a later call returns at once) and return what was installed."""

    @abstractmethod
    def installed(self) -> bool:
        """Whether ``install`` has finished (without installing anything)."""

    @abstractmethod
    def configure(self) -> None:
        """Write what the server reads at start (credentials exist by then)."""

    @abstractmethod
    def command(self) -> list[str]:
        """The server's command line (never a secret: those go in files or ``server_env``)."""

    @abstractmethod
    def healthy(self, timeout: float = 3.0) -> bool:
        """The server answers a real request (not only an open port)."""

    def server_env(self) -> dict[str, str]:
        """Variables added to the server's environment."""
        return {}

    def _process_marker(self) -> str:
        """A string only this server's command line holds (a reused pid is not taken for it)."""
        return str(self.data_dir)

    def _started(self) -> None:
        """Work done once a fresh start is healthy (none by default)."""
        return None

    def failure_report(self) -> str:
        """What an error about a failed start shows of the log."""
        return self.process.log_tail()

    # -- locations ----------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str | None:
        """Where a person or client reaches it over HTTP(S), if it speaks HTTP."""
        return None

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def credentials_file(self) -> Path:
        """Where the credentials generated on first start are kept (mode 0600)."""
        return self.home / "credentials.json"

    # -- credentials ----------------------------------------------------------------------
    def _secrets(self) -> SecretsFile | None:
        """The credentials this service generates on its first start (None: it has none)."""
        return None

    def _credentials(self) -> dict[str, Any]:
        """The generated credentials; ServiceError before the first start."""
        secrets = self._secrets()
        if secrets is None:
            raise ServiceError(f"{self.title} generates no credentials")
        return secrets.read()

    def _ensure_credentials(self) -> bool:
        """Make ``home`` private (0700), then generate what the credentials file lacks (all
        of it on the first start) and keep the rest; True if anything was generated."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        secrets = self._secrets()
        return secrets is not None and bool(secrets.ensure())

    # -- run ----------------------------------------------------------------------------
    def start(self) -> None:
        """Install if needed, prepare, start and wait until healthy (a no-op when it is).

        A start that is too slow, or whose process exits, is stopped and tried again
        until ``start_attempts`` are used up; then ServiceError says why, with the log.
        """
        self.install()
        if self.process.pid() is not None and self.healthy():
            return
        argv = self.command()  # first: a missing tool is a clear error before anything is written
        self._prepare()
        problem = "did not start"
        for attempt in range(self.start_attempts):
            if attempt:
                time.sleep(RETRY_PAUSE_S)
            self._log_offset = _size(self.process.log_file)
            self.process.start(argv, env=self.server_env())
            try:
                if wait_until(self._ready, self.start_timeout, interval=self.poll_interval):
                    self._started()
                    return
                problem = f"did not become healthy on {self.address} in {self.start_timeout:.0f}s"
            except _Exited:
                problem = "exited during start"
            self.process.stop(timeout=FAILED_START_STOP_S)
        tries = f" ({self.start_attempts} attempts)" if self.start_attempts > 1 else ""
        raise ServiceError(
            f"{self.title} {problem}{tries}; log {self.process.log_file}:\n" + self.failure_report()
        )

    def _prepare(self) -> None:
        """What must exist before the server runs: a private home, credentials, configuration."""
        self._ensure_credentials()
        self.configure()

    def _ready(self) -> bool:
        if self.process.pid() is None:
            raise _Exited
        return self.healthy()

    def _listening(self) -> bool:
        """Does anything accept a TCP connection on the port (a cheap check before a real one)?"""
        try:
            socket.create_connection((self.host, self.port), timeout=1.0).close()
        except OSError:
            return False
        return True

    def stop(self) -> bool:
        """SIGTERM to the server's process group, SIGKILL after ``stop_timeout``; True if it ran."""
        return self.process.stop(timeout=self.stop_timeout)

    def kill(self) -> None:
        """kill -9, as a crash would (tests)."""
        self.process.kill()

    def restart(self) -> None:
        """Stop and start again (how changed configuration takes effect)."""
        self.stop()
        self.start()

    def status(self) -> dict[str, object]:
        """The fields ``marketlake stack status`` shows for every service."""
        pid = self.process.pid()
        state = "stopped" if pid is None else ("healthy" if self.healthy() else "starting")
        return {
            "service": self.name,
            "state": state,
            "address": self.address,
            "pid": pid,
            "data_dir": str(self.data_dir),
            "log": str(self.process.log_file),
            "installed": self.installed(),
            "url": self.url,
            "credentials": str(self.credentials_file) if self._has_credentials() else None,
        }

    def _has_credentials(self) -> bool:
        return self._secrets() is not None and self.credentials_file.exists()


class GoModuleService(LocalService):
    """A service whose server is built from its Go module with ``go install`` (MinIO, Ollama).

    No registry ships these servers as binaries we may use, but their Go modules
    build: ``go install <module>@<version>`` with ``-trimpath`` (and the
    service's ``go_flags``; ``GOFLAGS`` from the environment is left out: these
    are the whole build configuration), ``CGO_ENABLED`` as ``cgo`` says, into
    ``<cache>/<name>/<version>/bin``, once per cache (the build takes minutes on
    two cores). Its output goes to ``build_log``, whose tail any error shows.
    """

    go_module: ClassVar[str]
    go_version: ClassVar[str]
    cgo: ClassVar[bool] = False
    go_flags: ClassVar[tuple[str, ...]] = ()
    go: str  # the go command (a field of the service)

    @property
    def bin_dir(self) -> Path:
        return self.cache / self.name / self.go_version / "bin"

    @property
    def binary(self) -> Path:
        return self.bin_dir / self.name

    @property
    def build_log(self) -> Path:
        return self.cache / self.name / f"build-{self.go_version}.log"

    def install(self) -> Path:
        """Build the pinned server (once; cached outside the repository); its binary."""
        install_once(self.bin_dir, self._build)
        return self.binary

    def installed(self) -> bool:
        return is_installed(self.bin_dir)

    def _check_toolchain(self) -> None:
        """What else the build needs besides Go, checked before it starts (nothing here)."""
        return None

    def _build(self, into: Path) -> str:
        go = shutil.which(self.go)
        if go is None:
            raise ServiceError(
                f"Go (1.24 or newer) is needed to build {self.title} from its Go module: "
                "install it from go.dev/dl or your distribution (make system-deps)"
            )
        self._check_toolchain()
        cgo = "1" if self.cgo else "0"
        env = {k: v for k, v in os.environ.items() if k != "GOFLAGS"}
        env |= {"GOBIN": str(into), "CGO_ENABLED": cgo}
        package = f"{self.go_module}@{self.go_version}"
        argv = [go, "install", "-trimpath", *self.go_flags, package]
        with self.build_log.open("w") as log:
            log.write(f"$ CGO_ENABLED={cgo} {' '.join(argv[1:])}\n")
            log.flush()
            proc = subprocess.run(
                argv, cwd=into.parent, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
            )
        if proc.returncode != 0 or not (into / self.name).is_file():
            raise ServiceError(
                f"go install {package} failed (exit {proc.returncode}); log {self.build_log}:\n"
                + tail(self.build_log, 30)
            )
        return self.go_version


# -- private files ----------------------------------------------------------------------
def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by its owner only from the first byte (0600).

    The text goes to a new file beside it, renamed over it: no reader sees half a
    file, and the file is never created wider and narrowed afterwards.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


@dataclass(frozen=True)
class SecretsFile:
    """Secrets a service generates on its first start, kept in one file (0600) and reused.

    ``generate`` names every entry and makes a fresh one. ``data`` exists once the
    service holds state bound to these secrets (storage formatted with its users, a
    drive written with its root key): a missing entry cannot be made again then, so
    it is an error, not a new secret. The file holds a JSON object; a subclass may
    keep another format (``load`` and ``dump``).
    """

    path: Path
    service: str  # how messages call the service
    generate: Mapping[str, Callable[[], object]]
    data: Path | None = None

    def load(self, text: str) -> dict[str, Any]:
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
        return values

    def dump(self, values: Mapping[str, object]) -> str:
        return json.dumps(values)

    def read(self) -> dict[str, Any]:
        """Every entry; ServiceError before the first start, or when one is missing."""
        values = self._stored()
        if values is None:
            raise ServiceError(
                f"no {self.service} credentials yet ({self.path}): start the service first"
            )
        if missing := self._missing(values):
            raise ServiceError(f"{self.path} lacks {', '.join(missing)}")
        return values

    def ensure(self) -> list[str]:
        """Generate the entries the file lacks (all of them the first time); their names.

        The entries already there are kept, and the file is made private again.
        """
        values = self._stored() or {}
        missing = self._missing(values)
        if not missing:
            self.path.chmod(0o600)
            return []
        if self.data is not None and self.data.exists():
            raise ServiceError(
                f"{self.data} holds data made with credentials that {self.path} no longer has "
                f"({', '.join(missing)}): restore the file, or remove the data to start afresh"
            )
        values.update({name: self.generate[name]() for name in missing})
        write_private(self.path, self.dump(values))
        return missing

    def _stored(self) -> dict[str, Any] | None:
        try:
            return self.load(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ServiceError(
                f"unreadable {self.service} credentials {self.path}: {exc}; restore it, or "
                "remove it (and any data made with it) to generate new ones"
            ) from exc

    def _missing(self, values: Mapping[str, object]) -> list[str]:
        return [name for name in self.generate if not values.get(name)]


# -- installs ---------------------------------------------------------------------------
@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` for the block (another process may be installing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def is_installed(target: Path) -> bool:
    """Did :func:`install_once` finish ``target``?"""
    return (target / COMPLETE).exists()


def install_once(target: Path, build: Callable[[Path], str]) -> Path:
    """``target``, made by ``build`` the first time only (once per cache, across processes).

    ``build(staging)`` fills a fresh directory beside ``target`` and returns the text
    of its :data:`COMPLETE` marker (the version). The directory takes ``target``'s
    place only then, so a failed or interrupted build leaves nothing that looks
    installed; a lock beside it keeps two processes from building at once.
    """
    if is_installed(target):
        return target
    with locked(target.parent / f".{target.name}.lock"):
        if not is_installed(target):
            staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
            try:
                (staging / COMPLETE).write_text(build(staging))
                shutil.rmtree(target, ignore_errors=True)
                staging.chmod(0o755)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target


def find_uv(cache: Path) -> str | None:
    """uv: the one ``make setup`` installs into ``<cache>/bootstrap``, else one on PATH, else None."""
    bootstrap = cache / "bootstrap" / "bin" / "uv"
    if bootstrap.is_file() and os.access(bootstrap, os.X_OK):
        return str(bootstrap)
    return shutil.which("uv")


# -- probes -----------------------------------------------------------------------------
def fetch(
    request: str | urllib.request.Request, timeout: float, ca_file: Path | None = None
) -> bytes:
    """The body of a 2xx answer; any other answer, or none, raises OSError (HTTPError, URLError).

    Never through a proxy (the services are on 127.0.0.1, which a proxy from the
    environment would catch); over HTTPS, ``ca_file`` is the only trusted certificate.
    """
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if ca_file is not None:
        context = ssl.create_default_context(cafile=ca_file)
        handlers.append(urllib.request.HTTPSHandler(context=context))
    with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as resp:
        body: bytes = resp.read()
    return body


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
