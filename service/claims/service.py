"""Issuing, revoking and superseding claims.

Claims are insert-only: a revocation is a row of its own and a supersession is the newer claim
pointing at the older one, so no claim row is ever updated. Every change appends to the citizen's
hash-chained event log in the same transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import insert, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import canonical, clock
from service.auth.policy import require_issuer
from service.auth.principal import Principal
from service.citizens.service import lock_citizen, own_citizen_id
from service.claims.rules import (
    ClaimContent,
    CompetenceFacts,
    IssueClaimInput,
    RevokeClaimInput,
    SelfDeclarationInput,
)
from service.claims.views import ClaimView, fetch_claim, load_claim, load_claims
from service.db.raw import driver
from service.errors import CitizenGone, Conflict, InvalidState, NotFound, ValidationFailed
from service.events.chain import append_event, new_event
from service.events.outbox import PASSPORT_MARK, Notice, claim_notice
from service.events.payloads import claim_payload
from service.identity.numbers import INSZ_KEY_VERSION, insz_hash
from service.models import Claim, ClaimRevocation
from service.models.enums import AssessmentMethod, ClaimStatus, EventType
from service.pagination import decode_cursor, encode_cursor
from service.validation import is_plain_text, validate


@dataclass(frozen=True)
class IssueOutcome:
    claim: ClaimView
    created: bool  # False when an idempotent retry returned the claim recorded earlier


@dataclass(frozen=True)
class Recorded:
    """An organisation's claim as its write answers: the claim read back only when the caller
    needs more than its id (an answer of ``claim { id }`` skips a statement and its view)."""

    claim_id: uuid.UUID
    created: bool  # False when an idempotent retry returned the claim recorded earlier
    claim: ClaimView | None


def digest_parts(content: ClaimContent, supersedes: uuid.UUID | None) -> tuple[str, str]:
    """The canonical JSON a request's digest is taken of, around its citizen's id: the
    database puts the id in between when it has found or made the citizen
    (``passport_issue_claim_or_refuse``, migrations 0014_write_functions and 0016)."""
    body = content.model_dump(mode="json", exclude={"insz"})
    body["citizen"] = PASSPORT_MARK
    body["supersedes"] = str(supersedes) if supersedes else None
    key = '"citizen":"'
    head, _, tail = canonical.dumps(body).decode().partition(key + PASSPORT_MARK)
    return head + key, tail  # keys are unique and sorted, string values escaped


def claim_digest(
    content: ClaimContent, citizen_id: uuid.UUID, supersedes: uuid.UUID | None
) -> bytes:
    """Fingerprint of a request: tells a faithful retry from another claim under the same ref."""
    head, tail = digest_parts(content, supersedes)
    return hashlib.sha256(f"{head}{citizen_id}{tail}".encode()).digest()


# Sent to asyncpg as it is, prepared once per connection (service/db/raw.py).
_COMPETENCE = "SELECT id, concept_type FROM competences WHERE uri = $1"


async def _competence_id(session: AsyncSession, uri: str, *, alone: bool = False) -> int:
    if is_plain_text(uri):
        found = await (await driver(session, alone=alone)).fetchrow(_COMPETENCE, uri)
    else:
        found = None
    if found is None or found["concept_type"] != "skill":
        raise ValidationFailed.one(
            "input.competenceUri", "not an ESCO skill or knowledge concept", "unknown_competence"
        )
    return int(found["id"])


_INSERT_CLAIM = insert(Claim.metadata.tables[Claim.__tablename__])  # Core: no ORM bookkeeping


def retried_claim(earlier: uuid.UUID, earlier_digest: bytes, digest: bytes) -> uuid.UUID:
    """A request under a ref already taken is a faithful retry, answered with the claim
    recorded then, only if it says the same; otherwise it is a conflict."""
    if bytes(earlier_digest) != digest:
        raise Conflict("externalRef was already used for a different claim", str(earlier))
    return earlier


def claim_row(
    content: CompetenceFacts,
    *,
    client_pk: uuid.UUID | None,
    organisation_id: uuid.UUID | None,
    citizen_id: uuid.UUID,
    claim_id: uuid.UUID,
    competence_id: int,
    recorded_at: datetime,
    supersedes: uuid.UUID | None,
) -> dict[str, Any]:
    """The row for an organisation's claim, or (``content`` not a ClaimContent) for the
    citizen's own declaration, whose identity for retries is the digest of what it says."""
    proficiency = content.proficiency
    claim = content if isinstance(content, ClaimContent) else None
    return {
        "citizen_id": citizen_id,
        "claim_id": claim_id,
        "organisation_id": organisation_id,
        "client_id": client_pk,
        "issuer_role": claim.issuer_role if claim else None,
        "competence_id": competence_id,
        "proficiency_scale": proficiency.scale.value if proficiency else None,
        "proficiency_level": proficiency.level if proficiency else None,
        "proficiency_rank": proficiency.rank if proficiency else None,
        "context": content.context,
        "assessment_method": claim.assessment_method.value
        if claim
        else AssessmentMethod.SELF_ASSESSMENT.value,
        "learning_context": content.learning_context.value,
        "evidence": [item.model_dump(mode="json", exclude_none=True) for item in content.evidence],
        "acquired_on": content.acquired_on,
        "last_used_on": content.last_used_on,
        "valid_until": claim.valid_until if claim else None,
        "recorded_at": recorded_at,
        "external_ref": claim.external_ref if claim else self_declaration_ref(content),
        "supersedes_claim_id": supersedes,
    }


