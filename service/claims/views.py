"""Read model of claims: one SQL statement returns claims with issuer, competence and status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, Select, bindparam, case, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.clock import today
from service.models import ApiClient, Claim, ClaimRevocation, Competence, Organisation
from service.models.enums import ClaimStatus
from service.taxonomy.search import CompetenceRef


@dataclass(frozen=True)
class IssuerView:
    id: uuid.UUID
    name: str
    kind: str
    client_id: str  # the organisation's system that wrote the claim


@dataclass(frozen=True)
class ClaimView:
    citizen_id: uuid.UUID
    claim_id: uuid.UUID
    issuer: IssuerView | None  # None: the citizen declared it themselves
    issuer_role: str | None
    competence: CompetenceRef
    proficiency_scale: str | None
    proficiency_level: str | None
    proficiency_rank: int | None
    context: str | None
    assessment_method: str
    learning_context: str
    evidence: list[dict[str, Any]]
    acquired_on: date
    last_used_on: date | None
    valid_until: date | None
    recorded_at: datetime
    external_ref: str
    supersedes_claim_id: uuid.UUID | None
    superseded_by_claim_id: uuid.UUID | None
    revoked_at: datetime | None
    revocation_reason: str | None
    status: ClaimStatus

    @property
    def most_recent_use(self) -> date:
        return self.last_used_on or self.acquired_on

    @property
    def self_declared(self) -> bool:
        return self.issuer is None


def _base_select() -> Select[Any]:
    newer = aliased(Claim, name="newer")
    status = case(
        (ClaimRevocation.claim_id.is_not(None), literal(ClaimStatus.REVOKED.value)),
        (newer.claim_id.is_not(None), literal(ClaimStatus.SUPERSEDED.value)),
        (Claim.valid_until < bindparam("today", type_=Date), literal(ClaimStatus.EXPIRED.value)),
        else_=literal(ClaimStatus.ACTIVE.value),
    )
    return (
        select(
            *Claim.__table__.c,
            Organisation.name.label("org_name"),
            Organisation.kind.label("org_kind"),
            ApiClient.client_id.label("api_client_id"),
            Competence.uri,
            Competence.concept_type,
            Competence.skill_type,
            Competence.reuse_level,
            Competence.preferred_labels,
            Competence.descriptions,
            newer.claim_id.label("superseded_by"),
            ClaimRevocation.revoked_at,
            ClaimRevocation.reason.label("revocation_reason"),
            status.label("status"),
        )
        .outerjoin(Organisation, Organisation.id == Claim.organisation_id)
        .join(Competence, Competence.id == Claim.competence_id)
        .outerjoin(ApiClient, ApiClient.id == Claim.client_id)
        .outerjoin(
            ClaimRevocation,
            (ClaimRevocation.citizen_id == Claim.citizen_id)
            & (ClaimRevocation.claim_id == Claim.claim_id),
        )
        .outerjoin(
            newer,
            (newer.citizen_id == Claim.citizen_id) & (newer.supersedes_claim_id == Claim.claim_id),
        )
    )


# Built once: constructing the joins is costlier than running the query on a small passport.
_CLAIMS = _base_select()


def claims_select(*where: ColumnElement[bool]) -> Select[Any]:
    """All claims matching ``where``; execute with ``{"today": clock.today()}``."""
    return _CLAIMS.where(*where)


def _view(row: Any) -> ClaimView:
    m = row._mapping
    return ClaimView(
        citizen_id=m["citizen_id"],
        claim_id=m["claim_id"],
        issuer=IssuerView(m["organisation_id"], m["org_name"], m["org_kind"], m["api_client_id"])
        if m["organisation_id"] is not None
        else None,
        issuer_role=m["issuer_role"],
        competence=CompetenceRef(
            id=m["competence_id"],
            uri=m["uri"],
            concept_type=m["concept_type"],
            skill_type=m["skill_type"],
            reuse_level=m["reuse_level"],
            preferred_labels=m["preferred_labels"] or {},
            descriptions=m["descriptions"] or {},
        ),
        proficiency_scale=m["proficiency_scale"],
        proficiency_level=m["proficiency_level"],
        proficiency_rank=m["proficiency_rank"],
        context=m["context"],
        assessment_method=m["assessment_method"],
        learning_context=m["learning_context"],
        evidence=list(m["evidence"] or []),
        acquired_on=m["acquired_on"],
        last_used_on=m["last_used_on"],
        valid_until=m["valid_until"],
        recorded_at=m["recorded_at"],
        external_ref=m["external_ref"],
        supersedes_claim_id=m["supersedes_claim_id"],
        superseded_by_claim_id=m["superseded_by"],
        revoked_at=m["revoked_at"],
        revocation_reason=m["revocation_reason"],
        status=ClaimStatus(m["status"]),
    )


async def load_claims(
    session: AsyncSession, *where: ColumnElement[bool], limit: int | None = None
) -> list[ClaimView]:
    statement = claims_select(*where).order_by(Claim.recorded_at, Claim.claim_id)
    if limit is not None:
        statement = statement.limit(limit)
    rows = await session.execute(statement, {"today": today()})
    return [_view(row) for row in rows]


async def load_claim(
    session: AsyncSession, claim_id: uuid.UUID, citizen_id: uuid.UUID | None = None
) -> ClaimView | None:
    """By id alone (an index on claim_id), or by primary key when the citizen is known."""
    where = [Claim.claim_id == claim_id]
    if citizen_id is not None:
        where.append(Claim.citizen_id == citizen_id)
    found = await load_claims(session, *where)
    return found[0] if found else None
