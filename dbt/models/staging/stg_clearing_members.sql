-- Clearing per member: the day's rows and the latest day before it (for day-on-day change).
select
    member,
    trading_day,
    {{ money('opening_cash') }} as opening_cash,
    {{ money('closing_cash') }} as closing_cash,
    {{ money('bought_notional') }} as bought_notional,
    {{ money('sold_notional') }} as sold_notional,
    {{ money('fees') }} as fees,
    {{ money('realized_pnl') }} as realized_pnl,
    {{ money('unrealized_pnl') }} as unrealized_pnl,
    {{ money('holdings_value') }} as holdings_value,
    {{ money('net_worth') }} as net_worth,
    securities_traded,
    obligation_met
from {{ source('core', 'clearing_members') }}
where trading_day <= {{ trading_day() }}
