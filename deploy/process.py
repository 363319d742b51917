"""Local processes without Docker: start detached, track by pid file, stop cleanly.

The services run as plain processes, and ``marketlake stack up`` and ``stack
down`` are separate commands, so a process must be found again by a later
command than the one that started it. Each service has a home directory
(outside the repository) holding its pid file, its log and its data; the pid
file finds the process, and a stale one (the process is gone, or the pid now
belongs to something else) counts as stopped. What a service does beyond
running one process is in ``deploy/local_service.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class ServiceError(RuntimeError):
    """A service could not be installed, started or stopped; the message says why."""


class ManagedProcess:
    """One long-running process with a pid file and a log file in ``home``."""

    def __init__(self, name: str, home: Path, marker: str) -> None:
        self.name = name
        self.home = home
        self.marker = marker  # a string that must appear in the process's command line
        self.pid_file = home / f"{name}.pid"
        self.log_file = home / f"{name}.log"
        self._popen: subprocess.Popen[bytes] | None = None

    def pid(self) -> int | None:
        """The running process's pid, or None (stale pid files are removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if self._alive(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def _alive(self, pid: int) -> bool:
        if self._popen is not None and self._popen.pid == pid:
            return self._popen.poll() is None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            return False
        return state != "Z" and self.marker.encode() in cmdline

    def start(self, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
        """Start detached (own session, output to the log); returns the pid."""
        if (pid := self.pid()) is not None:
            return pid
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self._popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=self.home,
                start_new_session=True,
            )
        self.pid_file.write_text(str(self._popen.pid))
        return self._popen.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM, wait, then SIGKILL; True if something was running."""
        pid = self.pid()
        if pid is None:
            return False
        self._signal(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            self._signal(pid, signal.SIGKILL)
            self._wait_gone(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """kill -9, as a crash would (tests)."""
        pid = self.pid()
        if pid is not None:
            self._signal(pid, signal.SIGKILL)
            self._wait_gone(pid, 10.0)
            self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._popen is not None and self._popen.pid == pid:
                try:
                    self._popen.wait(timeout=0.2)
                    return True
                except subprocess.TimeoutExpired:
                    continue
            if not self._alive(pid):
                return True
            time.sleep(0.2)
        return False

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.log_file, lines)


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ("" when there is none), for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll ``check`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()
