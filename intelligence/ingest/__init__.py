"""Ingestion: fetching the registry's sources over HTTP, and deciding what a day fetches.

``ingestion`` is the fetch machinery (retries, rate limits, conditional
requests, content hashes, failure cool-downs) that always returns a
``Fetched`` record; ``polling`` picks the sources of a day (a live day polls
what is due, a past day only date-ranged APIs) and runs one round;
``recorded_news`` gives the demo's stories in a provider's shape. Apart
because it is the stage that reaches the news providers: the stages after it
read what it recorded in the lake, never the network.
"""
