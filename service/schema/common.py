"""Shared GraphQL pieces: languages and Relay page info."""

from __future__ import annotations

import datetime as dt
import re
from enum import Enum
from typing import Any

import strawberry
from strawberry.types.scalar import ScalarDefinition

_CALENDAR_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_date(value: Any) -> dt.date:
    """Only YYYY-MM-DD: Python's own parser also takes week dates and 20200101."""
    if not isinstance(value, str) or not _CALENDAR_DATE.fullmatch(value):
        raise ValueError("expected a date as YYYY-MM-DD")
    return dt.date.fromisoformat(value)


SCALARS: dict[object, ScalarDefinition] = {
    dt.date: strawberry.scalar(
        name="Date",
        description="A calendar date, ISO 8601 YYYY-MM-DD.",
        serialize=dt.date.isoformat,
        parse_value=_parse_date,
    )
}


@strawberry.enum(description="Label language; Dutch first, English when Dutch is missing.")
class Language(Enum):
    NL = "nl"
    EN = "en"


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def clamp_first(first: int, maximum: int) -> int:
    return max(1, min(first, maximum))
