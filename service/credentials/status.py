"""Revocation status: W3C Bitstring Status List v1.0.

Every export draws fresh positions: one for its ClrCredential and one for each credential in
it. Positions are drawn at random (the spec's advice: an order would tell when a credential
was issued, and a position shared across exports would let their holders be linked), in the
newest list while it is less than half full; then a new list starts. Lists have the spec's
minimum of 131,072 entries, so a credential hides among many.

A bit is set when its claim is revoked (an endorsement: revoked by its endorser), its export
is revoked by the citizen, or its citizen was erased (``withdrawn_at``). The bits are computed
from those facts on each read, so there is no second copy of a revocation that could disagree
with the first.
"""

from __future__ import annotations

import base64
import gzip
import io
import secrets
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import cast, func, null, select, text, tuple_, union, union_all
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.models import (
    ClaimEndorsement,
    ClaimRevocation,
    CredentialExport,
    CredentialExportEndorsement,
    CredentialExportEntry,
    CredentialExportRevocation,
    StatusList,
    StatusListEntry,
)

LIST_SIZE = 131_072  # the spec's minimum: 16 KB, so one credential hides among many
FILL_LIMIT = LIST_SIZE // 2


@dataclass(frozen=True)
class Position:
    status_list: int
    index: int


class StatusListError(ValueError):
    """An ``encodedList`` that is not multibase base64url of a gzipped bitstring."""


