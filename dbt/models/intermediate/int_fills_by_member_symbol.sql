-- Per member and symbol: what its fills bought and sold, in quantity and money.
select
    member,
    symbol,
    count(*) as fills,
    cast(coalesce(sum(qty) filter (where side = 'buy'), 0) as bigint) as bought_qty,
    cast(coalesce(sum(qty) filter (where side = 'sell'), 0) as bigint) as sold_qty,
    cast(coalesce(sum(notional) filter (where side = 'buy'), 0) as decimal(18, 4)) as buy_notional,
    cast(coalesce(sum(notional) filter (where side = 'sell'), 0) as decimal(18, 4)) as sell_notional
from {{ ref('stg_fills') }}
group by member, symbol
