-- Members' fills: the execution reports of type 'trade', one per side of a match.
select
    member,
    symbol,
    side,
    trade_id,
    last_qty as qty,
    {{ money('last_price') }} as price,
    {{ money('last_price * last_qty') }} as notional,
    ts as ts_ns,
    trading_day
from {{ source('raw', 'executions') }}
where trading_day = {{ trading_day() }}
  and exec_type = 'trade'
