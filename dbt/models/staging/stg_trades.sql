-- One row per match of the day, money in currency, event time as a timestamp.
select
    symbol || '-' || cast(trade_id as varchar) as trade_key,
    trade_id,
    symbol,
    {{ money('price') }} as price,
    qty,
    {{ money('price * qty') }} as notional,
    aggressor_side,
    buy_member,
    sell_member,
    ts as ts_ns,
    {{ event_time('ts') }} as traded_at,
    trading_day
from {{ source('raw', 'trades') }}
where trading_day = {{ trading_day() }}
