"""The edge: bounded decoding and the bounds every order request must keep."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.events import AmendOrder, CancelOrder, NewOrder, encode, event_decoder
from streaming.limits import (
    BOUNDS_REASONS,
    MAX_MESSAGE_BYTES,
    MAX_NOTIONAL,
    MAX_ORDER_ID,
    MAX_PRICE,
    MAX_QTY,
    MalformedMessage,
    decode_untrusted,
    nesting_depth,
    valid_id,
)
from streaming.matcher import Matcher
from streaming.refdata import load_securities

pytestmark = pytest.mark.unit

SECURITIES = load_securities()
P = next(s for s in SECURITIES if s.symbol == "AAPL").reference_price
ORDER = encode(NewOrder(1, "USR01", "AAPL", "buy", 10, P, ts=5))


def _code(data: bytes) -> str:
    with pytest.raises(MalformedMessage) as info:
        decode_untrusted(data, event_decoder)
    return info.value.code


def test_a_valid_order_decodes() -> None:
    assert decode_untrusted(ORDER, event_decoder) == NewOrder(
        1, "USR01", "AAPL", "buy", 10, P, ts=5
    )


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (ORDER.replace(b"USR01", b"M\xfcller"), "invalid_utf8"),
        (ORDER.replace(b"USR01", b"\xed\xa0\x80"), "invalid_utf8"),  # a lone surrogate
        (b"[" * 1000 + b"]" * 1000, "too_deep"),
        (ORDER[:-1] + b',"x":' + b'{"a":' * 600 + b"1" + b"}" * 601, "too_deep"),
        (ORDER[:-1] + b',"x":"' + b"a" * MAX_MESSAGE_BYTES + b'"}', "too_large"),
        (b"this is not json", "malformed_json"),
        (ORDER.replace(b"10,", b"NaN,"), "malformed_json"),
        (ORDER.replace(b'"qty":10', b'"qty":10.0'), "invalid_fields"),
        (b'{"type":"new","order_id":"x"}', "invalid_fields"),
        (b"", "malformed_json"),
    ],
)
def test_bad_envelopes_have_a_code(data: bytes, code: str) -> None:
    assert _code(data) == code


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    quoted = ORDER.replace(b"USR01", b"[" * 10).replace(b'"AAPL"', b'"' + b"{[" * 40 + b'"')
    assert nesting_depth(quoted) == 1
    decoded = decode_untrusted(quoted, event_decoder)  # decoded: ids are judged by the bounds
    assert isinstance(decoded, NewOrder) and decoded.member == "[" * 10
    assert nesting_depth(b'{"a":[[1],{"b":"\\"]"}]}') == 3


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_any_bytes_decode_or_raise_malformed_only(data: bytes) -> None:
    try:
        decode_untrusted(data, event_decoder)
    except MalformedMessage as exc:
        assert exc.code in {"invalid_utf8", "too_deep", "too_large", "malformed_json",
                            "invalid_fields", "undecodable"}  # fmt: skip


@pytest.mark.parametrize(
    ("value", "ok"),
    [("USR01", True), ("A", True), ("BRK.B", True), ("lp-02_x", True), ("", False),
     ("a" * 33, False), ("a b", False), ("Müller", False), ("\x00x", False), ("-x", False),
     (5, False), (None, False)],
)  # fmt: skip
def test_member_and_symbol_ids(value: object, ok: bool) -> None:
    assert valid_id(value) is ok


def _open_matcher(members: list[str] | None = None) -> Matcher:
    return Matcher(SECURITIES, members, band_pct=None, status="open")


NEW_BOUNDS: list[tuple[str, NewOrder]] = [
    ("invalid_order_id", NewOrder(0, "A", "AAPL", "buy", 1, P, ts=1)),
    ("invalid_order_id", NewOrder(-4, "A", "AAPL", "buy", 1, P, ts=1)),
    ("invalid_order_id", NewOrder(MAX_ORDER_ID + 1, "A", "AAPL", "buy", 1, P, ts=1)),
    ("invalid_order_id", NewOrder(10**39, "A", "AAPL", "buy", 1, P, ts=1)),
    ("invalid_member", NewOrder(1, "M\ufffdller", "AAPL", "buy", 1, P, ts=1)),
    ("invalid_member", NewOrder(1, "x" * 1000, "AAPL", "buy", 1, P, ts=1)),
    ("invalid_symbol", NewOrder(1, "A", "AA\nPL", "buy", 1, P, ts=1)),
    ("invalid_timestamp", NewOrder(1, "A", "AAPL", "buy", 1, P, ts=-1)),
    ("invalid_timestamp", NewOrder(1, "A", "AAPL", "buy", 1, P, ts=1 << 63)),
    ("qty_too_large", NewOrder(1, "A", "AAPL", "buy", MAX_QTY + 1, P, ts=1)),
    ("qty_too_large", NewOrder(1, "A", "AAPL", "buy", 2**63, None, "market", ts=1)),
    ("qty_too_large", NewOrder(1, "A", "AAPL", "buy", 2**64, P, ts=1)),
    ("price_too_large", NewOrder(1, "A", "AAPL", "buy", 1, MAX_PRICE + 100, ts=1)),
    ("notional_too_large", NewOrder(1, "A", "AAPL", "buy", MAX_NOTIONAL // P + 1, P, ts=1)),
]


@pytest.mark.parametrize(
    ("reason", "order"), NEW_BOUNDS, ids=[f"{r}-{i}" for i, (r, _) in enumerate(NEW_BOUNDS)]
)
def test_new_orders_outside_the_bounds_are_rejected(reason: str, order: NewOrder) -> None:
    m = _open_matcher()
    before = m.snapshot()
    [report] = m.submit(order)
    assert (report.exec_type, report.reason) == ("rejected", reason)
    after = m.snapshot()
    assert {s: b["orders"] for s, b in after.items()} == {s: b["orders"] for s, b in before.items()}


def test_the_maxima_themselves_are_accepted() -> None:
    m = _open_matcher()
    assert (
        m.submit(NewOrder(MAX_ORDER_ID, "A", "AAPL", "buy", MAX_NOTIONAL // P, P, ts=1))[
            0
        ].exec_type
        == "new"
    )
    assert (
        m.submit(NewOrder(2, "B", "AAPL", "buy", MAX_QTY, None, "market", ts=2))[-1].exec_type
        == "expired"
    )
    m.submit(NewOrder(3, "C", "AAPL", "sell", 1, MAX_PRICE, ts=3))
    assert m.books["AAPL"].orders[3].price == MAX_PRICE


def test_unknown_member_comes_before_its_form_when_membership_is_listed() -> None:
    m = _open_matcher(["A"])
    assert m.submit(NewOrder(1, "bad id", "AAPL", "buy", 1, P, ts=1))[0].reason == "unknown_member"


@pytest.mark.parametrize(
    ("reason", "amend"),
    [
        ("qty_too_large", AmendOrder(1, "A", "AAPL", MAX_QTY + 1, None, 2)),
        ("price_too_large", AmendOrder(1, "A", "AAPL", 5, MAX_PRICE + 100, 2)),
        ("notional_too_large", AmendOrder(1, "A", "AAPL", MAX_NOTIONAL // P + 1, None, 2)),
        ("notional_too_large", AmendOrder(1, "A", "AAPL", MAX_NOTIONAL // P + 1, P - 100, 2)),
        ("invalid_timestamp", AmendOrder(1, "A", "AAPL", 5, None, -2)),
        ("invalid_order_id", AmendOrder(0, "A", "AAPL", 5, None, 2)),
    ],
)
def test_amends_outside_the_bounds_are_rejected(reason: str, amend: AmendOrder) -> None:
    m = _open_matcher()
    m.submit(NewOrder(1, "A", "AAPL", "buy", 10, P, ts=1))
    [report] = m.submit(amend)
    assert (report.exec_type, report.reason) == ("rejected", reason)
    assert m.books["AAPL"].orders[1].qty == 10


@pytest.mark.parametrize(
    ("reason", "cancel"),
    [
        ("invalid_member", CancelOrder(1, "A\x07", "AAPL", 2)),
        ("invalid_symbol", CancelOrder(1, "A", "x" * 40, 2)),
        ("invalid_order_id", CancelOrder(2**70, "A", "AAPL", 2)),
    ],
)
def test_cancels_outside_the_bounds_are_rejected(reason: str, cancel: CancelOrder) -> None:
    m = _open_matcher()
    m.submit(NewOrder(1, "A", "AAPL", "buy", 10, P, ts=1))
    [report] = m.submit(cancel)
    assert (report.exec_type, report.reason) == ("rejected", reason)
    assert 1 in m.books["AAPL"].orders


def test_every_bounds_reason_is_tested_here() -> None:
    assert {r for r, _ in NEW_BOUNDS} == set(BOUNDS_REASONS)
