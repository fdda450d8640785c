"""The service's clock: server time only, never a client-supplied timestamp."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    """Calendar dates (acquired, last used, valid until) are Belgian dates."""
    return datetime.now(BRUSSELS).date()


Moment = TypeVar("Moment", bound=date)  # a date or a datetime


def add_years(moment: Moment, years: int) -> Moment:
    """The same calendar moment ``years`` later (or earlier); 29 February becomes the 28th."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)
