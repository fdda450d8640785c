"""The passport as GraphQL types: competences aggregated, every claim with its provenance."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from service.passports.service import Passport as PassportView
from service.passports.service import PassportCompetence as PassportCompetenceView
from service.schema.claims.types import Claim, Proficiency, claim_type
from service.schema.enums import ClaimStatus, LearningContext, OrganisationKind, SkillType
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


@strawberry.type
class Passport:
    citizen_id: strawberry.ID | None = strawberry.field(
        description="Null on a citizen's own passport while nobody has vouched for them yet"
    )
    read_at: dt.datetime
    competences: list[PassportCompetence]


def passport_type(view: PassportView) -> Passport:
    return Passport(
        citizen_id=strawberry.ID(str(view.citizen_id)) if view.citizen_id else None,
        read_at=view.read_at,
        competences=[_competence(pc) for pc in view.competences],
    )


def _competence(pc: PassportCompetenceView) -> PassportCompetence:
    highest = (
        claim_type(pc.highest_level, show_external_ref=False).proficiency
        if pc.highest_level
        else None
    )
    return PassportCompetence(
        competence=competence_type(pc.competence),
        status=ClaimStatus(pc.status.value),
        highest_level=highest,
        first_acquired_on=pc.first_acquired_on,
        last_used_on=pc.most_recent_use,
        distinct_organisations=pc.distinct_organisations,
        vouchers=[
            VoucherCount(
                organisation_kind=OrganisationKind(v.organisation_kind),
                organisations=v.organisations,
            )
            for v in pc.vouchers
        ],
        claims=[claim_type(view, show_external_ref=False) for view in pc.claims],
    )


PassportResult = Annotated[
    Passport | NotFoundType | ValidationFailedType, strawberry.union("PassportResult")
]
