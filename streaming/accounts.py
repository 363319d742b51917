"""Platform accounts: who may log in to the Dagster UI today and to the order gateways later.

Why it looks like this:

- One small SQLite file (mode 0600, created so before anything is written) holds
  every account: the UI, the FIX acceptor and the REST/WebSocket API all read
  the same file through this adapter, so a name means the same person
  everywhere. It is an I/O adapter like ``transport/``; the domain modules
  never import it.
- Passwords are stored only as argon2id hashes (argon2-cffi's defaults, RFC
  9106's low-memory profile); a hash made with older parameters is replaced
  at the next successful login. A login for an unknown name still runs one
  verification, so timing does not tell which names exist.
- Three roles: ``operator`` (runs the platform: the Dagster UI, session
  control), ``trader`` (trades, as the clearing member ``member`` when set),
  ``viewer`` (looks, changes nothing).
- Every account has a credential *stamp*, a random value renewed with each
  password change: sessions and keys issued against it end when the password
  is reset, without any session table.
- Names are short lowercase identifiers so they are safe in logs, FIX
  ``SenderSubID`` and URLs, and never ambiguous by case.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

NAME_RE = re.compile(r"[a-z][a-z0-9._-]{1,31}")
MEMBER_RE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,15}")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 hashes any length; a bound keeps a login request cheap
MIN_DISTINCT = 5  # "aaaaaaaaaaaa" and "abababababab" are not passwords

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('operator', 'trader', 'viewer')),
    member TEXT,
    password_hash TEXT NOT NULL,
    stamp TEXT NOT NULL,
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    last_login TEXT
)
"""
KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    label TEXT,
    created_at TEXT NOT NULL,
    last_used TEXT
)
"""
KEY_PREFIX = "mlk_"
KEY_RE = re.compile(r"mlk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
"""An API key: ``mlk_`` + its public id + a 256-bit secret. Only the secret's SHA-256 is
stored (a random 256-bit secret needs no slow hash: there is nothing to guess)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as anyone may see it: its id, owner and label, never the secret."""

    key_id: str
    name: str
    label: str | None
    created_at: datetime
    last_used: datetime | None


class Role(StrEnum):
    """What an account may do; checked by each entry point (UI, gateways)."""

    OPERATOR = "operator"
    TRADER = "trader"
    VIEWER = "viewer"


class AccountError(ValueError):
    """A request the store refuses (invalid name, unknown role, weak password, ...)."""


@dataclass(frozen=True, slots=True)
class Account:
    """An account as anyone may see it: never the hash, never the stamp."""

    name: str
    role: Role
    member: str | None
    created_at: datetime
    last_login: datetime | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_role(value: str) -> Role:
    """``value`` as a role, or an error that lists the roles."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise AccountError(f"unknown role {value!r}: one of {known}") from None


def validate_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise AccountError(
            f"invalid account name {name!r}: 2-32 characters, lowercase letters, digits, "
            "'.', '_' or '-', starting with a letter"
        )
    return name


def validate_member(member: str) -> str:
    if not MEMBER_RE.fullmatch(member):
        raise AccountError(
            f"invalid member id {member!r}: 1-16 uppercase letters, digits, '_' or '-' (e.g. USR01)"
        )
    return member


def validate_password(password: str, name: str) -> str:
    """``password`` if it is acceptable for ``name``; the error says what is wrong."""
    if not password.strip():
        raise AccountError("empty password")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"password too long: at most {MAX_PASSWORD} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise AccountError("password contains control characters (newline, tab, ...)")
    if len(set(password)) < MIN_DISTINCT:
        raise AccountError(f"password too weak: use at least {MIN_DISTINCT} different characters")
    if name.lower() in password.lower():
        raise AccountError("password too weak: it contains the account name")
    return password


def generate_password() -> str:
    """A random password (144 bits, URL-safe), for ``--generate``."""
    while True:
        candidate = secrets.token_urlsafe(18)
        if len(set(candidate)) >= MIN_DISTINCT and not candidate.startswith("-"):
            return candidate


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _account(row: sqlite3.Row) -> Account:
    return Account(
        name=row["name"],
        role=Role(row["role"]),
        member=row["member"],
        created_at=datetime.fromisoformat(row["created_at"]),
        last_login=datetime.fromisoformat(row["last_login"]) if row["last_login"] else None,
    )