def self_declaration_ref(content: CompetenceFacts) -> str:
    """A declaration's identity for retries: "self:" and the citizen app's idempotency key, if
    it sent one, then ":" and the SHA-256 of what it says."""
    body = content.model_dump(mode="json", exclude={"idempotency_key"})
    digest = hashlib.sha256(canonical.dumps(body)).hexdigest()
    key = getattr(content, "idempotency_key", None)
    return f"self:{key}:{digest}" if key else f"self:{digest}"


# The write in one statement, sent to asyncpg as it is (prepared once per connection). What
# lives in the database, and why, is said in migrations 0012_write_path and
# 0014_write_functions: the rules that need the rows (the citizen found or made, the chain
# head, a taken key, a claim already superseded). The rules that need no rows stay here and
# arrive as arguments: validation, the row, the digest's JSON, the events and their notices.
_ISSUE = """
    SELECT outcome, claim_id, citizen_id
      FROM passport_issue_claim_or_refuse($1, $2, $3, $4::jsonb, $5, $6, $7::jsonb)
"""


# The SQLSTATE of passport_issue_claim_or_refuse's refusals (migration 0016_issue_refusals): the
# outcome is the message, the claim it concerns the detail. Raised, so the statement undoes
# what it wrote before refusing, in a transaction or alone.
ISSUE_REFUSED = "PP001"


def _refusal(outcome: str, claim_id: str | None) -> Exception:
    if outcome == "gone":
        return CitizenGone()
    if outcome == "conflict":
        return Conflict("externalRef was already used for a different claim", claim_id or None)
    if outcome == "superseded":
        return InvalidState("this claim was already superseded")
    if outcome == "revoked":
        return InvalidState("a revoked claim cannot be superseded")
    return AssertionError(
        f"passport_issue_claim_or_refuse refused with an unknown outcome: {outcome}"
    )


@dataclass(frozen=True)
class _Citizen:
    citizen_id: uuid.UUID  # with insz_hash: the id for a citizen the database has no record of
    insz_hash: bytes | None = None  # the citizen by identity, found or made by the database


