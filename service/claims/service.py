"""Issuing, revoking and superseding claims.

Claims are insert-only: a revocation is a row of its own and a supersession is the newer claim
pointing at the older one, so no claim row is ever updated. Every change appends to the citizen's
hash-chained event log in the same transaction.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from sqlalchemy import insert, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.policy import require_issuer
from service.auth.principal import Principal
from service.citizens.service import get_or_create_citizen, lock_citizen
from service.claims.rules import ClaimContent, IssueClaimInput, RevokeClaimInput
from service.claims.views import ClaimView, load_claim, load_claims
from service.errors import Conflict, InvalidState, NotFound, ValidationFailed
from service.events.chain import append_event
from service.models import Claim, ClaimRef, ClaimRevocation
from service.models.enums import ClaimStatus, EventType
from service.taxonomy.search import competences_by_uri
from service.validation import validate


@dataclass(frozen=True)
class IssueOutcome:
    claim: ClaimView
    created: bool  # False when an idempotent retry returned the claim recorded earlier


def _digest(content: ClaimContent, citizen_id: uuid.UUID, supersedes: uuid.UUID | None) -> bytes:
    """Fingerprint of a request: tells a faithful retry from another claim under the same ref."""
    body = content.model_dump(mode="json", exclude={"insz"})
    body["citizen"] = str(citizen_id)
    body["supersedes"] = str(supersedes) if supersedes else None
    return hashlib.sha256(rfc8785.dumps(body)).digest()


async def _competence_id(session: AsyncSession, uri: str) -> int:
    found = (await competences_by_uri(session, [uri])).get(uri)
    if found is None or found.concept_type != "skill":
        raise ValidationFailed.one(
            "input.competenceUri", "not an ESCO skill or knowledge concept", "unknown_competence"
        )
    return found.id


async def _reserve_ref(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    external_ref: str,
    citizen_id: uuid.UUID,
    claim_id: uuid.UUID,
    digest: bytes,
) -> uuid.UUID | None:
    """Claim the idempotency key; on a retry, return the claim recorded under it.

    Concurrent requests with one key serialise on the primary key: the loser waits for the
    winner's commit and then sees its row.
    """
    reserved = await session.scalar(
        pg_insert(ClaimRef)
        .values(
            organisation_id=organisation_id,
            external_ref=external_ref,
            citizen_id=citizen_id,
            claim_id=claim_id,
            payload_digest=digest,
        )
        .on_conflict_do_nothing(index_elements=["organisation_id", "external_ref"])
        .returning(ClaimRef.claim_id)
    )
    if reserved is not None:
        return None
    existing = (
        await session.execute(
            select(ClaimRef.claim_id, ClaimRef.payload_digest).where(
                ClaimRef.organisation_id == organisation_id, ClaimRef.external_ref == external_ref
            )
        )
    ).one()
    if existing.payload_digest != digest:
        raise Conflict("externalRef was already used for a different claim", str(existing.claim_id))
    return existing.claim_id


def _claim_row(
    content: ClaimContent,
    *,
    principal: Principal,
    organisation_id: uuid.UUID,
    citizen_id: uuid.UUID,
    claim_id: uuid.UUID,
    competence_id: int,
    recorded_at: datetime,
    supersedes: uuid.UUID | None,
) -> dict[str, Any]:
    proficiency = content.proficiency
    return {
        "citizen_id": citizen_id,
        "claim_id": claim_id,
        "organisation_id": organisation_id,
        "client_id": principal.client_pk,
        "issuer_role": content.issuer_role,
        "competence_id": competence_id,
        "proficiency_scale": proficiency.scale.value if proficiency else None,
        "proficiency_level": proficiency.level if proficiency else None,
        "proficiency_rank": proficiency.rank if proficiency else None,
        "context": content.context,
        "assessment_method": content.assessment_method.value,
        "learning_context": content.learning_context.value,
        "evidence": [item.model_dump(mode="json", exclude_none=True) for item in content.evidence],
        "acquired_on": content.acquired_on,
        "last_used_on": content.last_used_on,
        "valid_until": content.valid_until,
        "recorded_at": recorded_at,
        "external_ref": content.external_ref,
        "supersedes_claim_id": supersedes,
    }


def _event_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the log keeps of a claim: references and facts, no free text."""
    return {
        "claimId": str(row["claim_id"]),
        "organisationId": str(row["organisation_id"]),
        "competenceId": row["competence_id"],
        "assessmentMethod": row["assessment_method"],
        "learningContext": row["learning_context"],
        "proficiency": row["proficiency_level"],
        "acquiredOn": row["acquired_on"].isoformat(),
        "lastUsedOn": row["last_used_on"].isoformat() if row["last_used_on"] else None,
        "validUntil": row["valid_until"].isoformat() if row["valid_until"] else None,
        "supersedes": str(row["supersedes_claim_id"]) if row["supersedes_claim_id"] else None,
    }


