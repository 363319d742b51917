"""Parsing: a fetched payload becomes documents (normalised text and metadata) or quarantine.

``parsing`` is pure and total: whatever the bytes, it returns documents or
``Quarantined`` records with a reason, never raises and never drops input.
It sits just above ``documents`` and below everything else because it needs
nothing but the contracts and the companies to look for (its own
``CompanyNames``, which the registry builds from its entries).
"""
