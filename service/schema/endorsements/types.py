"""Endorsements as GraphQL types."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from service.endorsements.service import GivenEndorsement
from service.endorsements.views import EndorsementView
from service.schema.common import PageInfo, by_value
from service.schema.enums import EndorsementStatus, OrganisationKind
from service.schema.errors import ErrorResult
from service.schema.taxonomy.types import Competence, competence_type


@strawberry.type(description="The organisation that endorses a claim: never its issuer")
class Endorser:
    id: strawberry.ID
    name: str
    kind: OrganisationKind
    client_id: str = strawberry.field(description="The organisation's API client that wrote it")


@strawberry.type(
    description="An organisation other than the issuer seconds a claim, in a short statement. "
    "Counted apart from the organisations vouching for the competence."
)
class Endorsement:
    id: strawberry.ID
    claim_id: strawberry.ID
    endorser: Endorser
    endorser_role: str | None = strawberry.field(description="e.g. team lead, coach")
    statement: str
    endorsed_at: dt.datetime = strawberry.field(description="Server time it was recorded")
    status: EndorsementStatus
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    hidden: bool = strawberry.field(
        description="Hidden by the citizen from everyone else; only the citizen sees these"
    )


_kind = by_value(OrganisationKind)
_status = by_value(EndorsementStatus)


def endorsement_type(view: EndorsementView) -> Endorsement:
    return Endorsement(
        id=strawberry.ID(str(view.endorsement_id)),
        claim_id=strawberry.ID(str(view.claim_id)),
        endorser=Endorser(
            id=strawberry.ID(str(view.endorser.id)),
            name=view.endorser.name,
            kind=_kind(view.endorser.kind),
            client_id=view.endorser.client_id,
        ),
        endorser_role=view.endorser_role,
        statement=view.statement,
        endorsed_at=view.endorsed_at,
        status=_status(view.status.value),
        revoked_at=view.revoked_at,
        revocation_reason=view.revocation_reason,
        hidden=view.hidden,
    )


@strawberry.input
class EndorseClaimInput:
    claim_id: strawberry.ID = strawberry.field(
        description="A current claim of another organisation that the citizen lets your "
        "organisation see (an active grant covering its competence)"
    )
    statement: str = strawberry.field(description="What you vouch for, in a few words")
    endorser_role: str | None = None
    external_ref: str = strawberry.field(
        description="Your own unique reference: a retry with it returns the same endorsement"
    )


@strawberry.input
class RevokeEndorsementInput:
    endorsement_id: strawberry.ID
    reason: str


@strawberry.type
class ClaimEndorsed:
    endorsement: Endorsement
    created: bool = strawberry.field(
        description="False when this was a retry and the earlier endorsement is returned"
    )


@strawberry.type
class EndorsementChanged:
    endorsement: Endorsement


@strawberry.type(
    name="GivenEndorsement", description="An endorsement as the organisation that gave it sees it"
)
class GivenEndorsementType:
    endorsement: Endorsement
    passport_id: strawberry.ID
    external_ref: str
    competence: Competence | None = strawberry.field(
        description="What the endorsed claim is about; null once the citizen was erased"
    )


@strawberry.type
class GivenEndorsementEdge:
    cursor: str
    node: GivenEndorsementType


@strawberry.type
class GivenEndorsementConnection:
    edges: list[GivenEndorsementEdge]
    page_info: PageInfo


def given_type(item: GivenEndorsement) -> GivenEndorsementType:
    return GivenEndorsementType(
        endorsement=endorsement_type(item.endorsement),
        passport_id=strawberry.ID(str(item.citizen_id)),
        external_ref=item.external_ref,
        competence=competence_type(item.competence) if item.competence else None,
    )


EndorseClaimResult = Annotated[ClaimEndorsed | ErrorResult, strawberry.union("EndorseClaimResult")]
EndorsementChangeResult = Annotated[
    EndorsementChanged | ErrorResult, strawberry.union("EndorsementChangeResult")
]
