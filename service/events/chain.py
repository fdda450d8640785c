"""Appending to and verifying a citizen's hash chain.

Each event's hash is SHA-256 over the previous hash and the RFC 8785 (JCS) canonical JSON of the
event, so it can be recomputed from the stored row alone, by this service or by an auditor.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import AccessGrant, Citizen, CitizenEvent, Claim, ClaimRevocation
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
    seq: int | None  # None: a row without its event, found by the cross-check
    reason: str


@dataclass
class ChainReport:
    citizens: int = 0
    events: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)


# Which events a row must have: a claim its issuing (or declaring) event, a revocation its
# revoking (or withdrawing) event, a grant its creation and, once revoked, its revocation.
_CLAIM_EVENTS = frozenset({EventType.CLAIM_ISSUED.value, EventType.CLAIM_SELF_DECLARED.value})
_REVOCATION_EVENTS = frozenset({EventType.CLAIM_REVOKED.value, EventType.CLAIM_WITHDRAWN.value})
BATCH = 500


def _verify_links(citizen_id: uuid.UUID, rows: Sequence[CitizenEvent]) -> list[ChainBreak]:
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


def _cross_check(
    citizen_id: uuid.UUID,
    events: Sequence[CitizenEvent],
    claims: set[str],
    revocations: set[str],
    grants: set[str],
    revoked_grants: set[str],
) -> list[ChainBreak]:
    """Rows and events must tell the same story: this catches deleted events (a chain alone
    cannot notice its last links missing) and rows written behind the service's back."""

    def ids(types: frozenset[str], key: str) -> set[str]:
        return {str(e.payload.get(key)) for e in events if e.event_type in types}

    found = [
        (claims - ids(_CLAIM_EVENTS, "claimId"), "claim {} has no event"),
        (ids(_CLAIM_EVENTS, "claimId") - claims, "event of claim {} but no such claim"),
        (revocations - ids(_REVOCATION_EVENTS, "claimId"), "revocation of {} has no event"),
        (
            grants - ids(frozenset({EventType.GRANT_CREATED.value}), "grantId"),
            "grant {} has no event",
        ),
        (
            revoked_grants - ids(frozenset({EventType.GRANT_REVOKED.value}), "grantId"),
            "revocation of grant {} has no event",
        ),
    ]
    return [
        ChainBreak(citizen_id, None, message.format(item))
        for missing, message in found
        for item in sorted(missing)
    ]


async def _verify_batch(session: AsyncSession, citizen_ids: list[uuid.UUID]) -> ChainReport:
    events: dict[uuid.UUID, list[CitizenEvent]] = {c: [] for c in citizen_ids}
    for row in await session.scalars(
        select(CitizenEvent)
        .where(CitizenEvent.citizen_id.in_(citizen_ids))
        .order_by(CitizenEvent.citizen_id, CitizenEvent.seq)
    ):
        events[row.citizen_id].append(row)

    async def ids(column: Any, citizen: Any, *where: Any) -> dict[uuid.UUID, set[str]]:
        found: dict[uuid.UUID, set[str]] = {c: set() for c in citizen_ids}
        rows = await session.execute(
            select(citizen, column).where(citizen.in_(citizen_ids), *where)
        )
        for owner, value in rows:
            found[owner].add(str(value))
        return found

    claims = await ids(Claim.claim_id, Claim.citizen_id)
    revocations = await ids(ClaimRevocation.claim_id, ClaimRevocation.citizen_id)
    grants = await ids(AccessGrant.grant_id, AccessGrant.citizen_id)
    revoked = await ids(
        AccessGrant.grant_id, AccessGrant.citizen_id, AccessGrant.revoked_at.is_not(None)
    )
    report = ChainReport(citizens=len(citizen_ids))
    for citizen_id in citizen_ids:
        rows = events[citizen_id]
        report.events += len(rows)
        report.breaks += _verify_links(citizen_id, rows)
        report.breaks += _cross_check(
            citizen_id,
            rows,
            claims[citizen_id],
            revocations[citizen_id],
            grants[citizen_id],
            revoked[citizen_id],
        )
    return report


async def verify_chains(session: AsyncSession, citizen_id: uuid.UUID | None = None) -> ChainReport:
    """Recompute every citizen's chain (or one's), in batches, reading each row once."""
    if citizen_id is not None:
        return await _verify_batch(session, [citizen_id])
    total = ChainReport()
    last: uuid.UUID | None = None
    while True:
        query = select(Citizen.citizen_id).order_by(Citizen.citizen_id).limit(BATCH)
        if last is not None:
            query = query.where(Citizen.citizen_id > last)
        batch = list(await session.scalars(query))
        if not batch:
            return total
        part = await _verify_batch(session, batch)
        total.citizens += part.citizens
        total.events += part.events
        total.breaks += part.breaks
        last = batch[-1]
        session.expunge_all()  # keep memory flat over a whole database


async def verify_chain(session: AsyncSession, citizen_id: uuid.UUID) -> list[ChainBreak]:
    return (await verify_chains(session, citizen_id)).breaks
