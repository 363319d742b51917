"""Aggregation: many extractions -> one trend per company, window and point in time.

``signals`` holds the contract the next stage reads (``Trend``, ``Evidence``,
the windows and layers); ``aggregation`` computes it from scored documents
through the company, macro and competitive layers. Apart so recommendations
depend on the trend contract alone, never on how documents were weighed.
"""
