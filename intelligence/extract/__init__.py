"""Extraction: one document's text -> an ``Extraction`` (sentiment, impact, catalyst, macro).

``extraction`` holds the contract and the ``Extractor`` protocol; ``lexicon``
(word lists in ``lexicon/``) and ``macro`` (rules in ``lexicon/macro.yml``)
are the embedded, deterministic extractor; ``ollama_extractor`` asks a served
model and falls back to the lexicon; ``evaluation`` scores an extractor
against labelled public data. Apart because the backend is configuration:
aggregation reads the ``Extraction`` contract only, whichever backend ran.
"""
