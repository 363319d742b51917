"""The session state machine: pre-open -> open <-> suspended -> closed, and per-symbol halts."""

from __future__ import annotations

import itertools

import pytest

from streaming.session import TRANSITIONS, SessionError, next_status

pytestmark = pytest.mark.unit

STATUSES = ("pre_open", "open", "suspended", "halted", "closed")
ACTIONS = ("pre_open", "open", "suspend", "resume", "close", "halt")
LEGAL = {
    ("closed", "pre_open"): "pre_open",
    ("pre_open", "pre_open"): "pre_open",
    ("pre_open", "open"): "open",
    ("open", "suspend"): "suspended",
    ("suspended", "resume"): "open",
    ("pre_open", "close"): "closed",
    ("open", "close"): "closed",
    ("suspended", "close"): "closed",
    ("pre_open", "halt"): "halted",
    ("open", "halt"): "halted",
    ("suspended", "halt"): "halted",
    ("halted", "resume"): "open",
    ("halted", "close"): "closed",
}


def test_transition_table_is_exactly_the_documented_one() -> None:
    assert TRANSITIONS == LEGAL


@pytest.mark.parametrize(("status", "action"), sorted(LEGAL))
def test_legal_transitions(status: str, action: str) -> None:
    assert next_status(status, action) == LEGAL[(status, action)]


ILLEGAL = sorted(set(itertools.product(STATUSES, ACTIONS)) - set(LEGAL))


@pytest.mark.parametrize(("status", "action"), ILLEGAL)
def test_illegal_transitions_raise_naming_what_is_allowed(status: str, action: str) -> None:
    with pytest.raises(SessionError) as info:
        next_status(status, action)
    message = str(info.value)
    assert repr(action) in message and repr(status) in message
    allowed = sorted(a for (s, a) in LEGAL if s == status)
    assert message.endswith("allowed: " + ", ".join(allowed))


def test_unknown_status_or_action() -> None:
    with pytest.raises(SessionError, match="allowed: none"):
        next_status("frozen", "open")
    with pytest.raises(SessionError):
        next_status("open", "unhalt")


def test_session_error_is_a_value_error() -> None:
    assert issubclass(SessionError, ValueError)


def test_a_trading_day() -> None:
    status = "closed"
    seen = []
    for action in (
        "pre_open",
        "open",
        "suspend",
        "resume",
        "suspend",
        "close",
        "pre_open",
        "close",
    ):
        status = next_status(status, action)
        seen.append(status)
    assert seen == [
        "pre_open",
        "open",
        "suspended",
        "open",
        "suspended",
        "closed",
        "pre_open",
        "closed",
    ]


def test_closed_and_suspended_cannot_open_directly() -> None:
    for status in ("closed", "suspended"):
        with pytest.raises(SessionError):
            next_status(status, "open")
    with pytest.raises(SessionError):
        next_status("open", "open")
