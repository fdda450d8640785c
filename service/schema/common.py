"""Shared GraphQL pieces: languages, Relay page info, what an answer's selection asks for."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection
from strawberry.types.scalar import ScalarDefinition

from service.errors import ValidationFailed

_CALENDAR_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_date(value: Any) -> dt.date:
    """Only YYYY-MM-DD: Python's own parser also takes week dates and 20200101. A GraphQLError
    with a fixed text, so the answer is a validation error that never repeats the value."""
    if isinstance(value, str) and _CALENDAR_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise GraphQLError("Expected a calendar date as YYYY-MM-DD.")


SCALARS: dict[object, ScalarDefinition] = {
    dt.date: strawberry.scalar(
        name="Date",
        description="A calendar date, ISO 8601 YYYY-MM-DD.",
        serialize=dt.date.isoformat,
        parse_value=_parse_date,
    )
}


E = TypeVar("E", bound=Enum)


def by_value(enum: type[E]) -> Callable[[Any], E]:
    """``enum(value)`` as a dict lookup (the call searches the members each time); a value
    that is no member's goes to ``enum`` itself, to fail as it would."""
    members = {member.value: member for member in enum}

    def member(value: Any) -> E:
        try:
            return members[value]
        except (KeyError, TypeError):
            return enum(value)

    return member


@strawberry.enum(description="Label language; Dutch first, English when Dutch is missing.")
class Language(Enum):
    NL = "nl"
    EN = "en"


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def clamp_first(first: int, maximum: int) -> int:
    """Relay: a negative ``first`` is an error, 0 asks for no edges, more than the page size
    gets a full page."""
    if first < 0:
        raise ValidationFailed.one("first", "must not be negative")
    return min(first, maximum)


def _fields(selections: list[Selection]) -> list[SelectedField]:
    """The fields of a selection set, those inside fragments included."""
    found: list[SelectedField] = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            found.append(selection)
        else:
            found.extend(_fields(selection.selections))
    return found


def asks_only(info: Info[Any, Any], field: str, names: frozenset[str]) -> bool:
    """Whether each ``field`` the current field's answer selects (in any of its fragments)
    asks for nothing outside ``names``: what a write knows already needs no read to answer.
    Conservative: a name outside ``names`` counts even under ``@skip`` or ``@include``."""
    return all(
        sub.name in names
        for selected in info.selected_fields
        for child in _fields(selected.selections)
        if child.name == field
        for sub in _fields(child.selections)
    )
