-- Listed securities from the reference data.
select
    symbol,
    name as security_name,
    sector,
    currency
from {{ source('refdata', 'securities') }}
