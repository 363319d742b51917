"""PostgreSQL (one local cluster) from the Debian packages, for the Iceberg SQL catalog and Dagster.

The lifecycle (private home, generated credentials, start, wait, stop,
status) is :class:`deploy.local_service.LocalService`; this module adds what
is PostgreSQL's own: finding the apt install, running as an unprivileged OS
user, initdb and the settings, a ``select 1`` health check, ``pg_ctl stop``,
and the databases and URLs clients use. Why it looks like this:

- PostgreSQL comes from apt (``postgresql``), never from a download, so ``install()``
  only finds the newest ``/usr/lib/postgresql/<major>/bin`` and says what to
  install when there is none; nothing is cached.
- The cluster is the project's own: data directory, unix socket, config, log and
  pid file all live under ``home``; it listens on 127.0.0.1 only, at a port of its
  own, so it never meets a system cluster on 5432.
- Credentials are generated: the superuser ``marketlake`` gets a random password
  (``secrets.token_urlsafe``) kept in ``home/password`` (mode 0600) and reused on
  every later start; every connection, TCP or socket, authenticates with
  scram-sha-256. initdb gets it through a file, never its command line.
- PostgreSQL refuses to run as root. As root, every server-side command (initdb,
  postgres, pg_ctl) runs as an unprivileged system user (``postgres``, the Debian
  packages' user, by default) through ``setpriv``, which execs in place so the pid
  file holds the postmaster itself; ``home`` is chowned to that user. That user
  must be able to reach ``home``: a home below a directory only root may enter
  (mode 0700, as root's own home usually is) cannot work, and ``start()`` says so
  instead of failing inside initdb. As any other user the server runs as that user.
- Sized for a small machine: shared_buffers 128 MB, 100 connections.
- A start is tried twice, also when the server exits at once: backends of a
  killed server (``kill()`` is kill -9 of the postmaster, as a crash would be)
  may still hold its shared memory for a moment.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from deploy.local_service import LocalService, SecretsFile, write_private
from deploy.process import ServiceError

PG_ROOT = Path("/usr/lib/postgresql")  # Debian's layout: one <major>/bin per installed version
SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes including the terminating NUL


def find_postgres_bin(root: Path = PG_ROOT) -> Path:
    """The ``bin`` directory of the newest PostgreSQL installed from the Debian packages."""
    found: list[tuple[tuple[int, ...], Path]] = []
    for bindir in root.glob("*/bin"):
        try:
            version = tuple(int(part) for part in bindir.parent.name.split("."))
        except ValueError:
            continue
        if all((bindir / tool).is_file() for tool in ("postgres", "initdb", "pg_ctl")):
            found.append((version, bindir))
    if not found:
        raise ServiceError(
            f"PostgreSQL server binaries not found under {root}/<version>/bin: "
            "apt-get install postgresql"
        )
    return max(found)[1]


class _PasswordFile(SecretsFile):
    """The superuser's password as the whole file (``home/password``), not a JSON object."""

    def load(self, text: str) -> dict[str, Any]:
        return {"password": text.strip()}

    def dump(self, values: Mapping[str, object]) -> str:
        return f"{values['password']}\n"


