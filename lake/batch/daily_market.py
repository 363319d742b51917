"""Daily market statistics per symbol from a day's trades and book tops (pure).

Prices stay integers in 1/10,000 of the currency; VWAP and spreads are
floats in the same units. The spread statistics are time-weighted: each book
top counts for as long as it stood, up to the next change or the close, so a
quote that flickered for a millisecond does not weigh like one that stood
for an hour.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from lake.tables import TABLES

_SQL = """
WITH t AS (
    SELECT symbol, price, qty, ts, trade_id FROM trades
), ohlc AS (
    SELECT symbol,
           count(*) AS trades,
           arg_min(price, (ts, trade_id)) AS open,
           max(price) AS high,
           min(price) AS low,
           arg_max(price, (ts, trade_id)) AS close,
           CAST(sum(qty) AS BIGINT) AS volume,
           CAST(sum(price * qty) AS BIGINT) AS turnover
    FROM t GROUP BY symbol
), tops AS (
    SELECT symbol, ts, bid_price, ask_price,
           coalesce(lead(ts) OVER (PARTITION BY symbol ORDER BY ts), $close_ns) - ts AS held
    FROM bbo
    WHERE ts < $close_ns
), spread AS (
    SELECT symbol,
           count(*) AS quote_updates,
           sum(CASE WHEN bid_price IS NOT NULL AND ask_price IS NOT NULL THEN
                    CAST(ask_price - bid_price AS DOUBLE) * held END)
             / nullif(sum(CASE WHEN bid_price IS NOT NULL AND ask_price IS NOT NULL
                               THEN held END), 0) AS spread_twa,
           min(CASE WHEN bid_price IS NOT NULL AND ask_price IS NOT NULL
                    THEN ask_price - bid_price END) AS spread_min,
           max(CASE WHEN bid_price IS NOT NULL AND ask_price IS NOT NULL
                    THEN ask_price - bid_price END) AS spread_max,
           CAST(sum(CASE WHEN bid_price IS NOT NULL AND ask_price IS NOT NULL THEN held END)
                AS DOUBLE) / nullif(sum(held), 0) AS two_sided_share
    FROM tops GROUP BY symbol
)
SELECT s.symbol,
       o.trades, o.open, o.high, o.low, o.close, o.volume, o.turnover,
       CAST(o.turnover AS DOUBLE) / nullif(o.volume, 0) AS vwap,
       s.quote_updates, s.spread_twa, s.spread_min, s.spread_max, s.two_sided_share
FROM spread s FULL OUTER JOIN ohlc o USING (symbol)
ORDER BY symbol
"""


def daily_market(trades: pa.Table, bbo: pa.Table, close_ns: int) -> pa.Table:
    """One row per symbol: OHLCV, VWAP, time-weighted spread statistics."""
    con = duckdb.connect()
    try:
        con.register("trades", trades)
        con.register("bbo", bbo)
        result = con.execute(_SQL, {"close_ns": close_ns}).to_arrow_table()
    finally:
        con.close()
    schema = TABLES["core.market_daily"].schema
    return result.select(schema.names).cast(schema)