async def _record_claim(
    session: AsyncSession,
    principal: Principal,
    organisation_id: uuid.UUID,
    content: ClaimContent,
    citizen: _Citizen,
    competence_id: int,
    supersedes: uuid.UUID | None,
    read_back: bool,
    alone: bool = False,
) -> Recorded:
    """The claim, its idempotency key and its events, written by one database call; the
    claim it answers with read by a second, if ``read_back``. ``alone``: the call is the
    caller's whole unit of work (``driver``). A refusal is raised by PostgreSQL and ends the
    transaction the call runs in: a caller that goes on after one needs a savepoint."""
    claim_id = uuid.uuid4()
    recorded_at = clock.now()
    row = claim_row(
        content,
        client_pk=principal.client_pk,
        organisation_id=organisation_id,
        citizen_id=citizen.citizen_id,
        claim_id=claim_id,
        competence_id=competence_id,
        recorded_at=recorded_at,
        supersedes=supersedes,
    )
    # The events name the citizen by PASSPORT_MARK; the database puts the real id in.
    events = [
        new_event(
            EventType.CLAIM_ISSUED,
            claim_payload(row),
            recorded_at,
            claim_notice(
                organisation_id,
                citizen.citizen_id,
                claim_id,
                content.external_ref,
                content.competence_uri,
                supersedes=str(supersedes) if supersedes else None,
            ),
        )
    ]
    if supersedes is not None:
        events.append(
            new_event(
                EventType.CLAIM_SUPERSEDED,
                {"claimId": str(supersedes), "supersededBy": str(claim_id)},
                recorded_at,
                Notice(
                    organisation_id,
                    {
                        "claimId": str(supersedes),
                        "supersededBy": str(claim_id),
                        "passportId": str(citizen.citizen_id),
                    },
                ),
            )
        )
    head, tail = digest_parts(content, supersedes)
    conn = await driver(session, alone=alone)
    try:
        outcome, found, citizen_id = await conn.fetchrow(
            _ISSUE,
            citizen.insz_hash,
            INSZ_KEY_VERSION,
            citizen.citizen_id,
            # str: the client's id comes from asyncpg as its own UUID type
            orjson.dumps(row, default=str).decode(),
            head,
            tail,
            orjson.dumps(events).decode(),
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate != ISSUE_REFUSED:
            raise
        raise _refusal(exc.args[0] if exc.args else "", getattr(exc, "detail", None)) from None
    claim = await fetch_claim(conn, found, citizen_id) if read_back else None
    assert claim is not None or not read_back
    return Recorded(found, outcome == "created", claim)


async def issue_claim(
    session: AsyncSession,
    principal: Principal,
    data: Mapping[str, Any],
    hmac_key: bytes,
    *,
    read_back: bool = True,
    alone: bool = False,
) -> Recorded:
    """``alone``: the claim is the caller's whole unit of work, so its statements need no
    transaction around them (``passport_issue_claim_or_refuse`` is atomic by itself)."""
    organisation_id = require_issuer(principal)
    spec = validate(IssueClaimInput, data)
    competence_id = await _competence_id(session, spec.competence_uri, alone=alone)
    citizen = _Citizen(uuid.uuid4(), insz_hash(spec.insz, hmac_key))
    return await _record_claim(
        session, principal, organisation_id, spec, citizen, competence_id, None, read_back, alone
    )


async def issued_claim(
    session: AsyncSession, principal: Principal, claim_id: uuid.UUID
) -> ClaimView:
    """A claim of the caller's organisation; anyone else's is reported as not found."""
    organisation_id = require_issuer(principal)
    claim = await fetch_claim(await driver(session), claim_id)
    if claim is None or claim.issuer is None or claim.issuer.id != organisation_id:
        raise NotFound("no claim with this id was issued by your organisation")
    return claim


async def supersede_claim(
    session: AsyncSession,
    principal: Principal,
    claim_id: uuid.UUID,
    data: Mapping[str, Any],
    *,
    read_back: bool = True,
) -> Recorded:
    old = await issued_claim(session, principal, claim_id)
    content = validate(ClaimContent, {"competence_uri": old.competence.uri, **data})
    if content.competence_uri != old.competence.uri:
        raise ValidationFailed.one(
            "input.competenceUri",
            "a newer claim must be about the same competence; issue a new claim instead",
            "competence_mismatch",
        )

    return await _record_claim(
        session,
        principal,
        require_issuer(principal),
        content,
        _Citizen(old.citizen_id),
        old.competence.id,
        claim_id,
        read_back,
    )


_REVOKE = "SELECT passport_revoke_claim($1, $2, $3, $4, $5, $6::jsonb)"


async def revoke_claim(
    session: AsyncSession, principal: Principal, claim_id: uuid.UUID, data: Mapping[str, Any]
) -> ClaimView:
    """Idempotent: revoking an already revoked claim returns it unchanged. The revocation and
    its event are one database call (``passport_revoke_claim``, migration 0013), which holds
    the citizen lock for the checks that need the rows: revoked before, superseded."""
    claim = await issued_claim(session, principal, claim_id)
    spec = validate(RevokeClaimInput, data)
    organisation_id = require_issuer(principal)
    revoked_at = clock.now()
    event = new_event(
        EventType.CLAIM_REVOKED,
        {"claimId": str(claim.claim_id), "organisationId": str(organisation_id)},
        revoked_at,
        claim_notice(
            organisation_id,
            claim.citizen_id,
            claim.claim_id,
            claim.external_ref,
            claim.competence.uri,
        ),
    )
    conn = await driver(session)
    outcome = await conn.fetchval(
        _REVOKE,
        claim.citizen_id,
        claim.claim_id,
        spec.reason,
        revoked_at,
        principal.client_pk,
        orjson.dumps(event).decode(),
    )
    if outcome == "gone":
        raise CitizenGone
    if outcome == "superseded":
        raise InvalidState("a superseded claim cannot be revoked; revoke the newer claim")
    current = await fetch_claim(conn, claim_id, claim.citizen_id)
    assert current is not None
    return current


async def declare_self(
    session: AsyncSession, principal: Principal, hmac_key: bytes, data: Mapping[str, Any]
) -> IssueOutcome:
    """The citizen states a competence about themselves.

    One declaration per competence is current. Declaring the same again returns it (a retry
    never duplicates); declaring something else about that competence replaces it, the old one
    kept as superseded history, as with an organisation's claims. With an idempotency key, a
    retry returns what that request made even after later changes, and the key reused for
    another declaration is a conflict.
    """
    spec = validate(SelfDeclarationInput, data)
    competence_id = await _competence_id(session, spec.competence_uri)
    citizen_id = await own_citizen_id(session, principal, hmac_key, create=True)
    assert citizen_id is not None
    await lock_citizen(session, citizen_id)
    ref = self_declaration_ref(spec)
    if spec.idempotency_key:
        made = await load_claims(
            session,
            Claim.citizen_id == citizen_id,
            Claim.organisation_id.is_(None),
            Claim.external_ref.startswith(f"self:{spec.idempotency_key}:", autoescape=True),
        )
        if made and made[0].external_ref != ref:
            raise Conflict(
                "idempotencyKey was already used for a different declaration",
                str(made[0].claim_id),
            )
        if made:
            return IssueOutcome(made[0], created=False)
    current = [
        claim
        for claim in await load_claims(
            session,
            Claim.citizen_id == citizen_id,
            Claim.competence_id == competence_id,
            Claim.organisation_id.is_(None),
        )
        if claim.status is ClaimStatus.ACTIVE
    ]
    if current and current[-1].external_ref.rsplit(":", 1)[-1] == ref.rsplit(":", 1)[-1]:
        return IssueOutcome(current[-1], created=False)
    supersedes = current[-1].claim_id if current else None
    recorded_at = clock.now()
    row = claim_row(
        spec,
        client_pk=None,
        organisation_id=None,
        citizen_id=citizen_id,
        claim_id=uuid.uuid4(),
        competence_id=competence_id,
        recorded_at=recorded_at,
        supersedes=supersedes,
    )
    await session.execute(_INSERT_CLAIM, row)
    await append_event(
        session, citizen_id, EventType.CLAIM_SELF_DECLARED, claim_payload(row), recorded_at
    )
    claim = await load_claim(session, row["claim_id"], citizen_id)
    assert claim is not None
    return IssueOutcome(claim, created=True)


async def withdraw_self_declaration(
    session: AsyncSession, principal: Principal, hmac_key: bytes, claim_id: uuid.UUID
) -> ClaimView:
    """Idempotent. Only the citizen's own declarations; an organisation's claim is theirs."""
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    claim = await load_claim(session, claim_id, citizen_id) if citizen_id else None
    if claim is None or not claim.self_declared:
        raise NotFound("no self-declared competence with this id")
    assert citizen_id is not None
    await lock_citizen(session, citizen_id)
    claim = await load_claim(session, claim_id, citizen_id)  # as it is now, under the lock
    if claim is not None and claim.superseded_by_claim_id is not None:
        raise InvalidState("a newer declaration replaced this one; withdraw that one")
    withdrawn_at = clock.now()
    inserted = await session.scalar(
        pg_insert(ClaimRevocation)
        .values(
            citizen_id=citizen_id,
            claim_id=claim_id,
            reason="withdrawn by the citizen",
            revoked_at=withdrawn_at,
            client_id=None,
        )
        .on_conflict_do_nothing(index_elements=["citizen_id", "claim_id"])
        .returning(ClaimRevocation.claim_id)
    )
    current = await load_claim(session, claim_id, citizen_id)
    assert current is not None
    if inserted is not None:
        await append_event(
            session,
            citizen_id,
            EventType.CLAIM_WITHDRAWN,
            {"claimId": str(claim_id)},
            withdrawn_at,
        )
    return current


@dataclass(frozen=True)
class ClaimPage:
    items: list[ClaimView]
    has_next_page: bool
    end_cursor: str | None


def claim_cursor(claim: ClaimView) -> str:
    return encode_cursor(claim.recorded_at, claim.claim_id)


async def issued_claims(
    session: AsyncSession, principal: Principal, *, first: int, after: str | None
) -> ClaimPage:
    """What the caller's organisation issued, oldest first, with keyset pagination."""
    organisation_id = require_issuer(principal)
    conditions = [Claim.organisation_id == organisation_id]
    if after:
        stamp, last_id = decode_cursor(after)
        conditions.append(tuple_(Claim.recorded_at, Claim.claim_id) > tuple_(stamp, last_id))
    found = await load_claims(session, *conditions, limit=first + 1)
    page = found[:first]
    return ClaimPage(
        items=page,
        has_next_page=len(found) > first,
        end_cursor=claim_cursor(page[-1]) if page else None,
    )
