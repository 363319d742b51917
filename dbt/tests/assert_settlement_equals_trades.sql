-- What clearing members settle equals what they traded: bought and sold notional per member.
{{ config(meta={'dagster': {'ref': {'name': 'fct_settlement'}}}) }}
with clearing as (
    select member_id from {{ ref('dim_members') }} where member_kind = 'clearing'
),

traded as (
    select member, sum(buy_notional) as buy_notional, sum(sell_notional) as sell_notional
    from (
        select buy_member as member, notional as buy_notional, 0 as sell_notional
        from {{ ref('fct_trades') }}
        union all
        select sell_member as member, 0 as buy_notional, notional as sell_notional
        from {{ ref('fct_trades') }}
    ) as sides
    where member in (select member_id from clearing)
    group by member
),

settled as (
    select member, sum(buy_notional) as buy_notional, sum(sell_notional) as sell_notional
    from {{ ref('fct_settlement') }}
    group by member
)

select t.member, t.buy_notional, s.buy_notional as settled_buy,
       t.sell_notional, s.sell_notional as settled_sell
from traded as t
full outer join settled as s on s.member = t.member
where coalesce(t.buy_notional, 0) <> coalesce(s.buy_notional, 0)
   or coalesce(t.sell_notional, 0) <> coalesce(s.sell_notional, 0)
