"""The trading session state machine: pre-open -> open <-> suspended -> closed, and halts.

Driven by ``control`` events. Pure: the caller decides when events happen
(a scheduler on the trading calendar, an operator, or a simulated clock).
"""

from __future__ import annotations

from typing import Literal

SessionStatus = Literal["pre_open", "open", "suspended", "halted", "closed"]

TRANSITIONS: dict[tuple[str, str], SessionStatus] = {
    ("closed", "pre_open"): "pre_open",  # a new trading day
    ("pre_open", "pre_open"): "pre_open",
    ("pre_open", "open"): "open",
    ("open", "suspend"): "suspended",
    ("suspended", "resume"): "open",
    ("pre_open", "close"): "closed",
    ("open", "close"): "closed",
    ("suspended", "close"): "closed",
    # a halt stops one symbol (news pending, a regulatory stop) until an operator resumes it;
    # orders rest and can be canceled, nothing trades. A market-wide stop is a suspend.
    ("pre_open", "halt"): "halted",
    ("open", "halt"): "halted",
    ("suspended", "halt"): "halted",
    ("halted", "resume"): "open",
    ("halted", "close"): "closed",
}
"""(current status, control action) -> next status; anything else is illegal."""


class SessionError(ValueError):
    """An illegal session transition (the control event goes to the dead-letter topic)."""


def next_status(status: str, action: str) -> SessionStatus:
    """The status after ``action``, or ``SessionError`` naming what is allowed."""
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        allowed = sorted(a for (s, a) in TRANSITIONS if s == status)
        raise SessionError(
            f"cannot {action!r} a session that is {status!r}; allowed: {', '.join(allowed) or 'none'}"
        ) from None
