"""The running totals of a member's open orders against a plain recount."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.portfolio import OpenOrder, OpenOrders

pytestmark = pytest.mark.unit

orders = st.builds(
    OpenOrder,
    symbol=st.sampled_from(["AAA", "BBB", "CCC"]),
    side=st.sampled_from(["buy", "sell"]),
    price=st.integers(1, 10**7),
    leaves=st.integers(0, 10**4),
    placed=st.just(0),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.integers(0, 20), orders),
        st.tuples(st.just("del"), st.integers(0, 20), st.none()),
        st.tuples(st.just("pop"), st.integers(0, 20), st.none()),
        st.tuples(st.just("clear"), st.just(0), st.none()),
    ),
    max_size=80,
)


@given(steps)
def test_totals_equal_a_recount_after_any_changes(
    changes: list[tuple[str, int, OpenOrder | None]],
) -> None:
    book = OpenOrders()
    for op, oid, order in changes:
        if op == "set" and order is not None:
            book[oid] = order
        elif op == "del" and oid in book:
            del book[oid]
        elif op == "pop":
            book.pop(oid, None)
        elif op == "clear":
            book.clear()
    values = list(book.values())
    assert book.buy_cash == sum(o.price * o.leaves for o in values if o.side == "buy")
    for symbol in ("AAA", "BBB", "CCC"):
        expected = sum(o.leaves for o in values if o.side == "sell" and o.symbol == symbol)
        assert book.sell_qty.get(symbol, 0) == expected


def test_open_orders_are_immutable_so_no_change_bypasses_the_totals() -> None:
    book = OpenOrders({1: OpenOrder("AAA", "buy", 100, 5, 0)})
    with pytest.raises(AttributeError):
        book[1].leaves = 1  # type: ignore[misc]
    assert book.buy_cash == 500
