"""Grants (consents) as GraphQL types."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from service.consent import service as consent
from service.consent.service import GrantOutcome, GrantView
from service.schema.common import PageInfo
from service.schema.enums import GranteeKind, GrantStatus, OrganisationKind, TeamDisclosure
from service.schema.errors import (
    ErrorResult,
)
from service.schema.taxonomy.types import Competence, competence_type


@strawberry.type(description="An organisation, as a citizen sees it in grants and the log")
class OrganisationRef:
    id: strawberry.ID
    name: str
    kind: OrganisationKind
    enterprise_number: str

    @classmethod
    def of(cls, org: consent.OrganisationRef) -> OrganisationRef:
        return cls(
            id=strawberry.ID(str(org.id)),
            name=org.name,
            kind=OrganisationKind(org.kind),
            enterprise_number=org.enterprise_number,
        )


@strawberry.type(description="The team check a consent answers")
class TeamCheckRef:
    id: strawberry.ID
    name: str


@strawberry.type(description="A citizen's consent to read their passport")
class Grant:
    id: strawberry.ID
    citizen_id: strawberry.ID
    grantee_kind: GranteeKind
    organisation: OrganisationRef | None = strawberry.field(
        description="The organisation that may read; null for a share link"
    )
    purpose: str
    competences: list[Competence] | None = strawberry.field(
        description="The competences it covers; null: the whole passport"
    )
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    status: GrantStatus
    include_wants: bool = strawberry.field(
        description="Shows what you want (stances on the competences it covers, and goals)"
    )
    include_work_history: bool = strawberry.field(description="Shows your work history")
    team_check: TeamCheckRef | None = strawberry.field(
        description="Set on a consent to a team competence check: read by that check alone"
    )
    disclosure: TeamDisclosure | None = strawberry.field(
        description="In a team check: shown by name, or only counted"
    )


def grant_type(view: GrantView) -> Grant:
    return Grant(
        id=strawberry.ID(str(view.grant_id)),
        citizen_id=strawberry.ID(str(view.citizen_id)),
        grantee_kind=GranteeKind(view.grantee_kind.value),
        organisation=OrganisationRef.of(view.organisation) if view.organisation else None,
        purpose=view.purpose,
        competences=None
        if view.competences is None
        else [competence_type(ref) for ref in view.competences],
        created_at=view.created_at,
        expires_at=view.expires_at,
        revoked_at=view.revoked_at,
        status=GrantStatus(view.status.value),
        include_wants=view.include_wants,
        include_work_history=view.include_work_history,
        team_check=TeamCheckRef(
            id=strawberry.ID(str(view.team_check.id)), name=view.team_check.name
        )
        if view.team_check
        else None,
        disclosure=TeamDisclosure(view.disclosure.value) if view.disclosure else None,
    )


@strawberry.type(description="Shown once, when the link is made; only its hash is kept")
class ShareLink:
    token: str = strawberry.field(
        description="Send as `Authorization: Bearer <token>` to read the shared passport"
    )
    url: str | None = strawberry.field(
        description="The citizen app's link with the token (PASSPORT_SHARE_LINK_BASE_URL)"
    )


@strawberry.type
class AccessGranted:
    grant: Grant
    created: bool = strawberry.field(
        description="False when a retry with the same idempotencyKey returned the earlier grant"
    )
    share_link: ShareLink | None = strawberry.field(
        description="For a new share link only; a retry does not show the secret again"
    )


def access_granted(outcome: GrantOutcome, base_url: str) -> AccessGranted:
    link = (
        ShareLink(
            token=outcome.share_token, url=base_url + outcome.share_token if base_url else None
        )
        if outcome.share_token
        else None
    )
    return AccessGranted(grant=grant_type(outcome.grant), created=outcome.created, share_link=link)


@strawberry.type
class AccessRevoked:
    grant: Grant


@strawberry.input
class GrantAccessInput:
    grantee_kind: GranteeKind
    organisation_id: strawberry.ID | None = strawberry.field(
        default=None, description="For ORGANISATION: its id, or give enterpriseNumber"
    )
    enterprise_number: str | None = None
    purpose: str
    expires_at: dt.datetime = strawberry.field(description="At most one year from now")
    competence_uris: list[str] | None = strawberry.field(
        default=None, description="Share only these ESCO competences; omit for the whole passport"
    )
    include_wants: bool = strawberry.field(
        default=False,
        description="Also show what you want: your stances (on the competences shared) and "
        "career goals; private unless you say so",
    )
    include_work_history: bool = strawberry.field(
        default=False, description="Also show your work history; private unless you say so"
    )
    idempotency_key: str = strawberry.field(
        description="Your own unique key for this request; retrying with it never makes a second "
        "grant"
    )


@strawberry.type
class GrantEdge:
    cursor: str
    node: Grant


@strawberry.type
class GrantConnection:
    edges: list[GrantEdge]
    page_info: PageInfo


GrantAccessResult = Annotated[AccessGranted | ErrorResult, strawberry.union("GrantAccessResult")]
RevokeAccessResult = Annotated[AccessRevoked | ErrorResult, strawberry.union("RevokeAccessResult")]
