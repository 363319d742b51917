"""What every gateway of the exchange shares: the accounts, logins, and the day's venue.

The HTTP API and the FIX acceptor run in the exchange's process side by side;
the exchange switches them to each new day's venue at once, and each gateway
hears of it (``on_switch``) to follow the new day's reports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from streaming.accounts import AccountStore
from streaming.gateways.venue import Venue
from streaming.login import LoginThrottle, SessionCodec


class Gateway:
    """The accounts, the API's token codec, the day's venue (None between days)."""

    def __init__(self, accounts: AccountStore, codec: SessionCodec) -> None:
        self.accounts = accounts
        self.codec = codec
        self.throttle = LoginThrottle()
        self.venue: Venue | None = None
        self._on_switch: list[Callable[[Venue | None], None]] = []
        self._idempotent: dict[tuple[str, str, str], tuple[int, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def answered(self, key: tuple[str, str, str]) -> tuple[int, dict[str, Any]] | None:
        """The answer already given under an idempotency key (day, member, key), if any."""
        with self._lock:
            return self._idempotent.get(key)

    def remember(self, key: tuple[str, str, str], status: int, body: dict[str, Any]) -> None:
        with self._lock:
            self._idempotent[key] = (status, body)

    def on_switch(self, callback: Callable[[Venue | None], None]) -> None:
        """Call ``callback`` with each new day's venue (before it takes requests)."""
        self._on_switch.append(callback)

    def switch(self, venue: Venue | None) -> None:
        """The exchange moved to another day (or closed): new requests go there."""
        for callback in self._on_switch:
            callback(venue)
        old, self.venue = self.venue, venue
        with self._lock:
            self._idempotent.clear()
        if old is not None:
            old.close()
