{#- Lake money columns are integers in 1/10,000 of the currency; marts show it as
    an exact DECIMAL(18, 4) in currency (no float on the way). -#}
{% macro money(column) -%}
    cast(cast({{ column }} as decimal(18, 0)) * 0.0001 as decimal(18, 4))
{%- endmacro %}

{#- The partition this run builds, as a DuckDB date. -#}
{% macro trading_day() -%}
    cast('{{ var("trading_day") }}' as date)
{%- endmacro %}

{#- Event time (ns since the epoch) as a TIMESTAMP in UTC, to the microsecond
    (Iceberg's and Trino's precision), whatever the session's time zone. -#}
{% macro event_time(column) -%}
    make_timestamp(({{ column }} // 1000)::bigint)
{%- endmacro %}