class AccountStore:
    """The accounts in one SQLite file; every method opens and closes its own connection.

    Short connections make the store safe to share between threads (the web
    server's worker threads, a gateway's sessions) and between processes (the
    CLI edits the file while the UI runs: changes apply to the next request).
    """

    def __init__(
        self,
        path: Path,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.path = path
        self._hasher = hasher or PasswordHasher()
        self._clock = clock
        self._dummy_hash: str | None = None
        self._readers = threading.local()  # a connection per thread for the hot lookups

    # -- the file ------------------------------------------------------------------------
    def _create_private(self) -> None:
        """Create the file with mode 0600 before SQLite writes a byte into it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
                os.fchmod(fd, 0o600)  # an older or hand-made file: tighten it
        finally:
            os.close(fd)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self._create_private()
        with closing(sqlite3.connect(self.path, timeout=10.0)) as conn:
            conn.row_factory = sqlite3.Row
            conn.execute(SCHEMA)
            conn.execute(KEYS_SCHEMA)
            with conn:  # one transaction, committed on success
                yield conn

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection, kept open: a gateway looks up the account behind
        every request's token, and opening the file each time cost more than the order."""
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            with self._connect():  # the file exists, private, with its tables
                pass
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            self._readers.conn = conn
        return conn

    # -- reads ---------------------------------------------------------------------------
    def list(self) -> list[Account]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM accounts ORDER BY name").fetchall()
        return [_account(r) for r in rows]

    def get(self, name: str) -> Account | None:
        found = self.lookup(name)
        return found[0] if found else None

    def lookup(self, name: str) -> tuple[Account, str] | None:
        """The account and its credential stamp (which changes with the password), or None."""
        if not NAME_RE.fullmatch(name):
            return None
        row = self._reader().execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
        return (_account(row), str(row["stamp"])) if row else None

    def has_role(self, role: Role) -> bool:
        with self._connect() as conn:
            row = conn.execute("SELECT 1 FROM accounts WHERE role = ? LIMIT 1", (role.value,))
            return row.fetchone() is not None

    # -- changes -------------------------------------------------------------------------
    def add(self, name: str, role: Role | str, password: str, member: str | None = None) -> Account:
        """A new account; refuses a taken or invalid name, a weak password, a member for non-traders."""
        validate_name(name)
        the_role = role if isinstance(role, Role) else parse_role(role)
        if member is not None:
            if the_role is not Role.TRADER:
                raise AccountError(f"only traders trade as a member; a {the_role} has no member")
            validate_member(member)
        validate_password(password, name)
        now = _ts(self._clock())
        hashed = self._hasher.hash(password)
        try:
            with self._connect() as conn:
                conn.execute(
                    "INSERT INTO accounts (name, role, member, password_hash, stamp, created_at,"
                    " password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (name, the_role.value, member, hashed, secrets.token_hex(16), now, now),
                )
        except sqlite3.IntegrityError:
            raise AccountError(f"account {name!r} already exists") from None
        account = self.get(name)
        assert account is not None
        return account

    def set_password(self, name: str, password: str) -> None:
        """Replace the password; sessions issued before end (the stamp changes)."""
        validate_password(password, name)
        hashed = self._hasher.hash(password)
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE accounts SET password_hash = ?, stamp = ?, password_changed_at = ?"
                " WHERE name = ?",
                (hashed, secrets.token_hex(16), _ts(self._clock()), name),
            )
        if cur.rowcount == 0:
            raise AccountError(f"no account {name!r}")

    def remove(self, name: str) -> None:
        with self._connect() as conn:
            cur = conn.execute("DELETE FROM accounts WHERE name = ?", (name,))
            conn.execute("DELETE FROM api_keys WHERE name = ?", (name,))
        if cur.rowcount == 0:
            raise AccountError(f"no account {name!r}")

    # -- API keys (for programs) ------------------------------------------------------------
    def add_key(self, name: str, label: str | None = None) -> str:
        """A new API key acting as account ``name``: returned once, only its hash is kept."""
        if self.get(name) is None:
            raise AccountError(f"no account {name!r}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO api_keys (key_id, name, secret_sha256, label, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (key_id, name, _sha256(secret), label, _ts(self._clock())),
            )
        return f"{KEY_PREFIX}{key_id}_{secret}"

    def keys(self, name: str | None = None) -> tuple[ApiKey, ...]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM api_keys WHERE ? IS NULL OR name = ? ORDER BY name, created_at",
                (name, name),
            ).fetchall()
        return tuple(
            ApiKey(r["key_id"], r["name"], r["label"], datetime.fromisoformat(r["created_at"]),
                   datetime.fromisoformat(r["last_used"]) if r["last_used"] else None)
            for r in rows
        )  # fmt: skip

    def revoke_key(self, key_id: str) -> None:
        with self._connect() as conn:
            cur = conn.execute("DELETE FROM api_keys WHERE key_id = ?", (key_id,))
        if cur.rowcount == 0:
            raise AccountError(f"no API key {key_id!r}")

    def authenticate_key(self, key: str) -> Account | None:
        """The account an API key acts as, or None (unknown, revoked, malformed)."""
        m = KEY_RE.fullmatch(key)
        if m is None:
            return None
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM api_keys WHERE key_id = ?", (m[1],)).fetchone()
            if row is None or not hmac.compare_digest(row["secret_sha256"], _sha256(m[2])):
                return None
            now = self._clock()
            last = row["last_used"]
            if last is None or (now - datetime.fromisoformat(last)).total_seconds() > 60:
                conn.execute("UPDATE api_keys SET last_used = ? WHERE key_id = ?",
                             (_ts(now), m[1]))  # fmt: skip
        return self.get(str(row["name"]))

    # -- login ---------------------------------------------------------------------------
    def authenticate(self, name: str, password: str) -> Account | None:
        """The account if ``password`` is its password (last login recorded), else None.

        Slow on purpose (one argon2 verification, ~0.1 s), for unknown names too.
        """
        row = None
        if NAME_RE.fullmatch(name) and len(password) <= MAX_PASSWORD:
            with self._connect() as conn:
                row = conn.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
        if row is None:
            self._verify(self._dummy(), password)
            return None
        stored = str(row["password_hash"])
        if not self._verify(stored, password):
            return None
        now = _ts(self._clock())
        with self._connect() as conn:
            conn.execute("UPDATE accounts SET last_login = ? WHERE name = ?", (now, name))
            if self._hasher.check_needs_rehash(stored):
                # same password, stronger parameters: the stamp (and sessions) stay
                conn.execute(
                    "UPDATE accounts SET password_hash = ? WHERE name = ? AND password_hash = ?",
                    (self._hasher.hash(password), name, stored),
                )
        account = self.get(name)
        return account

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password[:MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash
