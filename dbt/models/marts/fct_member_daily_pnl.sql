-- Each clearing member's day: P&L, fees, net worth and its change since the previous close.
select
    c.member,
    c.trading_day,
    c.opening_cash,
    c.closing_cash,
    c.realized_pnl,
    c.unrealized_pnl,
    c.fees,
    c.holdings_value,
    c.net_worth,
    p.previous_net_worth,
    cast(c.net_worth - p.previous_net_worth as decimal(18, 4)) as net_worth_change,
    case
        when p.previous_net_worth = 0 then null
        else cast((c.net_worth - p.previous_net_worth) / p.previous_net_worth as double)
    end as day_return,
    c.securities_traded,
    c.obligation_met
from {{ ref('stg_clearing_members') }} as c
inner join {{ ref('int_member_previous_close') }} as p on p.member = c.member
where c.trading_day = {{ trading_day() }}
