-- Exchange members from the reference data.
select
    member_id,
    name as member_name,
    kind as member_kind,
    {{ money('capital') }} as capital,
    currency
from {{ source('refdata', 'members') }}
