"""Shared GraphQL pieces: languages and Relay page info."""

from __future__ import annotations

from enum import Enum

import strawberry


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