def encode(set_bits: Iterable[int], size: int = LIST_SIZE) -> str:
    """Multibase ("u": base64url, no padding) of the gzipped bitstring; bit 0 is the first
    byte's most significant bit."""
    bits = bytearray(size // 8)
    for index in set_bits:
        bits[index // 8] |= 0x80 >> (index % 8)
    packed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode()


def decode(encoded: str, *, max_bytes: int = 16 * LIST_SIZE) -> bytes:
    if not encoded.startswith("u"):
        raise StatusListError("encodedList must be multibase base64url ('u...')")
    body = encoded[1:]
    try:
        packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        with gzip.GzipFile(fileobj=io.BytesIO(packed)) as stream:
            bits = stream.read(max_bytes + 1)  # bounded: a gzip bomb stops here
    except (ValueError, OSError, EOFError, zlib.error) as exc:  # zlib: a corrupt deflate stream
        raise StatusListError(f"encodedList does not decode: {exc}") from exc
    if len(bits) > max_bytes:
        raise StatusListError("encodedList is larger than any status list this service reads")
    return bits


def is_set(bits: bytes, index: int) -> bool:
    if index < 0 or index >= len(bits) * 8:
        raise StatusListError(f"statusListIndex {index} is outside the list")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


async def _newest_list(session: AsyncSession, owner: uuid.UUID | None) -> int:
    """The owner's newest list while it is less than half full, else a new one."""
    newest = await session.scalar(
        select(func.max(StatusList.id)).where(
            StatusList.organisation_id.is_not_distinct_from(owner)
        )
    )
    if newest is not None:
        filled = await session.scalar(
            select(func.count())
            .select_from(StatusListEntry)
            .where(StatusListEntry.status_list == newest)
        )
        if (filled or 0) < FILL_LIMIT:
            return newest
    return await _new_list(session, owner)


async def _new_list(session: AsyncSession, owner: uuid.UUID | None) -> int:
    """List numbers are global; two exports may want the next one at once, and the one that
    loses the number takes the one after."""
    while True:
        wanted = (await session.scalar(select(func.max(StatusList.id))) or 0) + 1
        made = await session.scalar(
            insert(StatusList)
            .values(id=wanted, size=LIST_SIZE, created_at=clock.now(), organisation_id=owner)
            .on_conflict_do_nothing()
            .returning(StatusList.id)
        )
        if made is not None:
            return made


# Built once: a multi-row VALUES list would be compiled again for every export.
_TAKE = text(
    """
    INSERT INTO status_list_entries (status_list, idx, allocated_at)
    SELECT :list, idx, :at FROM unnest(CAST(:wanted AS integer[])) AS idx
    ON CONFLICT (status_list, idx) DO NOTHING
    RETURNING idx
    """
)


async def allocate(session: AsyncSession, count: int, owner: uuid.UUID | None) -> list[Position]:
    """``count`` free positions, at random, in the owner's newest list with room (owner:
    the organisation whose DID signs the credentials, None for the service's own)."""
    list_id = await _newest_list(session, owner)
    at = clock.now()
    taken: list[Position] = []
    while len(taken) < count:
        wanted = list({secrets.randbelow(LIST_SIZE) for _ in range(count - len(taken))})
        rows = await session.scalars(_TAKE, {"list": list_id, "at": at, "wanted": wanted})
        taken.extend(Position(list_id, index) for index in rows)
    return taken


async def list_owner(session: AsyncSession, list_id: int) -> tuple[bool, uuid.UUID | None]:
    """(whether the list exists, the organisation that issues it: None for the service)."""
    row = (
        await session.execute(select(StatusList.organisation_id).where(StatusList.id == list_id))
    ).one_or_none()
    return (False, None) if row is None else (True, row.organisation_id)


async def set_bits(session: AsyncSession, list_id: int) -> list[int]:
    """Positions in the list whose credentials are revoked: by their issuer, by the citizen
    (the whole export), or by erasure."""
    withdrawn = select(StatusListEntry.idx).where(
        StatusListEntry.status_list == list_id, StatusListEntry.withdrawn_at.is_not(None)
    )
    entry = CredentialExportEntry
    claim_revoked = (
        select(entry.idx)
        .join(
            ClaimRevocation,
            (ClaimRevocation.citizen_id == entry.citizen_id)
            & (ClaimRevocation.claim_id == entry.claim_id),
        )
        .where(entry.status_list == list_id)
    )
    revoked = CredentialExportRevocation
    export_revoked_entries = (
        select(entry.idx)
        .join(
            revoked,
            (revoked.citizen_id == entry.citizen_id) & (revoked.export_id == entry.export_id),
        )
        .where(entry.status_list == list_id)
    )
    export_revoked = (
        select(CredentialExport.status_idx)
        .join(
            revoked,
            (revoked.citizen_id == CredentialExport.citizen_id)
            & (revoked.export_id == CredentialExport.id),
        )
        .where(CredentialExport.status_list == list_id)
    )
    endorsed = CredentialExportEndorsement
    endorsement_revoked = (
        select(endorsed.idx)
        .join(
            ClaimEndorsement,
            (ClaimEndorsement.citizen_id == endorsed.citizen_id)
            & (ClaimEndorsement.endorsement_id == endorsed.endorsement_id),
        )
        .where(endorsed.status_list == list_id, ClaimEndorsement.revoked_at.is_not(None))
    )
    export_revoked_endorsements = (
        select(endorsed.idx)
        .join(
            revoked,
            (revoked.citizen_id == endorsed.citizen_id) & (revoked.export_id == endorsed.export_id),
        )
        .where(endorsed.status_list == list_id)
    )
    return list(
        await session.scalars(
            union(
                withdrawn,
                claim_revoked,
                export_revoked_entries,
                export_revoked,
                endorsement_revoked,
                export_revoked_endorsements,
            )
        )
    )


_NO_ID = cast(null(), UUID(as_uuid=True))  # a typed NULL: UNION branches must agree


@dataclass(frozen=True)
class Holder:
    """What a taken position stands for now."""

    withdrawn: bool  # its citizen was erased
    citizen_id: uuid.UUID | None = None
    export_id: uuid.UUID | None = None
    claim_id: uuid.UUID | None = None  # None: the export's own position, or an endorsement's
    export_revoked: bool = False
    endorsement_id: uuid.UUID | None = None


async def holders(
    session: AsyncSession, wanted: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], Holder]:
    """Positions that exist among ``wanted`` (list, index) pairs, in two statements: the
    positions (kept with their lists), then who holds them (kept with the citizens; on
    Citus every shard looks in its own index of positions)."""
    pairs = sorted(set(wanted))
    if not pairs:
        return {}
    taken_at = await session.execute(
        select(
            StatusListEntry.status_list, StatusListEntry.idx, StatusListEntry.withdrawn_at
        ).where(tuple_(StatusListEntry.status_list, StatusListEntry.idx).in_(pairs))
    )
    withdrawn = {(row.status_list, row.idx): row.withdrawn_at is not None for row in taken_at}
    if not withdrawn:
        return {}
    entry, export, revoked = CredentialExportEntry, CredentialExport, CredentialExportRevocation
    endorsed = CredentialExportEndorsement
    taken = union_all(
        select(
            entry.citizen_id,
            entry.export_id,
            entry.claim_id,
            _NO_ID.label("endorsement_id"),
            entry.status_list,
            entry.idx,
        ).where(tuple_(entry.status_list, entry.idx).in_(pairs)),
        select(
            export.citizen_id,
            export.id,
            _NO_ID.label("claim_id"),
            _NO_ID.label("endorsement_id"),
            export.status_list,
            export.status_idx,
        ).where(tuple_(export.status_list, export.status_idx).in_(pairs)),
        select(
            endorsed.citizen_id,
            endorsed.export_id,
            _NO_ID.label("claim_id"),
            endorsed.endorsement_id,
            endorsed.status_list,
            endorsed.idx,
        ).where(tuple_(endorsed.status_list, endorsed.idx).in_(pairs)),
    ).subquery()
    rows = await session.execute(
        select(taken, revoked.revoked_at).outerjoin(
            revoked,
            (revoked.citizen_id == taken.c.citizen_id) & (revoked.export_id == taken.c.export_id),
        )
    )
    held = {
        (row.status_list, row.idx): Holder(
            withdrawn=withdrawn[row.status_list, row.idx],
            citizen_id=row.citizen_id,
            export_id=row.export_id,
            claim_id=row.claim_id,
            export_revoked=row.revoked_at is not None,
            endorsement_id=row.endorsement_id,
        )
        for row in rows
        if (row.status_list, row.idx) in withdrawn
    }
    return {
        position: held.get(position, Holder(withdrawn=gone)) for position, gone in withdrawn.items()
    }
