"""Finding and creating citizens; serialising writes to one citizen's records."""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlalchemy import String, bindparam, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.policy import require_citizen
from service.auth.principal import Principal
from service.db.plans import GENERIC_PLANS
from service.db.raw import driver_sql, fetchrow, fetchval
from service.errors import CitizenGone
from service.identity.numbers import INSZ_KEY_VERSION, insz_hash
from service.models import Citizen, CitizenIdentity, CitizenSettings
from service.validation import Name, validate

# The statements of every write are built once: building one costs more than running it.
BY_HASH = select(CitizenIdentity.citizen_id).where(CitizenIdentity.insz_hash == bindparam("h"))
_CREATE = text(
    """
    WITH claimed AS (
      INSERT INTO citizen_identities (insz_hash, citizen_id, key_version)
      VALUES (:h, :new_id, :version)
      ON CONFLICT (insz_hash) DO NOTHING
      RETURNING citizen_id)
    INSERT INTO citizens (citizen_id) SELECT citizen_id FROM claimed RETURNING citizen_id
    """
)
# Keyed as passport_erase_citizen computes it: hashtextextended(citizen_id::text, 0).
_LOCK_KEY = func.hashtextextended(bindparam("key", type_=String), 0)
_LOCK = select(func.pg_advisory_xact_lock(_LOCK_KEY))
_SHARE_LOCK = select(func.pg_advisory_xact_lock_shared(_LOCK_KEY))
_SHARE_LOCK_PLANNED = _SHARE_LOCK.add_columns(GENERIC_PLANS)
# A read's statements, sent straight to the driver (service/db/raw.py): no pending ORM
# object of the session can be what they look for, so they need no autoflush before them.
_DRIVER_BY_HASH = driver_sql(BY_HASH)
_DRIVER_SHARE_LOCK = {False: driver_sql(_SHARE_LOCK), True: driver_sql(_SHARE_LOCK_PLANNED)}
_STILL_THERE = select(literal(True)).where(Citizen.citizen_id == bindparam("citizen_id"))


async def find_citizen(session: AsyncSession, insz: str, key: bytes) -> uuid.UUID | None:
    return await find_citizen_by_hash(session, insz_hash(insz, key))


async def find_citizen_by_hash(session: AsyncSession, digest: bytes) -> uuid.UUID | None:
    found: uuid.UUID | None = await fetchval(session, _DRIVER_BY_HASH, {"h": digest})
    return found


async def get_or_create_citizen(session: AsyncSession, insz: str, key: bytes) -> uuid.UUID:
    """Race-safe: concurrent first claims for one person converge on a single citizen row.

    The identity row is claimed first and the citizen row is written only by the winner, in one
    statement (the foreign key is checked at its end), so a loser leaves nothing to delete: the
    application role has no DELETE right on citizens.
    """
    digest = insz_hash(insz, key)
    existing = await session.scalar(BY_HASH, {"h": digest})
    if existing is not None:
        return existing
    created = await session.scalar(
        _CREATE, {"h": digest, "new_id": uuid.uuid4(), "version": INSZ_KEY_VERSION}
    )
    if created is not None:
        return created
    # Another transaction won the race; use its citizen.
    winner = await session.scalar(BY_HASH, {"h": digest})
    assert winner is not None
    return winner


async def share_citizen_lock(
    session: AsyncSession, citizen_id: uuid.UUID, *, generic_plans: bool = False
) -> None:
    """Readers share the lock that writers and erasure hold alone: a read never sees half a
    write, an erasure waits for the reads in flight (so their records are kept or erased with
    the rest), and a read that waited for an erasure finds the citizen gone. ``generic_plans``:
    the rest of the transaction runs on generic plans (``service.db.plans``)."""
    await fetchrow(session, _DRIVER_SHARE_LOCK[generic_plans], {"key": str(citizen_id)})


async def lock_citizen(session: AsyncSession, citizen_id: uuid.UUID) -> None:
    """One writer per citizen at a time keeps the event chain linear, without UPDATE rights.

    Erasure takes the same lock; a writer that found the citizen before an erasure and waited
    for it finds them gone and raises CitizenGone, so its mutation runs again from the start
    (and, naming the person again, starts a new passport rather than writing into an erased one).
    """
    await session.execute(_LOCK, {"key": str(citizen_id)})
    exists = await session.scalar(_STILL_THERE, {"citizen_id": citizen_id})  # a fresh snapshot
    if not exists:
        raise CitizenGone


