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

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service import canonical
from service.events.outbox import PASSPORT_MARK, SUBSCRIBABLE, Notice, notice_body
from service.events.payloads import (
    claim_payload,
    endorsement_payload,
    goal_payload,
    grant_payload,
    want_payload,
    work_payload,
)
from service.models import (
    AccessGrant,
    CareerGoal,
    Citizen,
    CitizenEvent,
    Claim,
    ClaimEndorsement,
    ClaimRevocation,
    CompetenceWant,
    WorkExperience,
)
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
    built: bool = False,
) -> bytes:
    """``built``: the caller built the payload (of strings, None and integers, as every
    payload builder in service.events.payloads does) rather than read it back from storage,
    which anyone could have altered, so it needs no walk (``canonical.dumps_plain``)."""
    event = {
        "citizenId": str(citizen_id),
        "seq": seq,
        "eventId": str(event_id),
        "type": event_type,
        "occurredAt": occurred_at.astimezone(UTC).isoformat(),
        "payload": dict(payload),
    }
    body = canonical.dumps_plain(event) if built else canonical.dumps(event)
    return hashlib.sha256(prev_hash + body).digest()


_CITIZEN_MARK = PASSPORT_MARK
_HEAD_TEXT = '{"citizenId":"' + _CITIZEN_MARK
_SEQ_MARK = ',"seq":0,"type":'


def hash_parts(
    *, event_id: uuid.UUID, event_type: str, occurred_at: datetime, payload: Mapping[str, Any]
) -> tuple[str, str]:
    """The event's canonical JSON around what only the database knows when it appends (the
    citizen of a new record, the next seq): it is '{"citizenId":"' + citizen + middle + seq +
    tail, byte for byte what ``event_hash`` hashes. RFC 8785 sorts keys, so citizenId comes
    first and seq just before type."""
    body = canonical.dumps(
        {
            "citizenId": _CITIZEN_MARK,
            "seq": 0,
            "eventId": str(event_id),
            "type": event_type,
            "occurredAt": occurred_at.astimezone(UTC).isoformat(),
            "payload": dict(payload),
        }
    ).decode()
    rest = body[len(_HEAD_TEXT) :]
    cut = rest.rfind(_SEQ_MARK)  # the top-level one: nothing after it but the type
    return rest[:cut] + ',"seq":', rest[cut + len(',"seq":0') :]


def new_event(
    event_type: EventType,
    payload: Mapping[str, Any],
    occurred_at: datetime,
    notice: Notice | None = None,
) -> dict[str, Any]:
    """An event as ``passport_append_event`` takes it (see migration 0012_write_path)."""
    event_id = uuid.uuid4()
    middle, tail = hash_parts(
        event_id=event_id, event_type=event_type.value, occurred_at=occurred_at, payload=payload
    )
    event: dict[str, Any] = {
        "id": str(event_id),
        "type": event_type.value,
        "at": occurred_at.isoformat(),
        "payload": dict(payload),
        "middle": middle,
        "tail": tail,
    }
    if notice is not None and event_type.value in SUBSCRIBABLE:
        head, body_tail = notice_body(event_type.value, occurred_at, notice)
        event.update(audience=str(notice.audience), body_head=head)
        if body_tail is not None:
            event["body_tail"] = body_tail
    return event


# Built once: every write appends. The chain's rule (head, seq, link hash, deliveries) is in
# the database function, so every writer appends the same way in one round trip.
_APPEND = text("SELECT passport_append_event(:citizen_id, CAST(:event AS jsonb))")


