"""Market intelligence: news, filings and market data -> documents -> extractions -> trends
-> recommendations for the live core's members.

Pure logic by stage, each a sub-package that imports only the stages before
it (an import-linter contract in ``pyproject.toml`` checks the order
recommend > aggregate > extract > ingest > registry > parse > documents):

- ``documents``: the fetch and document contracts every stage shares;
- ``parse``: payloads -> documents or quarantine;
- ``registry``: the tracked companies, their links and where news comes from;
- ``ingest``: fetching the registry's sources, and which to fetch on a day;
- ``extract``: documents -> sentiment, impact, catalyst and macro events;
- ``aggregate``: extractions -> trend windows per company;
- ``recommend``: trends -> recommendations.

Beside the stages: ``schemas`` declares every intelligence table's columns,
``rows`` converts the contracts to and from those rows, ``config`` reads the
platform Settings for the stages' typed configs. No Dagster and no lake
access here: ``assets.intelligence`` is the glue that reads and writes the
lake, so tests call these modules directly. This package imports nothing on
its own; import the modules you need.
"""
