-- Clearing per member and symbol for the day.
select
    member,
    symbol,
    opening_qty,
    closing_qty,
    bought,
    sold,
    {{ money('settlement_price') }} as settlement_price,
    {{ money('realized_pnl') }} as realized_pnl,
    {{ money('unrealized_pnl') }} as unrealized_pnl,
    {{ money('fees') }} as fees,
    trading_day
from {{ source('core', 'clearing_positions') }}
where trading_day = {{ trading_day() }}
