"""Reality check: replay NASDAQ LOBSTER days through our matcher, row by row.

For each sample file, every message is translated (``orchestration.bench.lobster_check``) and
applied to a ``Matcher``; after every message our top-N levels (price and size,
both sides, LOBSTER dummies for empty levels) must equal that message's
orderbook row. ``pytest -s`` prints the match share per file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.bench.lobster_check import (
    AGGRESSOR_ID_BASE,
    LOBSTER_SAMPLES,
    LobsterMessage,
    LobsterTranslator,
    check_lobster_zip,
    initial_book,
    lobster_match_share,
    parse_messages,
    parse_orderbook,
    row_levels,
)
from streaming.events import AmendOrder, CancelOrder, NewOrder

pytestmark = pytest.mark.integration

# A hand-made level-2 day: pre-open bids 100.00 x 300 and 99.99 x 200, a third
# bid level 99.98 x 70 outside the window, asks 100.01 x 100 and 100.02 x 50.
MESSAGES = b"""\
34200.100000000,1,11,50,1000000,1
34200.200000000,2,11,20,1000000,1
34200.300000000,4,5,100,1000000,1
34200.400000000,4,11,10,1000000,1
34200.500000000,2,11,5,1000000,1
34200.600000000,3,11,15,1000000,1
34200.700000000,5,0,10,1000050,-1
34200.800000000,3,3,200,1000000,1
34200.900000000,1,12,10,1000100,-1
"""
ORDERBOOK = b"""\
1000100,100,1000000,350,1000200,50,999900,200
1000100,100,1000000,330,1000200,50,999900,200
1000100,100,1000000,230,1000200,50,999900,200
1000100,100,1000000,220,1000200,50,999900,200
1000100,100,1000000,215,1000200,50,999900,200
1000100,100,1000000,200,1000200,50,999900,200
1000100,100,1000000,200,1000200,50,999900,200
1000100,100,999900,200,1000200,50,999800,70
1000100,110,999900,200,1000200,50,999800,70
"""


def test_translation_rules_on_a_small_day() -> None:
    messages = parse_messages(MESSAGES)
    rows = parse_orderbook(ORDERBOOK, 2)
    assert messages[0] == LobsterMessage(34_200_100_000_000, 1, 11, 50, 1_000_000, 1)
    bids, asks = initial_book(messages[0], *row_levels(rows[0].tolist(), 2))
    assert bids == [(1_000_000, 300), (999_900, 200)]
    assert asks == [(1_000_100, 100), (1_000_200, 50)]

    tr = LobsterTranslator("T")
    seeds = tr.seed(bids, asks)
    assert [type(r) for r in seeds] == [NewOrder] * 4
    out = [tr.translate(m) for m in messages]
    assert out[0] == [
        NewOrder(11, "NASDAQ", "T", "buy", 50, 1_000_000, "limit", "day", out[0][0].ts)
    ]
    assert [(type(r), r.qty) for r in out[1]] == [(AmendOrder, 30)]  # total 50 - 20
    (aggressor,) = out[2]  # unknown pre-open order 5: trades against the seed
    assert isinstance(aggressor, NewOrder)
    assert (aggressor.side, aggressor.tif, aggressor.qty, aggressor.price) == (
        "sell", "ioc", 100, 1_000_000
    )  # fmt: skip
    assert aggressor.order_id >= AGGRESSOR_ID_BASE
    # order 11 executes although our model had the seed ahead of it: the seed is requeued
    assert [type(r) for r in out[3]] == [AmendOrder, AmendOrder, NewOrder]
    assert [(type(r), r.qty) for r in out[4]] == [(AmendOrder, 25)]  # total incl. 10 filled
    assert [type(r) for r in out[5]] == [CancelOrder]
    assert out[6] == []  # hidden execution
    assert tr.stats.skipped[5] == 1

    result = lobster_match_share(MESSAGES, ORDERBOOK, 2, "T")
    assert result.share == 1.0, result.first_mismatches
    assert result.revealed_rows == 1  # 99.98 x 70 came into view at message 7
    assert result.rejected == 0
    assert result.traded_qty == result.executed_qty == 110
    assert result.model_mismatches == 0


@pytest.mark.parametrize("name", list(LOBSTER_SAMPLES))
def test_lobster_book_matches_orderbook_file(shared_data: Path, name: str) -> None:
    path = shared_data / "lobster" / LOBSTER_SAMPLES[name]
    if not path.is_file():
        pytest.skip(f"{path} not found")
    result = check_lobster_zip(str(path))
    print(
        f"\nLOBSTER {name}: {result.matched}/{result.messages} rows match "
        f"({result.share:.4%}) in {result.seconds:.1f}s; revealed rows {result.revealed_rows}, "
        f"synthetic orders {result.stats.synthetic_orders}, requeued {result.stats.requeued}"
    )
    assert result.share >= 0.999, result.first_mismatches
    assert result.rejected == 0
    assert result.traded_qty == result.executed_qty  # every visible execution traded in full
    assert result.model_mismatches == 0  # the matcher's queues are what the translator expects
    assert result.stats.missing_qty == 0
