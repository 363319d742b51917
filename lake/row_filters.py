"""Typed constructors for pyiceberg's row filters.

pyiceberg's predicates are pydantic models whose real ``__init__`` takes
``(term, literal)`` positionally, but a type checker reads the model's fields
(``term: UnboundTerm``, ``value=``) and rejects every ordinary call. These
wrappers say once what the call really takes, so callers stay typed.
"""

from __future__ import annotations

from typing import Any, cast

from pyiceberg.expressions import (
    BooleanExpression,
    EqualTo,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    StartsWith,
)

_Predicate = Any  # the predicate classes, called as pyiceberg documents them


def equal_to(column: str, value: object) -> BooleanExpression:
    return cast(BooleanExpression, cast(_Predicate, EqualTo)(column, value))


def less_than(column: str, value: object) -> BooleanExpression:
    return cast(BooleanExpression, cast(_Predicate, LessThan)(column, value))


def at_most(column: str, value: object) -> BooleanExpression:
    return cast(BooleanExpression, cast(_Predicate, LessThanOrEqual)(column, value))


def at_least(column: str, value: object) -> BooleanExpression:
    return cast(BooleanExpression, cast(_Predicate, GreaterThanOrEqual)(column, value))


def starts_with(column: str, prefix: str) -> BooleanExpression:
    return cast(BooleanExpression, cast(_Predicate, StartsWith)(column, prefix))
