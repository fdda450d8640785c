"""Finding and creating citizens; serialising writes to one citizen's records."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.identity.numbers import INSZ_KEY_VERSION, insz_hash
from service.models import Citizen, CitizenIdentity


async def find_citizen(session: AsyncSession, insz: str, key: bytes) -> uuid.UUID | None:
    return await session.scalar(
        select(CitizenIdentity.citizen_id).where(CitizenIdentity.insz_hash == insz_hash(insz, key))
    )


async def get_or_create_citizen(session: AsyncSession, insz: str, key: bytes) -> uuid.UUID:
    """Race-safe: concurrent first claims for one person converge on a single citizen row."""
    digest = insz_hash(insz, key)
    existing = await session.scalar(
        select(CitizenIdentity.citizen_id).where(CitizenIdentity.insz_hash == digest)
    )
    if existing is not None:
        return existing
    citizen_id = uuid.uuid4()
    await session.execute(insert(Citizen).values(citizen_id=citizen_id))
    claimed = await session.scalar(
        insert(CitizenIdentity)
        .values(insz_hash=digest, citizen_id=citizen_id, key_version=INSZ_KEY_VERSION)
        .on_conflict_do_nothing(index_elements=["insz_hash"])
        .returning(CitizenIdentity.citizen_id)
    )
    if claimed is not None:
        return claimed
    # Another transaction won the race; drop our orphan row and use theirs.
    await session.execute(delete(Citizen).where(Citizen.citizen_id == citizen_id))
    winner = await session.scalar(
        select(CitizenIdentity.citizen_id).where(CitizenIdentity.insz_hash == digest)
    )
    assert winner is not None
    return winner


async def lock_citizen(session: AsyncSession, citizen_id: uuid.UUID) -> None:
    """One writer per citizen at a time keeps the event chain linear, without UPDATE rights."""
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(str(citizen_id), 0)))
    )
