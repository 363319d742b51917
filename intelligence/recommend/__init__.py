"""Recommendations: trends -> an action, a confidence and a mode per company.

``recommendations`` turns the ``Trend`` contract into the live core's
``Recommendation`` events by explicit rules (including the forced
informational mode when a move does not come from the company itself). The
last stage, apart so the rules can change without touching how trends are
computed, and the only one that produces the live core's events.
"""
