"""A paced cycle's orders go out in slices of exchange time: the same orders, in the same
order, each slice starting at a multiple of the slice length from the cycle's start."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.events import NewOrder
from streaming.services.day import _slices

pytestmark = pytest.mark.unit

START = 1_000_000_000_000


@given(
    offsets=st.lists(st.integers(-5, 15_000), max_size=50), slice_ms=st.sampled_from([0, 1, 500])
)
def test_slices_keep_every_order_in_order_and_in_its_slice(offsets, slice_ms) -> None:
    ts = sorted(START + o * 1_000_000 for o in offsets)
    orders = [NewOrder(i, "LP01", "AAPL", "buy", 1, 1_000_000, "limit", "day", t)
              for i, t in enumerate(ts)]  # fmt: skip
    slice_ns = slice_ms * 1_000_000 or None
    slices = _slices(orders, START, slice_ns)
    assert [o for _, part in slices for o in part] == orders
    starts = [at for at, _ in slices]
    assert starts == sorted(set(starts)) and starts[0] >= START and len(slices) >= 1
    for at, part in slices:
        assert (at - START) % (slice_ns or 1) == 0
        assert all(at <= max(o.ts, START) < at + (slice_ns or 10**18) for o in part)
    if slice_ns is None:
        assert slices == [(START, orders)]
