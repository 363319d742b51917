{#- A row-level rule: the rows where the SQL expression is not true fail the test. -#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
