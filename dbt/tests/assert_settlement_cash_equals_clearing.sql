-- Settlement per symbol adds up to each member's cash movement in clearing.
{{ config(meta={'dagster': {'ref': {'name': 'fct_settlement'}}}) }}
with settled as (
    select member, sum(net_cash) as net_cash
    from {{ ref('fct_settlement') }}
    group by member
)

select c.member, c.closing_cash - c.opening_cash as cash_change, s.net_cash
from {{ ref('fct_member_daily_pnl') }} as c
left join settled as s on s.member = c.member
where c.closing_cash - c.opening_cash <> coalesce(s.net_cash, 0)
