"""The trading session state machine: pre-open -> open <-> suspended -> closed, and halts.

Driven by ``control`` events. Pure: the caller decides when events happen
(a scheduler on the trading calendar, an operator, or a simulated clock).
"""

from __future__ import annotations

from collections.abc import Mapping
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


def transition(
    statuses: Mapping[str, str], action: str, symbol: str | None
) -> dict[str, SessionStatus]:
    """The new status of each book an action moves: one symbol's, or every book's.

    All or nothing: ``SessionError`` if any of them cannot make the move. A halt
    names its symbol; a market-wide action other than the close leaves a halted
    book halted (a halt is lifted per symbol). The matcher applies the result to
    its books; a gateway follows the same rule to know the market's state.
    """
    if symbol is None and action == "halt":
        raise SessionError("a halt names its symbol; to stop every symbol, suspend")
    if symbol is not None:
        targets = [symbol]
    else:
        targets = [s for s, st in statuses.items() if st != "halted" or action == "close"]
    return {s: next_status(statuses[s], action) for s in targets}
