-- The bar builder's one-minute bars (windows that had trades only).
select
    symbol,
    "start" as start_ns,
    {{ event_time('"start"') }} as bar_start,
    {{ money('"open"') }} as open,
    {{ money('high') }} as high,
    {{ money('low') }} as low,
    {{ money('"close"') }} as close,
    volume,
    trades,
    trading_day
from {{ source('raw', 'bars') }}
where trading_day = {{ trading_day() }}
  and "interval" = '1m'
