"""Revocation status: W3C Bitstring Status List v1.0.

Every exported credential carries a ``BitstringStatusListEntry``: a list and a position in it.
A claim keeps its position across exports; an export has one of its own. Positions are drawn
at random (the spec's advice: an order would tell when a credential was issued), in the newest
list while it is less than half full; then a new list starts.

A bit is set when its claim is revoked, or its citizen was erased (``withdrawn_at``). The
bits are computed from those facts on each read, so there is no second copy of a revocation
that could disagree with the first.
"""

from __future__ import annotations

import base64
import gzip
import io
import secrets
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, tuple_, union
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.models import ClaimRevocation, ClaimStatusPosition, StatusList, StatusListEntry

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


async def _newest_list(session: AsyncSession) -> int:
    newest = await session.scalar(select(func.max(StatusList.id)))
    if newest is None:
        return await _new_list(session, 1)
    filled = await session.scalar(
        select(func.count())
        .select_from(StatusListEntry)
        .where(StatusListEntry.status_list == newest)
    )
    return newest if (filled or 0) < FILL_LIMIT else await _new_list(session, newest + 1)


async def _new_list(session: AsyncSession, wanted: int) -> int:
    """Two exports may start the next list at once; both then use the one that exists."""
    await session.execute(
        insert(StatusList)
        .values(id=wanted, size=LIST_SIZE, created_at=clock.now())
        .on_conflict_do_nothing()
    )
    return wanted


async def _allocate(session: AsyncSession, count: int) -> list[Position]:
    """``count`` free positions, at random, in the newest list with room."""
    list_id = await _newest_list(session)
    at = clock.now()
    taken: list[Position] = []
    while len(taken) < count:
        wanted = {secrets.randbelow(LIST_SIZE) for _ in range(count - len(taken))}
        rows = await session.scalars(
            insert(StatusListEntry)
            .values([{"status_list": list_id, "idx": i, "allocated_at": at} for i in wanted])
            .on_conflict_do_nothing(index_elements=["status_list", "idx"])
            .returning(StatusListEntry.idx)
        )
        taken.extend(Position(list_id, index) for index in rows)
    return taken


async def assign(
    session: AsyncSession, citizen_id: uuid.UUID, claim_ids: Sequence[uuid.UUID]
) -> tuple[dict[uuid.UUID, Position], Position]:
    """Positions for these claims (a claim keeps the one it has) and a new one for the
    export. Call under the citizen's exclusive lock, so two exports never race for a claim."""
    rows = await session.execute(
        select(
            ClaimStatusPosition.claim_id, ClaimStatusPosition.status_list, ClaimStatusPosition.idx
        ).where(
            ClaimStatusPosition.citizen_id == citizen_id,
            ClaimStatusPosition.claim_id.in_(claim_ids),
        )
    )
    positions = {row.claim_id: Position(row.status_list, row.idx) for row in rows}
    missing = [claim_id for claim_id in claim_ids if claim_id not in positions]
    *fresh, export_position = await _allocate(session, len(missing) + 1)
    if missing:
        await session.execute(
            insert(ClaimStatusPosition).values(
                [
                    {
                        "citizen_id": citizen_id,
                        "claim_id": claim_id,
                        "status_list": position.status_list,
                        "idx": position.index,
                    }
                    for claim_id, position in zip(missing, fresh, strict=True)
                ]
            )
        )
        positions.update(zip(missing, fresh, strict=True))
    return positions, export_position


async def set_bits(session: AsyncSession, list_id: int) -> list[int]:
    """Positions in the list whose credentials are revoked: by their issuer, or by erasure."""
    withdrawn = select(StatusListEntry.idx).where(
        StatusListEntry.status_list == list_id, StatusListEntry.withdrawn_at.is_not(None)
    )
    revoked = (
        select(ClaimStatusPosition.idx)
        .join(
            ClaimRevocation,
            (ClaimRevocation.citizen_id == ClaimStatusPosition.citizen_id)
            & (ClaimRevocation.claim_id == ClaimStatusPosition.claim_id),
        )
        .where(ClaimStatusPosition.status_list == list_id)
    )
    return list(await session.scalars(union(withdrawn, revoked)))


@dataclass(frozen=True)
class Holder:
    """What a taken position stands for now."""

    withdrawn: bool  # its citizen was erased
    citizen_id: uuid.UUID | None = None  # set for a claim's position
    claim_id: uuid.UUID | None = None


async def holders(
    session: AsyncSession, wanted: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], Holder]:
    """Positions that exist among ``wanted`` (list, index) pairs, in one statement."""
    pairs = sorted(set(wanted))
    if not pairs:
        return {}
    rows = await session.execute(
        select(
            StatusListEntry.status_list,
            StatusListEntry.idx,
            StatusListEntry.withdrawn_at,
            ClaimStatusPosition.citizen_id,
            ClaimStatusPosition.claim_id,
        )
        .outerjoin(
            ClaimStatusPosition,
            (ClaimStatusPosition.status_list == StatusListEntry.status_list)
            & (ClaimStatusPosition.idx == StatusListEntry.idx),
        )
        .where(tuple_(StatusListEntry.status_list, StatusListEntry.idx).in_(pairs))
    )
    return {
        (row.status_list, row.idx): Holder(
            row.withdrawn_at is not None, row.citizen_id, row.claim_id
        )
        for row in rows
    }


async def list_exists(session: AsyncSession, list_id: int) -> bool:
    return (await session.get(StatusList, list_id)) is not None
