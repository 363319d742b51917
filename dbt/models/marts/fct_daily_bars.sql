-- One daily bar per traded symbol, from the trades, set against the 1-minute bars.
with ordered as (
    select
        *,
        row_number() over (partition by symbol order by ts_ns, trade_id) as first_rank,
        row_number() over (partition by symbol order by ts_ns desc, trade_id desc) as last_rank
    from {{ ref('stg_trades') }}
),

daily as (
    select
        symbol,
        any_value(trading_day) as trading_day,
        max(price) filter (where first_rank = 1) as open,
        max(price) as high,
        min(price) as low,
        max(price) filter (where last_rank = 1) as close,
        cast(sum(qty) as bigint) as volume,
        count(*) as trades,
        cast(sum(notional) as decimal(18, 4)) as notional,
        min(traded_at) as first_trade_at,
        max(traded_at) as last_trade_at
    from ordered
    group by symbol
),

minutes as (
    select symbol, count(*) as minutes_traded, cast(sum(volume) as bigint) as bar_volume
    from {{ ref('stg_bars_1m') }}
    group by symbol
)

select
    d.symbol,
    d.trading_day,
    d.open,
    d.high,
    d.low,
    d.close,
    d.volume,
    d.trades,
    d.notional,
    cast(d.notional / d.volume as decimal(18, 4)) as vwap,
    d.first_trade_at,
    d.last_trade_at,
    coalesce(m.minutes_traded, 0) as minutes_traded,
    coalesce(m.bar_volume, 0) as bar_volume
from daily as d
left join minutes as m on m.symbol = d.symbol