async def own_citizen_id(
    session: AsyncSession, principal: Principal, key: bytes, *, create: bool = False
) -> uuid.UUID | None:
    """The signed-in citizen's id; None while nobody has written anything about them."""
    insz = require_citizen(principal)
    if create:
        return await get_or_create_citizen(session, insz, key)
    return await find_citizen(session, insz, key)


_CREATE_MANY = text(
    """
    WITH claimed AS (
      INSERT INTO citizen_identities (insz_hash, citizen_id, key_version)
      SELECT h, gen_random_uuid(), :version FROM unnest(CAST(:hashes AS bytea[])) AS h
      ON CONFLICT (insz_hash) DO NOTHING
      RETURNING insz_hash, citizen_id)
    , made AS (INSERT INTO citizens (citizen_id) SELECT citizen_id FROM claimed)
    SELECT insz_hash, citizen_id FROM claimed
    """
)


async def find_citizens(session: AsyncSession, digests: set[bytes]) -> dict[bytes, uuid.UUID]:
    """The citizens known by these keyed hashes (``insz_hash``), by hash."""
    rows = await session.execute(
        select(CitizenIdentity.insz_hash, CitizenIdentity.citizen_id).where(
            CitizenIdentity.insz_hash.in_(list(digests))
        )
    )
    return {bytes(h): c for h, c in rows}


async def get_or_create_citizens(
    session: AsyncSession, digests: set[bytes]
) -> dict[bytes, uuid.UUID]:
    """``get_or_create_citizen`` for many keyed hashes at once, in three statements at most."""
    found = await find_citizens(session, digests) if digests else {}
    missing = digests - found.keys()
    if missing:
        created = await session.execute(
            _CREATE_MANY, {"hashes": sorted(missing), "version": INSZ_KEY_VERSION}
        )
        found.update({bytes(h): c for h, c in created})
        if len(found) < len(digests):  # others won races for some; use theirs
            found.update(await find_citizens(session, digests - found.keys()))
    return found


# Many citizens' locks are always taken in lock-key order, exclusive or shared: a batch read
# and a batch write naming the same citizens wait for each other instead of deadlocking.
_IN_KEY_ORDER = (
    " FROM (SELECT DISTINCT hashtextextended(c::text, 0) AS k"
    " FROM unnest(CAST(:ids AS uuid[])) AS c ORDER BY k) AS ordered"
)
_LOCK_MANY = text("SELECT pg_advisory_xact_lock(k)" + _IN_KEY_ORDER)
_SHARE_LOCK_MANY = text("SELECT pg_advisory_xact_lock_shared(k)" + _IN_KEY_ORDER)


async def share_citizen_locks(session: AsyncSession, citizen_ids: set[uuid.UUID]) -> None:
    """``share_citizen_lock`` for many, in the order ``lock_citizens`` takes them."""
    await session.execute(_SHARE_LOCK_MANY, {"ids": list(citizen_ids)})


async def lock_citizens(session: AsyncSession, citizen_ids: set[uuid.UUID]) -> None:
    """``lock_citizen`` for many: taken in one order (by lock key), so two batches naming the
    same citizens wait for each other instead of deadlocking."""
    await session.execute(_LOCK_MANY, {"ids": list(citizen_ids)})
    present = await session.scalar(
        select(func.count()).where(Citizen.citizen_id.in_(list(citizen_ids)))  # fresh snapshot
    )
    if present != len(citizen_ids):
        raise CitizenGone


class _ExportName(BaseModel):
    name: Name | None


async def export_name(session: AsyncSession, citizen_id: uuid.UUID) -> str | None:
    return await session.scalar(
        select(CitizenSettings.export_name).where(CitizenSettings.citizen_id == citizen_id)
    )


async def set_export_name(
    session: AsyncSession, principal: Principal, key: bytes, name: str | None
) -> str | None:
    """The name the citizen's exports show; None clears it (the sign-in's name is used)."""
    chosen = validate(_ExportName, {"name": name}, prefix="").name
    chosen = " ".join(chosen.split()) if chosen is not None else None
    citizen_id = await own_citizen_id(session, principal, key, create=True)
    assert citizen_id is not None
    statement = pg_insert(CitizenSettings).values(
        citizen_id=citizen_id, export_name=chosen, updated_at=clock.now()
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[CitizenSettings.citizen_id],
            set_={
                "export_name": statement.excluded.export_name,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )
    return chosen
