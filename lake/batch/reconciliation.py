"""Reconciliation: the matcher's trades, the members' fills and clearing, per member and symbol.

Three independent records of the same day must agree: every trade has a buy
and a sell fill of its quantity at its price, and clearing's bought and sold
quantities equal the fills. Each disagreement is a break with a reason code,
so a report says what went wrong, not only that something did.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from lake.tables import TABLES

REASONS = {
    "missing_fills": "trades without the member's fills",
    "unmatched_fills": "fills without a trade",
    "quantity": "traded and filled quantities differ",
    "notional": "traded and filled notionals differ",
    "count": "number of trades and fills differ",
    "clearing_quantity": "clearing's quantity differs from the fills",
}

_SQL = """
WITH traded AS (
    SELECT buy_member AS member, symbol, 'buy' AS side, count(*) AS n,
           sum(qty) AS qty, sum(price * qty) AS notional FROM trades GROUP BY ALL
    UNION ALL
    SELECT sell_member, symbol, 'sell', count(*), sum(qty), sum(price * qty)
    FROM trades GROUP BY ALL
), filled AS (
    SELECT member, symbol, side, count(*) AS n, sum(last_qty) AS qty,
           sum(last_qty * last_price) AS notional
    FROM fills WHERE exec_type = 'trade' GROUP BY ALL
), cleared AS (
    SELECT member, symbol, 'buy' AS side, bought AS qty FROM clearing
    UNION ALL SELECT member, symbol, 'sell', sold FROM clearing
), joined AS (
    SELECT coalesce(t.member, f.member) AS member, coalesce(t.symbol, f.symbol) AS symbol,
           coalesce(t.side, f.side) AS side,
           coalesce(t.n, 0) AS trades, coalesce(f.n, 0) AS fills,
           coalesce(t.qty, 0) AS traded_qty, coalesce(f.qty, 0) AS filled_qty,
           coalesce(t.notional, 0) AS traded_notional, coalesce(f.notional, 0) AS filled_notional
    FROM traded t FULL OUTER JOIN filled f USING (member, symbol, side)
), checked AS (
    SELECT j.*, c.qty AS cleared_qty,
           CASE WHEN j.fills = 0 THEN 'missing_fills'
                WHEN j.trades = 0 THEN 'unmatched_fills'
                WHEN j.traded_qty <> j.filled_qty THEN 'quantity'
                WHEN j.traded_notional <> j.filled_notional THEN 'notional'
                WHEN j.trades <> j.fills THEN 'count'
                WHEN j.member IN (SELECT member FROM cleared_members)
                     AND coalesce(c.qty, 0) <> j.filled_qty THEN 'clearing_quantity'
           END AS reason
    FROM joined j LEFT JOIN cleared c USING (member, symbol, side)
)
SELECT member, symbol, side, reason, trades, fills, traded_qty, filled_qty,
       CAST(traded_notional AS BIGINT) AS traded_notional,
       CAST(filled_notional AS BIGINT) AS filled_notional, cleared_qty
FROM checked WHERE reason IS NOT NULL
ORDER BY member, symbol, side
"""


def reconcile(trades: pa.Table, fills: pa.Table, clearing: pa.Table) -> pa.Table:
    """The day's breaks (empty when the three records agree)."""
    con = duckdb.connect()
    try:
        con.register("trades", trades)
        con.register("fills", fills)
        con.register("clearing", clearing)
        con.register("cleared_members", clearing.select(["member"]))
        result = con.execute(_SQL).to_arrow_table()
    finally:
        con.close()
    schema = TABLES["core.recon_breaks"].schema
    return result.select(schema.names).cast(schema)
