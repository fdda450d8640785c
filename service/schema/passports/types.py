"""The passport as GraphQL types: competences aggregated, every claim with its provenance."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from service.claims.views import ClaimView
from service.models.enums import AccessBasis as DomainAccessBasis
from service.passports.service import Passport as PassportView
from service.passports.service import PassportCompetence as PassportCompetenceView
from service.schema.claims.types import (
    Claim,
    Evidence,
    Proficiency,
    claim_type,
    evidence_type,
    proficiency_type,
)
from service.schema.common import by_value
from service.schema.enums import (
    AccessBasis,
    ClaimStatus,
    LearningContext,
    OrganisationKind,
    SkillType,
)
from service.schema.errors import NotFoundType, ValidationFailedType
from service.schema.taxonomy.types import Competence, competence_type


@strawberry.input
class CitizenRef:
    """Name the citizen by national number (INSZ) or by the passport's internal id."""

    insz: str | None = None
    id: strawberry.ID | None = None


@strawberry.input
class PassportFilter:
    statuses: list[ClaimStatus] | None = None
    skill_types: list[SkillType] | None = None
    issuer_kinds: list[OrganisationKind] | None = None
    learning_contexts: list[LearningContext] | None = None
    used_since: dt.date | None = strawberry.field(
        default=None, description="Only competences used (or acquired) on or after this date"
    )


@strawberry.type
class VoucherCount:
    organisation_kind: OrganisationKind
    organisations: int


@strawberry.type(description="One competence, with everything the claims about it say together")
class PassportCompetence:
    competence: Competence
    status: ClaimStatus = strawberry.field(description="ACTIVE if any current claim vouches for it")
    highest_level: Proficiency | None
    first_acquired_on: dt.date
    last_used_on: dt.date = strawberry.field(description="Most recent use, or acquisition")
    distinct_organisations: int = strawberry.field(description="Organisations vouching now")
    vouchers: list[VoucherCount]
    claims: list[Claim]
    endorsements: int = strawberry.field(
        description="Endorsements in force of its current claims, counted apart from vouching"
    )
    endorsing_organisations: int = strawberry.field(
        description="Distinct organisations among those endorsements"
    )


@strawberry.type(
    description="A competence the citizen declared themselves: shown apart, never verified"
)
class SelfDeclaredCompetence:
    id: strawberry.ID
    competence: Competence
    proficiency: Proficiency | None
    context: str | None
    learning_context: LearningContext
    evidence: list[Evidence]
    acquired_on: dt.date
    last_used_on: dt.date | None
    declared_at: dt.datetime


@strawberry.type
class Passport:
    citizen_id: strawberry.ID | None = strawberry.field(
        description="Null on a citizen's own passport while nothing is recorded about them yet"
    )
    read_at: dt.datetime
    basis: AccessBasis = strawberry.field(description="What allowed this read")
    competences: list[PassportCompetence] = strawberry.field(
        description="Verified competences: each vouched for by at least one organisation"
    )
    self_declared: list[SelfDeclaredCompetence] = strawberry.field(
        description="What the citizen says about themselves; not verified by anyone"
    )


_status = by_value(ClaimStatus)
_organisation_kind = by_value(OrganisationKind)
_learning_context = by_value(LearningContext)


def self_declared_type(view: ClaimView) -> SelfDeclaredCompetence:
    return SelfDeclaredCompetence(
        id=strawberry.ID(str(view.claim_id)),
        competence=competence_type(view.competence),
        proficiency=proficiency_type(view),
        context=view.context,
        learning_context=_learning_context(view.learning_context),
        evidence=[evidence_type(item) for item in view.evidence],
        acquired_on=view.acquired_on,
        last_used_on=view.last_used_on,
        declared_at=view.recorded_at,
    )


def passport_type(view: PassportView) -> Passport:
    return Passport(
        citizen_id=strawberry.ID(str(view.citizen_id)) if view.citizen_id else None,
        read_at=view.read_at,
        basis=AccessBasis(view.basis.value),
        competences=[
            _competence(pc, to_citizen=view.basis is DomainAccessBasis.SELF)
            for pc in view.competences
        ],
        self_declared=[self_declared_type(claim) for claim in view.self_declared],
    )


def _competence(pc: PassportCompetenceView, *, to_citizen: bool) -> PassportCompetence:
    return PassportCompetence(
        competence=competence_type(pc.competence),
        status=_status(pc.status.value),
        highest_level=proficiency_type(pc.highest_level) if pc.highest_level else None,
        first_acquired_on=pc.first_acquired_on,
        last_used_on=pc.most_recent_use,
        distinct_organisations=pc.distinct_organisations,
        vouchers=[
            VoucherCount(
                organisation_kind=_organisation_kind(v.organisation_kind),
                organisations=v.organisations,
            )
            for v in pc.vouchers
        ],
        claims=[
            claim_type(view, show_external_ref=False, to_citizen=to_citizen) for view in pc.claims
        ],
        endorsements=pc.endorsements,
        endorsing_organisations=pc.endorsing_organisations,
    )


PassportResult = Annotated[
    Passport | NotFoundType | ValidationFailedType, strawberry.union("PassportResult")
]
