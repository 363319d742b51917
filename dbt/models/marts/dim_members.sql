-- The exchange's members as of the day, with whether and how much they traded.
with traded as (
    select member, count(*) as fills
    from {{ ref('stg_fills') }}
    group by member
)

select
    m.member_id,
    {{ trading_day() }} as trading_day,
    m.member_name,
    m.member_kind,
    m.capital,
    m.currency,
    coalesce(t.fills, 0) as fills
from {{ ref('stg_members') }} as m
left join traded as t on t.member = m.member_id
