-- What each clearing member settles per symbol: securities delivered and cash paid.
select
    p.member,
    p.symbol,
    p.trading_day,
    p.opening_qty,
    p.bought as bought_qty,
    p.sold as sold_qty,
    p.bought - p.sold as net_qty,
    p.closing_qty,
    cast(coalesce(f.buy_notional, 0) as decimal(18, 4)) as buy_notional,
    cast(coalesce(f.sell_notional, 0) as decimal(18, 4)) as sell_notional,
    p.fees,
    cast(coalesce(f.sell_notional, 0) - coalesce(f.buy_notional, 0) - p.fees as decimal(18, 4))
        as net_cash,
    p.settlement_price,
    cast(coalesce(f.fills, 0) as bigint) as fills,
    m.obligation_met
from {{ ref('stg_clearing_positions') }} as p
left join {{ ref('int_fills_by_member_symbol') }} as f
    on f.member = p.member and f.symbol = p.symbol
inner join {{ ref('stg_clearing_members') }} as m
    on m.member = p.member and m.trading_day = p.trading_day
