"""Appending to and verifying a citizen's hash chain.

Each event's hash is SHA-256 over the previous hash and the RFC 8785 (JCS) canonical JSON of the
event, so it can be recomputed from the stored row alone, by this service or by an auditor.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import CitizenEvent
from service.models.enums import EventType

GENESIS = bytes(32)


def event_hash(
    prev_hash: bytes,
    *,
    citizen_id: uuid.UUID,
    seq: int,
    event_id: uuid.UUID,
    event_type: str,
    occurred_at: datetime,
    payload: Mapping[str, Any],
) -> bytes:
    body = rfc8785.dumps(
        {
            "citizenId": str(citizen_id),
            "seq": seq,
            "eventId": str(event_id),
            "type": event_type,
            "occurredAt": occurred_at.astimezone(UTC).isoformat(),
            "payload": dict(payload),
        }
    )
    return hashlib.sha256(prev_hash + body).digest()


async def append_event(
    session: AsyncSession,
    citizen_id: uuid.UUID,
    event_type: EventType,
    payload: Mapping[str, Any],
    occurred_at: datetime,
) -> None:
    """Caller must hold the citizen lock (``lock_citizen``) so ``seq`` has no gaps or forks."""
    last = (
        await session.execute(
            select(CitizenEvent.seq, CitizenEvent.hash)
            .where(CitizenEvent.citizen_id == citizen_id)
            .order_by(CitizenEvent.seq.desc())
            .limit(1)
        )
    ).one_or_none()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    event_id = uuid.uuid4()
    digest = event_hash(
        prev,
        citizen_id=citizen_id,
        seq=seq,
        event_id=event_id,
        event_type=event_type.value,
        occurred_at=occurred_at,
        payload=payload,
    )
    await session.execute(
        insert(CitizenEvent).values(
            citizen_id=citizen_id,
            seq=seq,
            event_id=event_id,
            event_type=event_type.value,
            occurred_at=occurred_at,
            payload=dict(payload),
            prev_hash=prev,
            hash=digest,
        )
    )


@dataclass(frozen=True)
class ChainBreak:
    citizen_id: uuid.UUID
    seq: int
    reason: str


async def verify_chain(session: AsyncSession, citizen_id: uuid.UUID) -> list[ChainBreak]:
    rows = await session.scalars(
        select(CitizenEvent).where(CitizenEvent.citizen_id == citizen_id).order_by(CitizenEvent.seq)
    )
    breaks: list[ChainBreak] = []
    prev, expected_seq = GENESIS, 1
    for row in rows:
        if row.seq != expected_seq:
            breaks.append(ChainBreak(citizen_id, row.seq, f"expected seq {expected_seq}"))
        if row.prev_hash != prev:
            breaks.append(ChainBreak(citizen_id, row.seq, "prev_hash does not link"))
        recomputed = event_hash(
            row.prev_hash,
            citizen_id=row.citizen_id,
            seq=row.seq,
            event_id=row.event_id,
            event_type=row.event_type,
            occurred_at=row.occurred_at,
            payload=row.payload,
        )
        if recomputed != row.hash:
            breaks.append(ChainBreak(citizen_id, row.seq, "hash does not match content"))
        prev, expected_seq = row.hash, row.seq + 1
    return breaks