async def _record_claim(
    session: AsyncSession,
    principal: Principal,
    organisation_id: uuid.UUID,
    content: ClaimContent,
    citizen_id: uuid.UUID,
    competence_id: int,
    supersedes: uuid.UUID | None,
    check_still_valid: Callable[[], Awaitable[None]] | None = None,
) -> IssueOutcome:
    claim_id = uuid.uuid4()
    digest = _digest(content, citizen_id, supersedes)
    await lock_citizen(session, citizen_id)
    earlier = await _reserve_ref(
        session, organisation_id, content.external_ref, citizen_id, claim_id, digest
    )
    if earlier is not None:
        claim = await load_claim(session, earlier)
        assert claim is not None
        return IssueOutcome(claim, created=False)
    if check_still_valid is not None:
        await check_still_valid()
    recorded_at = clock.now()
    row = _claim_row(
        content,
        principal=principal,
        organisation_id=organisation_id,
        citizen_id=citizen_id,
        claim_id=claim_id,
        competence_id=competence_id,
        recorded_at=recorded_at,
        supersedes=supersedes,
    )
    await session.execute(insert(Claim).values(**row))
    await append_event(
        session, citizen_id, EventType.CLAIM_ISSUED, _event_payload(row), recorded_at
    )
    if supersedes is not None:
        await append_event(
            session,
            citizen_id,
            EventType.CLAIM_SUPERSEDED,
            {"claimId": str(supersedes), "supersededBy": str(claim_id)},
            recorded_at,
        )
    claim = await load_claim(session, claim_id, citizen_id)
    assert claim is not None
    return IssueOutcome(claim, created=True)


async def issue_claim(
    session: AsyncSession, principal: Principal, data: Mapping[str, Any], hmac_key: bytes
) -> IssueOutcome:
    organisation_id = require_issuer(principal)
    spec = validate(IssueClaimInput, data)
    competence_id = await _competence_id(session, spec.competence_uri)
    citizen_id = await get_or_create_citizen(session, spec.insz, hmac_key)
    return await _record_claim(
        session, principal, organisation_id, spec, citizen_id, competence_id, None
    )


async def issued_claim(
    session: AsyncSession, principal: Principal, claim_id: uuid.UUID
) -> ClaimView:
    """A claim of the caller's organisation; anyone else's is reported as not found."""
    organisation_id = require_issuer(principal)
    claim = await load_claim(session, claim_id)
    if claim is None or claim.issuer.id != organisation_id:
        raise NotFound("no claim with this id was issued by your organisation")
    return claim


async def supersede_claim(
    session: AsyncSession,
    principal: Principal,
    claim_id: uuid.UUID,
    data: Mapping[str, Any],
) -> IssueOutcome:
    old = await issued_claim(session, principal, claim_id)
    content = validate(ClaimContent, {"competence_uri": old.competence.uri, **data})
    if content.competence_uri != old.competence.uri:
        raise ValidationFailed.one(
            "input.competenceUri",
            "a newer claim must be about the same competence; issue a new claim instead",
            "competence_mismatch",
        )

    async def still_supersedable() -> None:
        # Checked under the citizen lock, after a faithful retry has already been answered.
        current = await load_claim(session, claim_id)
        assert current is not None
        if current.superseded_by_claim_id is not None:
            raise InvalidState("this claim was already superseded")
        if current.status is ClaimStatus.REVOKED:
            raise InvalidState("a revoked claim cannot be superseded")

    return await _record_claim(
        session,
        principal,
        old.issuer.id,
        content,
        old.citizen_id,
        old.competence.id,
        claim_id,
        still_supersedable,
    )


async def revoke_claim(
    session: AsyncSession, principal: Principal, claim_id: uuid.UUID, data: Mapping[str, Any]
) -> ClaimView:
    """Idempotent: revoking an already revoked claim returns it unchanged."""
    claim = await issued_claim(session, principal, claim_id)
    spec = validate(RevokeClaimInput, data)
    await lock_citizen(session, claim.citizen_id)
    revoked_at = clock.now()
    inserted = await session.scalar(
        pg_insert(ClaimRevocation)
        .values(
            citizen_id=claim.citizen_id,
            claim_id=claim.claim_id,
            reason=spec.reason,
            revoked_at=revoked_at,
            client_id=principal.client_pk,
        )
        .on_conflict_do_nothing(index_elements=["citizen_id", "claim_id"])
        .returning(ClaimRevocation.claim_id)
    )
    current = await load_claim(session, claim_id)
    assert current is not None
    if inserted is None:
        return current
    if current.superseded_by_claim_id is not None:
        raise InvalidState("a superseded claim cannot be revoked; revoke the newer claim")
    await append_event(
        session,
        claim.citizen_id,
        EventType.CLAIM_REVOKED,
        {"claimId": str(claim.claim_id), "organisationId": str(claim.issuer.id)},
        revoked_at,
    )
    return current


@dataclass(frozen=True)
class ClaimPage:
    items: list[ClaimView]
    has_next_page: bool
    end_cursor: str | None


def claim_cursor(claim: ClaimView) -> str:
    raw = f"{claim.recorded_at.isoformat()}|{claim.claim_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, claim_id = raw.split("|")
        recorded_at = datetime.fromisoformat(stamp)
        if recorded_at.tzinfo is None or not 2000 <= recorded_at.astimezone(UTC).year <= 9000:
            raise ValueError("not a time this service recorded")
        return recorded_at, uuid.UUID(claim_id)
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise ValidationFailed.one("after", "not a valid cursor", "invalid_cursor") from exc


async def issued_claims(
    session: AsyncSession, principal: Principal, *, first: int, after: str | None
) -> ClaimPage:
    """What the caller's organisation issued, oldest first, with keyset pagination."""
    organisation_id = require_issuer(principal)
    conditions = [Claim.organisation_id == organisation_id]
    if after:
        stamp, last_id = _decode_cursor(after)
        conditions.append(tuple_(Claim.recorded_at, Claim.claim_id) > tuple_(stamp, last_id))
    found = await load_claims(session, *conditions, limit=first + 1)
    page = found[:first]
    return ClaimPage(
        items=page,
        has_next_page=len(found) > first,
        end_cursor=claim_cursor(page[-1]) if page else None,
    )