async def append_event(
    session: AsyncSession,
    citizen_id: uuid.UUID,
    event_type: EventType,
    payload: Mapping[str, Any],
    occurred_at: datetime,
    notice: Notice | None = None,
) -> None:
    """Caller must hold the citizen lock (``lock_citizen``) so ``seq`` has no gaps or forks.

    With a ``notice``, the organisation it names hears of the event through its webhook
    subscriptions; the deliveries are written in this same statement (the outbox).
    """
    event = new_event(event_type, payload, occurred_at, notice)
    await session.execute(
        _APPEND, {"citizen_id": citizen_id, "event": orjson.dumps(event).decode()}
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


# Which events a row must have: a claim its issuing (or declaring) event with the same facts,
# a revocation its revoking (or withdrawing) event, a grant its creation (same facts) and,
# exactly when revoked, its revocation; an endorsement likewise, and its last hiding or
# showing must agree with whether it is hidden.
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


@dataclass
class _Rows:
    """One citizen's rows that events announce, as the tables hold them now."""

    claims: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> event payload
    revocations: set[str] = field(default_factory=set)
    grants: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> event payload
    revoked_grants: set[str] = field(default_factory=set)
    work: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> event payload
    withdrawn_work: set[str] = field(default_factory=set)
    wants: dict[str, dict[str, Any]] = field(default_factory=dict)  # competence -> the latest
    goals: dict[str, dict[str, Any]] = field(default_factory=dict)  # occupation -> the latest
    endorsements: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> payload
    revoked_endorsements: set[str] = field(default_factory=set)
    hidden_endorsements: set[str] = field(default_factory=set)


def _matches(
    kind: str, rows: Mapping[str, dict[str, Any]], events: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    found = [f"{kind} {key} has no event" for key in sorted(rows.keys() - events.keys())]
    found += [
        f"event of {kind} {key} but no such {kind}" for key in sorted(events.keys() - rows.keys())
    ]
    found += [
        f"{kind} {key} differs from its event"
        for key in sorted(rows.keys() & events.keys())
        if rows[key] != dict(events[key])
    ]
    return found


def _both_ways(kind: str, rows: set[str], events: set[str]) -> list[str]:
    return [f"{kind} of {key} has no event" for key in sorted(rows - events)] + [
        f"event of {kind} of {key} but none recorded" for key in sorted(events - rows)
    ]


def _cross_check(
    citizen_id: uuid.UUID, events: Sequence[CitizenEvent], rows: _Rows
) -> list[ChainBreak]:
    """Rows and events must tell the same story: this catches deleted events (a chain alone
    cannot notice its last links missing), edited rows, and rows written behind the service's
    back, which have no event."""

    def payloads(types: frozenset[str], key: str) -> dict[str, Mapping[str, Any]]:
        return {str(e.payload.get(key)): e.payload for e in events if e.event_type in types}

    def ids(event_type: EventType, key: str) -> set[str]:
        return set(payloads(frozenset({event_type.value}), key))

    problems = _matches("claim", rows.claims, payloads(_CLAIM_EVENTS, "claimId"))
    problems += _both_ways(
        "revocation", rows.revocations, set(payloads(_REVOCATION_EVENTS, "claimId"))
    )
    problems += _matches(
        "grant", rows.grants, payloads(frozenset({EventType.GRANT_CREATED.value}), "grantId")
    )
    problems += _both_ways(
        "revocation of grant",
        rows.revoked_grants,
        ids(EventType.GRANT_REVOKED, "grantId"),
    )
    problems += _matches(
        "work experience",
        rows.work,
        payloads(frozenset({EventType.WORK_RECORDED.value}), "experienceId"),
    )
    problems += _both_ways(
        "withdrawal of work experience",
        rows.withdrawn_work,
        ids(EventType.WORK_WITHDRAWN, "experienceId"),
    )
    # A stance or a goal changes in place: its row must say what its latest event says.
    problems += _matches(
        "want", rows.wants, payloads(frozenset({EventType.WANT_SET.value}), "competenceId")
    )
    problems += _matches(
        "career goal", rows.goals, payloads(frozenset({EventType.GOAL_SET.value}), "occupationId")
    )
    problems += _matches(
        "endorsement",
        rows.endorsements,
        payloads(frozenset({EventType.ENDORSEMENT_CREATED.value}), "endorsementId"),
    )
    problems += _both_ways(
        "revocation of endorsement",
        rows.revoked_endorsements,
        ids(EventType.ENDORSEMENT_REVOKED, "endorsementId"),
    )
    problems += _both_ways("hiding of endorsement", rows.hidden_endorsements, _hidden(events))
    return [ChainBreak(citizen_id, None, problem) for problem in problems]


def _hidden(events: Sequence[CitizenEvent]) -> set[str]:
    """The endorsements whose last hide-or-show event hid them."""
    last: dict[str, str] = {}
    for event in events:
        if event.event_type in (EventType.ENDORSEMENT_HIDDEN, EventType.ENDORSEMENT_SHOWN):
            last[str(event.payload.get("endorsementId"))] = event.event_type
    return {key for key, kind in last.items() if kind == EventType.ENDORSEMENT_HIDDEN}


async def _rows(session: AsyncSession, citizen_ids: list[uuid.UUID]) -> dict[uuid.UUID, _Rows]:
    found = {c: _Rows() for c in citizen_ids}
    for claim in await session.execute(
        select(Claim.__table__).where(Claim.citizen_id.in_(citizen_ids))
    ):
        row = claim._mapping
        found[row["citizen_id"]].claims[str(row["claim_id"])] = claim_payload(dict(row))
    for owner, claim_id in await session.execute(
        select(ClaimRevocation.citizen_id, ClaimRevocation.claim_id).where(
            ClaimRevocation.citizen_id.in_(citizen_ids)
        )
    ):
        found[owner].revocations.add(str(claim_id))
    for grant in await session.scalars(
        select(AccessGrant).where(AccessGrant.citizen_id.in_(citizen_ids))
    ):
        mine = found[grant.citizen_id]
        mine.grants[str(grant.grant_id)] = grant_payload(
            grant_id=grant.grant_id,
            grantee_kind=grant.grantee_kind,
            organisation_id=grant.organisation_id,
            competence_ids=grant.competence_ids,
            expires_at=grant.expires_at,
            include_wants=grant.include_wants,
            include_work_history=grant.include_work_history,
            team_check_id=grant.team_check_id,
            disclosure=grant.disclosure,
        )
        if grant.revoked_at is not None:
            mine.revoked_grants.add(str(grant.grant_id))
    for work in await session.execute(
        select(WorkExperience.__table__).where(WorkExperience.citizen_id.in_(citizen_ids))
    ):
        row = work._mapping
        mine = found[row["citizen_id"]]
        mine.work[str(row["id"])] = work_payload(dict(row))
        if row["withdrawn_at"] is not None:
            mine.withdrawn_work.add(str(row["id"]))
    for owner, competence_id, stance in await session.execute(
        select(
            CompetenceWant.citizen_id, CompetenceWant.competence_id, CompetenceWant.stance
        ).where(CompetenceWant.citizen_id.in_(citizen_ids))
    ):
        found[owner].wants[str(competence_id)] = want_payload(competence_id, stance)
    for owner, occupation_id, active, horizon in await session.execute(
        select(
            CareerGoal.citizen_id,
            CareerGoal.occupation_id,
            CareerGoal.active,
            CareerGoal.horizon_year,
        ).where(CareerGoal.citizen_id.in_(citizen_ids))
    ):
        found[owner].goals[str(occupation_id)] = goal_payload(occupation_id, active, horizon)
    for endorsement in await session.execute(
        select(ClaimEndorsement.__table__).where(ClaimEndorsement.citizen_id.in_(citizen_ids))
    ):
        facts = dict(endorsement._mapping)
        key = str(facts["endorsement_id"])
        mine = found[facts["citizen_id"]]
        mine.endorsements[key] = endorsement_payload(facts)
        if facts["revoked_at"] is not None:
            mine.revoked_endorsements.add(key)
        if facts["hidden_at"] is not None:
            mine.hidden_endorsements.add(key)
    return found


async def _verify_batch(session: AsyncSession, citizen_ids: list[uuid.UUID]) -> ChainReport:
    events: dict[uuid.UUID, list[CitizenEvent]] = {c: [] for c in citizen_ids}
    for row in await session.scalars(
        select(CitizenEvent)
        .where(CitizenEvent.citizen_id.in_(citizen_ids))
        .order_by(CitizenEvent.citizen_id, CitizenEvent.seq)
    ):
        events[row.citizen_id].append(row)
    rows = await _rows(session, citizen_ids)
    report = ChainReport(citizens=len(citizen_ids))
    for citizen_id in citizen_ids:
        report.events += len(events[citizen_id])
        report.breaks += _verify_links(citizen_id, events[citizen_id])
        report.breaks += _cross_check(citizen_id, events[citizen_id], rows[citizen_id])
    return report


async def verify_chains(engine: AsyncEngine, citizen_id: uuid.UUID | None = None) -> ChainReport:
    """Recompute every citizen's chain (or one's), in batches, reading each row once.

    One REPEATABLE READ, READ ONLY transaction: events and rows are compared as of one moment,
    so claims written meanwhile are not mistaken for rows without events.
    """
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        async with AsyncSession(bind=conn) as session:
            if citizen_id is not None:
                return await _verify_batch(session, [citizen_id])
            return await _verify_all(session)


async def _verify_all(session: AsyncSession) -> ChainReport:
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


async def verify_chain(engine: AsyncEngine, citizen_id: uuid.UUID) -> list[ChainBreak]:
    return (await verify_chains(engine, citizen_id)).breaks