def _conf_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class PostgresService(LocalService):
    """One local PostgreSQL cluster; ``home`` holds data, socket, config, password, log and pid file.

    ``cache`` is unused (apt installs PostgreSQL, nothing is cached): it is there
    because every service takes it.
    """

    port: int = 15432
    user: str = "marketlake"  # the cluster's superuser (password auth)
    database: str = "marketlake"  # created on start; ensure_database() makes more
    shared_buffers_mb: int = 128
    max_connections: int = 100
    run_as: str | None = None  # OS user for the server; default: "postgres" as root, else yourself
    bin_dir: Path | None = None  # default: the newest /usr/lib/postgresql/<major>/bin
    start_timeout: float = 60.0

    name = "postgres"
    title = "PostgreSQL"
    start_attempts = 2
    poll_interval = 0.3

    # -- locations ------------------------------------------------------------------
    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def credentials_file(self) -> Path:
        return self.home / "password"

    @property
    def password_file(self) -> Path:
        return self.credentials_file

    # -- credentials and URLs ---------------------------------------------------------
    def _secrets(self) -> SecretsFile:
        return _PasswordFile(
            self.credentials_file,
            self.title,
            {"password": lambda: secrets.token_urlsafe(24)},
            data=self.data_dir / "PG_VERSION",  # a cluster made with this password
        )

    @property
    def password(self) -> str:
        """The superuser's generated password (created by the first ``start()``)."""
        return str(self._credentials()["password"])

    def dsn_for(self, database: str) -> str:
        """libpq URL (psycopg, psql) for ``database`` as the superuser, over TCP."""
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database, safe='')}"
        )

    def sqlalchemy_url_for(self, database: str) -> str:
        """SQLAlchemy URL (psycopg2 driver, as pyiceberg's SqlCatalog uses) for ``database``."""
        return "postgresql+psycopg2://" + self.dsn_for(database).split("://", 1)[1]

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.database)

    @property
    def sqlalchemy_url(self) -> str:
        return self.sqlalchemy_url_for(self.database)

    def connect(self, database: str | None = None, autocommit: bool = False) -> psycopg.Connection:
        """A psycopg connection as the superuser (the caller closes it)."""
        return psycopg.connect(
            self.dsn_for(database or self.database), autocommit=autocommit, connect_timeout=5
        )

    # -- install ------------------------------------------------------------------------
    def install(self) -> Path:
        """The server's ``bin`` directory (apt installs PostgreSQL; nothing to download)."""
        bindir = self.bin_dir or find_postgres_bin()
        if not (bindir / "postgres").is_file():
            raise ServiceError(f"no postgres binary in {bindir}: apt-get install postgresql")
        return bindir

    def installed(self) -> bool:
        try:
            self.install()
        except ServiceError:
            return False
        return True

    # -- the unprivileged OS user -------------------------------------------------------
    def _os_user(self) -> pwd.struct_passwd | None:
        """The OS user to switch to, or None to run as ourselves."""
        me = os.geteuid()
        wanted = self.run_as or ("postgres" if me == 0 else None)
        if wanted is None:
            return None
        try:
            account = pwd.getpwnam(wanted)
        except KeyError:
            raise ServiceError(
                f"PostgreSQL cannot run as root and the user {wanted!r} does not exist: "
                "apt-get install postgresql creates 'postgres', or pass run_as=<an unprivileged user>"
            ) from None
        if account.pw_uid == 0:
            raise ServiceError("PostgreSQL refuses to run as root: run_as must be unprivileged")
        if account.pw_uid == me:
            return None
        if me != 0:
            raise ServiceError(f"only root can run PostgreSQL as another user ({wanted!r})")
        return account

    def _as_user(self, argv: Sequence[str | os.PathLike[str]]) -> list[str]:
        account = self._os_user()
        if account is None:
            return [os.fspath(a) for a in argv]
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise ServiceError(
                "setpriv (util-linux) is needed to run PostgreSQL as an unprivileged user"
            )
        return [
            setpriv, f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups",
            "--", *(os.fspath(a) for a in argv),
        ]  # fmt: skip

    def _run(
        self, argv: Sequence[str | os.PathLike[str]], what: str
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self._as_user(argv), cwd=self.home, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise ServiceError(
                f"{what} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def _give(self, path: Path) -> None:
        """Hand ``path`` to the server's OS user (no-op when we are that user)."""
        account = self._os_user()
        if account is not None and path.stat().st_uid != account.pw_uid:
            os.chown(path, account.pw_uid, account.pw_gid)

    def _check_reachable(self) -> None:
        account = self._os_user()
        if account is None:
            return
        probe = subprocess.run(self._as_user(["test", "-w", str(self.home)]), check=False)
        if probe.returncode == 0:
            return
        blocking = next(
            (
                p
                for p in reversed(self.home.parents)
                if subprocess.run(self._as_user(["test", "-x", str(p)]), check=False).returncode
            ),
            self.home,
        )
        raise ServiceError(
            f"PostgreSQL refuses to run as root, so it runs as {account.pw_name!r}, which cannot "
            f"reach {self.home}: {blocking} is not searchable by that user. Put the service's "
            f"home elsewhere (e.g. MARKETLAKE_STACK_DIR) or allow it: chmod o+x {blocking}"
        )

    # -- configure ----------------------------------------------------------------------
    def _prepare_dirs(self) -> None:
        self.socket_dir.mkdir(exist_ok=True)
        for path in (self.home, self.socket_dir):
            self._give(path)
            path.chmod(0o700)
        self._check_reachable()
        sock = self.socket_dir / f".s.PGSQL.{self.port}"
        if len(os.fsencode(sock)) > SOCKET_PATH_MAX:
            raise ServiceError(
                f"the socket path {sock} is longer than {SOCKET_PATH_MAX} bytes: use a shorter home"
            )

    def _initdb(self, bindir: Path, password: str) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        staging = self.home / "data.initdb"
        shutil.rmtree(staging, ignore_errors=True)
        pwfile = self.home / ".initdb-password"  # readable by the server's user, removed at once
        write_private(pwfile, password + "\n")
        self._give(pwfile)
        try:
            self._run(
                [bindir / "initdb", "-D", staging, "-U", self.user, f"--pwfile={pwfile}",
                 "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"],
                "initdb",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        staging.rename(self.data_dir)

    def configure(self) -> None:
        """Home and socket dir for the server's OS user, initdb on the first start, then the
        cluster's settings and pg_hba.conf (every start). The password must exist."""
        self._prepare_dirs()
        self._initdb(self.install(), self.password)
        settings = {
            "listen_addresses": _conf_str(self.host),
            "port": str(self.port),
            "unix_socket_directories": _conf_str(str(self.socket_dir)),
            "max_connections": str(self.max_connections),
            "shared_buffers": _conf_str(f"{self.shared_buffers_mb}MB"),
            "work_mem": _conf_str("4MB"),
            "maintenance_work_mem": _conf_str("64MB"),
            "effective_cache_size": _conf_str("512MB"),
            "max_wal_size": _conf_str("1GB"),
            "password_encryption": _conf_str("scram-sha-256"),
            "logging_collector": "off",
            "log_destination": _conf_str("stderr"),
            "log_line_prefix": _conf_str("%m [%p] %q%u@%d "),
            "log_timezone": _conf_str("UTC"),
            "timezone": _conf_str("UTC"),
            "lc_messages": _conf_str("C"),
        }
        self._write(
            self.data_dir / "marketlake.conf",
            "# written by marketlake on every start; edits are overwritten\n"
            + "".join(f"{k} = {v}\n" for k, v in settings.items()),
        )
        main = self.data_dir / "postgresql.conf"
        include = "include 'marketlake.conf'"
        if include not in main.read_text():
            with main.open("a") as f:
                f.write(f"\n{include}  # marketlake's settings, last so they win\n")
        self._write(
            self.data_dir / "pg_hba.conf",
            "# written by marketlake on every start: passwords (scram-sha-256) only\n"
            "# TYPE  DATABASE  USER  ADDRESS       METHOD\n"
            "local   all       all                 scram-sha-256\n"
            f"host    all       all   {self.host}/32  scram-sha-256\n",
        )

    def _write(self, path: Path, text: str) -> None:
        write_private(path, text)
        self._give(path)

    # -- run ----------------------------------------------------------------------------
    def command(self) -> list[str]:
        return self._as_user([self.install() / "postgres", "-D", self.data_dir])

    def start(self) -> None:
        """Install check, initdb on first start, start, wait until healthy, create the database."""
        super().start()
        self.ensure_database(self.database)

    def healthy(self, timeout: float = 3.0) -> bool:
        """A real connection as the superuser answers ``select 1``."""
        if not self._listening():
            return False
        try:
            with psycopg.connect(
                self.dsn_for("postgres"), connect_timeout=max(1, round(timeout))
            ) as conn:
                return conn.execute("select 1").fetchone() == (1,)
        except (psycopg.Error, ServiceError):
            return False

    def ensure_database(self, name: str, owner: str | None = None) -> bool:
        """Create database ``name`` unless it exists; True if created.

        Owned by ``owner`` (a role, see ``ensure_role``) or else the superuser; an
        existing database is handed to ``owner`` when another role owns it. An
        application with its own role owns its database, so it can create its
        tables in the ``public`` schema (PostgreSQL 15+ allows that to the owner only).
        """
        with psycopg.connect(self.dsn_for("postgres"), autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "select pg_get_userbyid(datdba) from pg_database where datname = %s", (name,)
            ).fetchone()
            if row is not None:
                if owner is not None and row[0] != owner:
                    conn.execute(
                        sql.SQL("alter database {} owner to {}").format(
                            sql.Identifier(name), sql.Identifier(owner)
                        )
                    )
                return False
            create = sql.SQL("create database {}").format(sql.Identifier(name))
            if owner is not None:
                create += sql.SQL(" owner {}").format(sql.Identifier(owner))
            try:
                conn.execute(create)
            except psycopg.errors.DuplicateDatabase:
                return False  # someone else created it meanwhile
            return True

    def ensure_role(self, name: str, password: str) -> bool:
        """A login role ``name`` whose password is ``password`` (set again if it differs); True
        if created.

        For an application with its own database (Superset's metadata): no superuser,
        no right to create databases or roles. The password is hashed here
        (SCRAM-SHA-256, libpq's ``PQencryptPasswordConn``), so the plain text never
        reaches the server, where a logged statement could show it.
        """
        with psycopg.connect(self.dsn_for("postgres"), autocommit=True, connect_timeout=5) as conn:
            verifier = conn.pgconn.encrypt_password(
                password.encode(), name.encode(), b"scram-sha-256"
            ).decode()
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone()
            verb = "alter" if exists else "create"
            conn.execute(
                sql.SQL(
                    verb + " role {} login nosuperuser nocreatedb nocreaterole password {}"
                ).format(sql.Identifier(name), sql.Literal(verifier))
            )
            return not exists

    def stop(self) -> bool:
        """``pg_ctl stop -m fast`` (clients disconnected, clean checkpoint); SIGTERM/SIGKILL if that fails."""
        if self.process.pid() is None:
            return False
        try:
            pg_ctl = self.install() / "pg_ctl"
            subprocess.run(
                self._as_user([pg_ctl, "stop", "-D", self.data_dir, "-m", "fast", "-w", "-t", "60"]),
                cwd=self.home, capture_output=True, check=False, timeout=90,
            )  # fmt: skip
        except (ServiceError, OSError, subprocess.TimeoutExpired):
            pass
        super().stop()  # reaps it, or escalates if pg_ctl could not stop it
        return True
