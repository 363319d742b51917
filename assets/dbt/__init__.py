"""dbt: the marts of the dbt-duckdb project in ``dbt/`` as Dagster assets."""
