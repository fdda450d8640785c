"""The demo data `passport serve --demo` seeds at every start: a later start, on another day or
with another development key (a new checkout's data directory) on the same database, starts,
and the second key's demo citizen gets claims of their own."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service import demo as seeding
from service.models import ClaimRef
from service.settings import Settings


class _Tomorrow(date):
    @classmethod
    def today(cls) -> _Tomorrow:
        moved = date.today() + timedelta(days=1)
        return cls(moved.year, moved.month, moved.day)


async def _demo_refs(engine: AsyncEngine) -> int:
    """The refs of demo claims, whichever key's demo citizen they are for."""
    refs = [claim[1] + "-%" for claim in seeding.CLAIMS]
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(func.count())
            .select_from(ClaimRef)
            .where(or_(*(ClaimRef.external_ref.like(ref) for ref in refs)))
        )
    return int(found or 0)


async def test_a_later_start_seeds_again_without_failing(
    app: Any, demo: None, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine: AsyncEngine = app.state.passport.engine
    seeded = await _demo_refs(engine)
    assert seeded == len(seeding.CLAIMS)
    monkeypatch.setattr(seeding, "date", _Tomorrow)
    await seeding.seed_demo(engine, settings)  # another day: other dates
    assert await _demo_refs(engine) == seeded  # the claims seeded first stay as they were
    other_key = settings.model_copy(update={"insz_hmac_key": SecretStr("k" * 48)})
    await seeding.seed_demo(engine, other_key)  # another checkout's key: its citizen's claims
    assert await _demo_refs(engine) == 2 * seeded
