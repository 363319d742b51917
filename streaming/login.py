"""Login sessions shared by every entry point: the signing key, signed tokens, throttling.

The Dagster UI's cookie and the gateways' bearer tokens are the same kind of
token: a small JSON payload (account name, its credential stamp, expiry, id)
signed with HMAC-SHA256 under a key kept in a 0600 file, so no session table
is needed and a password reset (a new stamp) ends every session at once. Each
entry point signs with its own purpose, so a token made for one is refused by
the others. Password guessing is slowed per name, exponentially after a few
failures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SESSION_TTL_S = 12 * 3600


# -- the signing key -----------------------------------------------------------------------
def load_or_create_key(path: Path) -> bytes:
    """The session-signing key in ``path`` (hex, mode 0600), created on first use.

    Created under a temporary name and linked into place, so two processes
    starting at once agree on one key and nobody reads a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < 32:
        raise ValueError(f"{path}: the session key is shorter than 32 bytes; delete it")
    return key


# -- sessions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Session:
    name: str
    stamp: str  # the account's credential stamp when the session was issued
    expires: int  # unix seconds
    jti: str  # this session's id, for logout


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Signed, expiring session tokens (HMAC-SHA256 over a small JSON payload)."""

    def __init__(
        self,
        key: bytes,
        ttl_s: int = SESSION_TTL_S,
        clock: Callable[[], float] = time.time,
        purpose: str = "ui",
    ) -> None:
        self._key = key
        self._ttl = ttl_s
        self._clock = clock
        # a token made for one entry point (the UI's cookie, the API's bearer token) is
        # refused by the others, though they share the key file
        self._prefix = f"marketlake-{purpose}\0".encode()

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, self._prefix + body.encode(), hashlib.sha256).digest())

    def issue(self, name: str, stamp: str) -> str:
        payload = {
            "n": name,
            "s": stamp,
            "e": int(self._clock()) + self._ttl,
            "j": secrets.token_urlsafe(12),
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str) -> Session | None:
        """The session if the token is ours, intact and not expired; else None."""
        body, _, signature = token.partition(".")
        if not body or not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return None
        try:
            data = json.loads(_unb64(body))
            session = Session(str(data["n"]), str(data["s"]), int(data["e"]), str(data["j"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > self._clock() else None


class LoginThrottle:
    """Slows password guessing per name: after ``free`` failures each try waits twice as long."""

    def __init__(
        self, free: int = 5, cap_s: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._free, self._cap, self._clock = free, cap_s, clock
        self._failures: dict[str, tuple[int, float]] = {}  # name -> (count, next allowed time)
        self._lock = threading.Lock()

    def wait_s(self, name: str) -> float:
        with self._lock:
            _, allowed = self._failures.get(name, (0, 0.0))
        return max(0.0, allowed - self._clock())

    def failed(self, name: str) -> None:
        with self._lock:
            if len(self._failures) > 10_000:  # bounded memory under a spray of names
                self._failures.clear()
            count = self._failures.get(name, (0, 0.0))[0] + 1
            delay = 0.0 if count < self._free else min(self._cap, 2.0 ** (count - self._free))
            self._failures[name] = (count, self._clock() + delay)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)
