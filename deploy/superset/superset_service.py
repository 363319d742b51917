"""Apache Superset (dashboards on the lake) in a virtual environment of its own, served by gunicorn.

The lifecycle (install once, private home, generated credentials, start, wait,
stop, status) is :class:`deploy.local_service.LocalService`; this module adds
what is Superset's own. Why it looks like this:

- Superset pins what the platform cannot share (SQLAlchemy < 2, older pandas
  and pyarrow), so it never enters the platform's environment: ``install()``
  makes a virtual environment of its own with uv (``uv venv --relocatable`` on
  Python 3.11, ``uv pip sync --require-hashes`` of the committed
  ``requirements.lock``, bytecode compiled) into
  ``<cache>/superset/<version>-<lock hash>/venv``, once per cache. The lock's
  hash is in the directory's name, so a changed lock installs afresh beside the
  old one instead of being mistaken for it. The environment is built in a staging
  directory and renamed into place (:func:`deploy.local_service.install_once`),
  hence ``--relocatable``: its scripts find their interpreter relative to
  themselves, not at the staging path.
- The metadata database is the stack's PostgreSQL, in a database of its own
  (``superset``) owned by a role of its own (``superset``, no other rights),
  whose generated password Superset keeps with its other credentials; every
  start sets that role's password again and creates what is missing, so the
  service takes the :class:`PostgresService` (which holds the superuser) rather
  than a ready URL.
- ``home/superset_config.py`` (0600, written on every start; Superset finds it
  through ``SUPERSET_CONFIG_PATH``, and ``SUPERSET_HOME`` is ``home/data``, so
  nothing goes to ``~/.superset``): the generated ``SECRET_KEY`` (Superset refuses
  to start with its placeholder; it also encrypts the passwords of the databases
  users add), the metadata URL, CSRF protection on, Talisman on with Superset's
  own policy (it forces no HTTPS, right for plain HTTP on 127.0.0.1), a session
  cookie name of its own (cookies are not separated by port, and other local
  UIs on 127.0.0.1 use ``session``), rate-limited logins, 8-hour sessions, an
  in-process metadata cache and a chart-data cache on disk that both workers
  share (no Redis to run; a dashboard opened twice within ten minutes reads the
  lake once). Native dashboard filters are built in (6.x has no
  ``DASHBOARD_NATIVE_FILTERS`` flag any more). No example data is ever loaded.
- Logins: the platform's accounts (``accounts``, the file ``marketlake accounts``
  edits) are checked by ``marketlake_superset.py``, a security manager copied into
  ``home/pythonpath`` (Superset's ``PYTHONPATH``): operators are Superset admins,
  viewers read dashboards, traders are refused. Superset's generated admin stays
  a local user for provisioning.
- Credentials are generated (never ``admin``/``admin``): ``SECRET_KEY``, the
  admin's password and the metadata role's password, in ``home/credentials.json``
  (0600), reused on every later start. Once the metadata exists, a lost file is
  an error rather than a new ``SECRET_KEY`` that could no longer read it.
- Setup before the server: ``superset db upgrade`` and ``superset init`` on the
  first start and after Superset itself changes (``home/data/initialized``
  records for which install they ran, and is dropped when the metadata
  database is new); on every start the admin exists with the stored password
  (created if missing, its password set back if it differs) and the ``Viewer``
  role holds its permissions, by ``python -m marketlake_superset`` in Superset's
  environment, which takes the password from its environment, never from a
  command line. Their output goes to ``home/logs/setup.log``.
- Served by gunicorn (23, the release Superset's own lock pins) as Superset's
  container image runs it (``gthread`` workers, unlimited request line and
  header size for long explore URLs),
  sized for two cores: 2 workers of 4 threads, bound to 127.0.0.1. Requests go
  to ``home/logs/access.log``; gunicorn's and Superset's messages to the
  service log. Healthy when ``/health`` answers ``OK``. A stop is SIGTERM to the
  process group: gunicorn lets its workers finish (``graceful_timeout``).
- Its connections verify what each is told to trust: ``REQUESTS_CA_BUNDLE``
  and ``CURL_CA_BUNDLE`` are blanked in its environment, because requests lets
  them replace a session's own certificate, and the lake's connection (Trino
  over HTTPS, ``dashboards/superset``) trusts Trino's self-signed one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from deploy.local_service import (
    LocalService,
    SecretsFile,
    fetch,
    find_uv,
    install_once,
    is_installed,
    write_private,
)
from deploy.postgres.postgres_service import PostgresService
from deploy.process import ServiceError, tail

SUPERSET_VERSION = "6.1.0"
"""What ``requirements.lock`` pins (the newest 6.1 on PyPI); the install checks it."""
REQUIREMENTS_LOCK = Path(__file__).with_name("requirements.lock")
ADMIN_PASSWORD_ENV = "MARKETLAKE_SUPERSET_ADMIN_PASSWORD"

SECURITY_MODULE = Path(__file__).with_name("marketlake_superset.py")
"""Superset's security manager and setup step, run inside Superset's environment."""
SESSION_HOURS = 8


def _lock_digest(lock: Path = REQUIREMENTS_LOCK) -> str:
    return hashlib.sha256(lock.read_bytes()).hexdigest()[:12]


@dataclass
class SupersetService(LocalService):
    """One local Superset (gunicorn); ``home`` holds config, credentials, logs and pid file.

    ``postgres`` is the running stack's PostgreSQL: Superset's own role and database
    are made there on every start.
    """

    port: int = 18088
    workers: int = 2
    threads: int = 4
    worker_timeout: int = 120  # seconds a request may take (a slow dashboard query)
    graceful_timeout: int = 20  # seconds gunicorn gives its workers on SIGTERM
    data_cache_seconds: int = 600  # a chart's rows are reused this long (the lake lands daily)
    admin_user: str = "admin"
    admin_email: str = "admin@marketlake.local"
    metadata_database: str = "superset"
    metadata_role: str = "superset"
    python: str = "3.11"  # what ``uv venv --python`` is asked for (a version or a path)
    uv: str | None = None  # default: $(cache)/bootstrap/bin/uv, else uv on PATH
    start_timeout: float = 240.0  # gunicorn's workers each import Superset (slow on 2 busy cores)
    setup_timeout: float = 1200.0  # each of db upgrade (a first one runs every migration), init
    accounts: Path | None = None  # the platform accounts whose operators and viewers log in
    postgres: PostgresService = field(kw_only=True)

    name = "superset"
    title = "Superset"
    stop_timeout = 40.0  # above graceful_timeout

    # -- locations ------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def install_key(self) -> str:
        """``<version>-<lock hash>``: names the install and marks what setup ran for."""
        return f"{SUPERSET_VERSION}-{_lock_digest()}"

    @property
    def install_dir(self) -> Path:
        return self.cache / "superset" / self.install_key

    @property
    def venv(self) -> Path:
        return self.install_dir / "venv"

    @property
    def install_log(self) -> Path:
        return self.cache / "superset" / f"install-{self.install_key}.log"

    @property
    def config_file(self) -> Path:
        return self.home / "superset_config.py"

    @property
    def python_path(self) -> Path:
        """Superset's ``PYTHONPATH``: the security module, copied on every start."""
        return self.home / "pythonpath"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def access_log(self) -> Path:
        return self.logs_dir / "access.log"

    @property
    def setup_log(self) -> Path:
        return self.logs_dir / "setup.log"

    @property
    def initialized_marker(self) -> Path:
        """Written once setup has run; it holds the install key it ran for."""
        return self.data_dir / "initialized"

    def _process_marker(self) -> str:
        return str(self.access_log)  # on gunicorn's command line, one per home

    # -- credentials ----------------------------------------------------------------------
    def _secrets(self) -> SecretsFile:
        return SecretsFile(
            self.credentials_file,
            self.title,
            {
                "secret_key": lambda: secrets.token_urlsafe(48),
                "admin_password": lambda: secrets.token_urlsafe(18),
                "metadata_password": lambda: secrets.token_urlsafe(24),
            },
            data=self.initialized_marker,  # metadata whose secrets SECRET_KEY encrypted
        )

    @property
    def admin_password(self) -> str:
        """The admin user's generated password (created by the first ``start()``)."""
        return str(self._credentials()["admin_password"])

    @property
    def metadata_url(self) -> str:
        """SQLAlchemy URL of the metadata database, as Superset's role (psycopg2)."""
        password = str(self._credentials()["metadata_password"])
        return (
            f"postgresql+psycopg2://{quote(self.metadata_role, safe='')}:"
            f"{quote(password, safe='')}@{self.postgres.host}:{self.postgres.port}/"
            f"{quote(self.metadata_database, safe='')}"
        )

    # -- install ------------------------------------------------------------------------
    def install(self) -> Path:
        """Superset's own virtual environment from the lock (once; cached); its directory."""
        install_once(self.install_dir, self._build)
        return self.venv

    def installed(self) -> bool:
        return is_installed(self.install_dir)

    def _build(self, into: Path) -> str:
        uv = self.uv or find_uv(self.cache)
        if uv is None:
            raise ServiceError(
                "uv is needed to install Superset into its own virtual environment: "
                f"run make setup (it installs uv into {self.cache / 'bootstrap'})"
            )
        venv = into / "venv"
        env = {
            **os.environ,
            "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(self.cache / "uv")),
            "UV_PYTHON_DOWNLOADS": "never",
        }
        steps = [
            ("venv", [uv, "venv", "--relocatable", "--python", self.python, str(venv)]),
            ("sync", [uv, "pip", "sync", "--require-hashes", "--compile-bytecode",
                      "--python", str(venv / "bin" / "python"), str(REQUIREMENTS_LOCK)]),
            ("check", [str(venv / "bin" / "python"), "-c",
                       "import importlib.metadata as m; print(m.version('apache-superset'))"]),
        ]  # fmt: skip
        self.install_log.parent.mkdir(parents=True, exist_ok=True)
        with self.install_log.open("w") as log:
            for what, argv in steps:
                log.write(f"--- {what}: {' '.join(argv)}\n")
                log.flush()
                proc = subprocess.run(
                    argv, stdout=log, stderr=subprocess.STDOUT, env=env, check=False
                )
                if proc.returncode != 0:
                    raise ServiceError(
                        f"Superset install ({what}) failed (exit {proc.returncode}); "
                        f"log {self.install_log}:\n" + tail(self.install_log, 30)
                    )
        installed = tail(self.install_log, 1).strip()
        if installed != SUPERSET_VERSION:
            raise ServiceError(
                f"{REQUIREMENTS_LOCK.name} installed Superset {installed}, "
                f"not {SUPERSET_VERSION}: make the lock and SUPERSET_VERSION agree"
            )
        return self.install_key

    # -- configure ----------------------------------------------------------------------
    def configure(self) -> None:
        """Metadata role and database, ``superset_config.py``, then setup (see the module)."""
        self.data_dir.mkdir(exist_ok=True)
        self.logs_dir.mkdir(exist_ok=True)
        creds = self._credentials()
        self._ensure_metadata_database(creds["metadata_password"])
        self.python_path.mkdir(exist_ok=True)
        write_private(self.python_path / SECURITY_MODULE.name, SECURITY_MODULE.read_text())
        write_private(self.config_file, self._config_text(creds))
        self._setup(creds["admin_password"])

    def _ensure_metadata_database(self, password: str) -> None:
        if not self.postgres.healthy():
            raise ServiceError(
                f"Superset keeps its metadata in PostgreSQL, which does not answer on "
                f"{self.postgres.address}: start it first"
            )
        self.postgres.ensure_role(self.metadata_role, password)
        if self.postgres.ensure_database(self.metadata_database, owner=self.metadata_role):
            self.initialized_marker.unlink(missing_ok=True)  # a new database: set it up again

    def _config_text(self, creds: dict[str, Any]) -> str:
        settings: dict[str, object] = {
            "SECRET_KEY": creds["secret_key"],
            "SQLALCHEMY_DATABASE_URI": self.metadata_url,
            # the metadata connections of each gunicorn worker (PostgreSQL allows 100 in all)
            "SQLALCHEMY_ENGINE_OPTIONS": {
                "pool_size": 5, "max_overflow": 5, "pool_pre_ping": True, "pool_recycle": 3600,
            },
            "SUPERSET_WEBSERVER_ADDRESS": self.host,
            "SUPERSET_WEBSERVER_PORT": self.port,
            "WEBDRIVER_BASEURL": f"{self.url}/",
            "WTF_CSRF_ENABLED": True,
            "TALISMAN_ENABLED": True,  # its default policy forces no HTTPS: right for 127.0.0.1
            "SESSION_COOKIE_NAME": "superset_session",
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": "memory://",
            "AUTH_RATE_LIMITED": True,
            "FEATURE_FLAGS": {},
            "CACHE_CONFIG": {
                "CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300,
                "CACHE_KEY_PREFIX": "superset_",
            },
            "DATA_CACHE_CONFIG": {  # shared by the workers: a chart's rows, whichever one asks
                "CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(self.data_dir / "data-cache"),
                "CACHE_DEFAULT_TIMEOUT": self.data_cache_seconds, "CACHE_THRESHOLD": 2000,
            },
            "PERMANENT_SESSION_LIFETIME": SESSION_HOURS * 3600,
            "MARKETLAKE_ACCOUNTS_FILE": str(self.accounts) if self.accounts else "",
            "MARKETLAKE_LOCAL_ADMIN": self.admin_user,
            "LOG_LEVEL": "INFO",
        }  # fmt: skip
        return (
            "# Superset's configuration: written by marketlake on every start (edits are\n"
            "# overwritten); secrets inside, so readable by its owner only\n"
            + "".join(f"{key} = {value!r}\n" for key, value in settings.items())
            + f"from {SECURITY_MODULE.stem} import PlatformSecurityManager\n"
            + "CUSTOM_SECURITY_MANAGER = PlatformSecurityManager\n"
        )

    def _superset_env(self) -> dict[str, str]:
        """Where every Superset process finds its configuration and home.

        ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE`` are blanked: requests lets
        them override the certificate a session was told to trust, so the lake's
        connection (Trino over HTTPS, verified against Trino's own certificate)
        would be checked against the system's bundle instead and fail.
        """
        return {
            "SUPERSET_CONFIG_PATH": str(self.config_file),
            "SUPERSET_HOME": str(self.data_dir),
            "PYTHONPATH": str(self.python_path),  # nothing of the platform's environment
            "FLASK_DEBUG": "0",
            "REQUESTS_CA_BUNDLE": "",
            "CURL_CA_BUNDLE": "",
        }

    def _setup(self, admin_password: str) -> None:
        python = str(self.venv / "bin" / "python")
        superset = str(self.venv / "bin" / "superset")
        done = (
            self.initialized_marker.read_text().strip() if self.initialized_marker.exists() else ""
        )
        with self.setup_log.open("a") as log:
            if done != self.install_key:
                self._run_setup(log, "db upgrade", [superset, "db", "upgrade"])
                self._run_setup(log, "init", [superset, "init"])
            self._run_setup(
                log, "admin user and Viewer role",
                [python, "-m", SECURITY_MODULE.stem, self.admin_user, self.admin_email],
                {ADMIN_PASSWORD_ENV: admin_password},
            )  # fmt: skip
        self.initialized_marker.write_text(self.install_key + "\n")

    def _run_setup(
        self, log: Any, what: str, argv: list[str], extra: dict[str, str] | None = None
    ) -> None:
        log.write(f"--- {what}\n")
        log.flush()
        env = {**os.environ, **self._superset_env(), **(extra or {})}
        try:
            proc = subprocess.run(
                argv, cwd=self.home, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, timeout=self.setup_timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise ServiceError(
                f"Superset setup ({what}) took over {self.setup_timeout:.0f}s; "
                f"log {self.setup_log}:\n" + tail(self.setup_log, 30)
            ) from None
        if proc.returncode != 0:
            raise ServiceError(
                f"Superset setup ({what}) failed (exit {proc.returncode}); "
                f"log {self.setup_log}:\n" + tail(self.setup_log, 30)
            )

    # -- run ----------------------------------------------------------------------------
    def command(self) -> list[str]:
        python = self.venv / "bin" / "python"
        if not python.exists():
            raise ServiceError(f"Superset's environment {self.venv} is missing: install again")
        return [
            str(python), "-m", "gunicorn",
            "--bind", self.address,
            "--workers", str(self.workers),
            "--worker-class", "gthread",
            "--threads", str(self.threads),
            "--timeout", str(self.worker_timeout),
            "--graceful-timeout", str(self.graceful_timeout),
            "--limit-request-line", "0",
            "--limit-request-field_size", "0",
            "--access-logfile", str(self.access_log),
            "--error-logfile", "-",
            "superset.app:create_app()",
        ]  # fmt: skip

    def server_env(self) -> dict[str, str]:
        return self._superset_env()

    def healthy(self, timeout: float = 3.0) -> bool:
        """``/health`` answers ``OK`` (a worker has loaded the app and serves requests)."""
        try:
            return fetch(f"{self.url}/health", timeout).strip() == b"OK"
        except OSError:
            return False

    def status(self) -> dict[str, object]:
        return {**super().status(), "version": SUPERSET_VERSION, "url": self.url}
