"""Claims and their provenance as GraphQL types."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, cast

import strawberry

from service.claims.service import Recorded
from service.claims.views import ClaimView
from service.endorsements.views import visible
from service.schema.common import PageInfo, by_value
from service.schema.endorsements.types import Endorsement, endorsement_type
from service.schema.enums import (
    AssessmentMethod,
    ClaimStatus,
    EvidenceKind,
    LearningContext,
    OrganisationKind,
    ProficiencyScale,
)
from service.schema.errors import (
    ErrorResult,
    NotFoundType,
)
from service.schema.taxonomy.types import Competence, competence_type


@strawberry.type(description="The organisation that vouches for a claim.")
class Issuer:
    id: strawberry.ID
    name: str
    kind: OrganisationKind
    client_id: str = strawberry.field(description="The organisation's API client that wrote it")


@strawberry.type
class Proficiency:
    scale: ProficiencyScale
    level: str
    rank: int = strawberry.field(
        description="Position on the scale as 0-1000, comparable across scales"
    )


@strawberry.type
class Evidence:
    kind: EvidenceKind
    title: str
    url: str | None
    digest: str | None
    issued_on: dt.date | None


@strawberry.type
class Revocation:
    reason: str
    revoked_at: dt.datetime


@strawberry.type(description="One organisation's statement that the citizen has one competence.")
class Claim:
    id: strawberry.ID
    competence: Competence
    issuer: Issuer
    issuer_role: str | None
    proficiency: Proficiency | None
    context: str | None
    assessment_method: AssessmentMethod
    learning_context: LearningContext
    evidence: list[Evidence]
    acquired_on: dt.date
    last_used_on: dt.date | None
    valid_until: dt.date | None
    recorded_at: dt.datetime = strawberry.field(description="Server time the claim was recorded")
    status: ClaimStatus
    revocation: Revocation | None
    supersedes: strawberry.ID | None
    superseded_by: strawberry.ID | None
    external_ref: str | None = strawberry.field(
        description="The issuer's own reference; shown to the issuing organisation only"
    )
    endorsements: list[Endorsement] = strawberry.field(
        description="Other organisations' endorsements of this claim: to the citizen all of "
        "them, to anyone else those in force that the citizen did not hide"
    )


_evidence_kind = by_value(EvidenceKind)
_scale = by_value(ProficiencyScale)
_organisation_kind = by_value(OrganisationKind)
_assessment_method = by_value(AssessmentMethod)
_learning_context = by_value(LearningContext)
_status = by_value(ClaimStatus)


def evidence_type(item: dict[str, Any]) -> Evidence:
    issued = item.get("issued_on")
    return Evidence(
        kind=_evidence_kind(item["kind"]),
        title=item["title"],
        url=item.get("url"),
        digest=item.get("digest"),
        issued_on=dt.date.fromisoformat(issued) if issued else None,
    )


def proficiency_type(view: ClaimView) -> Proficiency | None:
    if not view.proficiency_scale:
        return None
    return Proficiency(
        scale=_scale(view.proficiency_scale),
        level=view.proficiency_level or "",
        rank=view.proficiency_rank or 0,
    )


@dataclass(frozen=True)
class _ClaimId:
    """A claim known by its id alone: all an answer that selects only ``id`` (and
    ``__typename``, which graphql-core answers from the type) reads of a ``Claim``."""

    id: strawberry.ID


# What a write's answer can give of its claim without reading it back (ClaimId above).
KNOWN_TO_THE_WRITE = frozenset({"id", "__typename"})


def recorded_claim_type(recorded: Recorded) -> Claim:
    """The claim a write answers with: read back, or (``read_back=False``) its id alone."""
    if recorded.claim is None:
        return cast(Claim, _ClaimId(strawberry.ID(str(recorded.claim_id))))
    return claim_type(recorded.claim, show_external_ref=True)


def claim_type(view: ClaimView, *, show_external_ref: bool, to_citizen: bool = False) -> Claim:
    issuer = view.issuer
    if issuer is None:  # self-declared competences have a type of their own
        raise ValueError("a self-declared competence is not an organisation's claim")
    proficiency = proficiency_type(view)
    revocation = (
        Revocation(reason=view.revocation_reason or "", revoked_at=view.revoked_at)
        if view.revoked_at
        else None
    )
    return Claim(
        id=strawberry.ID(str(view.claim_id)),
        competence=competence_type(view.competence),
        issuer=Issuer(
            id=strawberry.ID(str(issuer.id)),
            name=issuer.name,
            kind=_organisation_kind(issuer.kind),
            client_id=issuer.client_id,
        ),
        issuer_role=view.issuer_role,
        proficiency=proficiency,
        context=view.context,
        assessment_method=_assessment_method(view.assessment_method),
        learning_context=_learning_context(view.learning_context),
        evidence=[evidence_type(item) for item in view.evidence],
        acquired_on=view.acquired_on,
        last_used_on=view.last_used_on,
        valid_until=view.valid_until,
        recorded_at=view.recorded_at,
        status=_status(view.status.value),
        revocation=revocation,
        supersedes=strawberry.ID(str(view.supersedes_claim_id))
        if view.supersedes_claim_id
        else None,
        superseded_by=(
            strawberry.ID(str(view.superseded_by_claim_id)) if view.superseded_by_claim_id else None
        ),
        external_ref=view.external_ref if show_external_ref else None,
        endorsements=[
            endorsement_type(e) for e in visible(view.endorsements, to_citizen=to_citizen)
        ],
    )


@strawberry.type
class ClaimIssued:
    claim: Claim
    created: bool = strawberry.field(
        description="False when this was a retry and the earlier claim is returned"
    )


@strawberry.type
class ClaimRevoked:
    claim: Claim


@strawberry.type
class ClaimSuperseded:
    claim: Claim = strawberry.field(description="The newer claim")
    created: bool


@strawberry.type
class ClaimEdge:
    cursor: str
    node: Claim


@strawberry.type
class ClaimConnection:
    edges: list[ClaimEdge]
    page_info: PageInfo


IssueClaimResult = Annotated[ClaimIssued | ErrorResult, strawberry.union("IssueClaimResult")]
RevokeClaimResult = Annotated[ClaimRevoked | ErrorResult, strawberry.union("RevokeClaimResult")]
SupersedeClaimResult = Annotated[
    ClaimSuperseded | ErrorResult, strawberry.union("SupersedeClaimResult")
]
ClaimResult = Annotated[Claim | NotFoundType, strawberry.union("ClaimResult")]


@strawberry.type(description="One result per input, in the order of the inputs")
class ClaimsIssued:
    results: list[IssueClaimResult]
    accepted: int = strawberry.field(description="New claims recorded")
    duplicates: int = strawberry.field(description="Retries answered with the earlier claim")
    rejected: int


IssueClaimsResult = Annotated[ClaimsIssued | ErrorResult, strawberry.union("IssueClaimsResult")]
