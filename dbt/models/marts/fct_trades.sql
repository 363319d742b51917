-- Every trade of the day, one row per match, money in currency.
select
    trade_key,
    trading_day,
    symbol,
    trade_id,
    traded_at,
    price,
    qty,
    notional,
    aggressor_side,
    buy_member,
    sell_member
from {{ ref('stg_trades') }}
