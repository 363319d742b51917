-- Each clearing member's net worth before the day: the latest earlier close, or its capital.
with earlier as (
    select member, net_worth, trading_day
    from {{ ref('stg_clearing_members') }}
    where trading_day < {{ trading_day() }}
    qualify row_number() over (partition by member order by trading_day desc) = 1
)

select
    m.member_id as member,
    coalesce(e.net_worth, m.capital) as previous_net_worth,
    e.trading_day as previous_trading_day
from {{ ref('stg_members') }} as m
left join earlier as e on e.member = m.member_id
where m.member_kind = 'clearing'
