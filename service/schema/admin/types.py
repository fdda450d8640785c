"""Admin views of the partner registry."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from service.events import chain
from service.organisations.service import ClientView, LegalBasisView, OrganisationView
from service.schema.enums import ClientStatus, OrganisationKind, OrganisationStatus, Scope
from service.schema.errors import (
    ErrorResult,
)


@strawberry.type
class Organisation:
    id: strawberry.ID
    kind: OrganisationKind
    name: str
    enterprise_number: str
    status: OrganisationStatus

    @classmethod
    def of(cls, view: OrganisationView) -> Organisation:
        return cls(
            id=strawberry.ID(str(view.id)),
            kind=OrganisationKind(view.kind),
            name=view.name,
            enterprise_number=view.enterprise_number,
            status=OrganisationStatus(view.status),
        )


@strawberry.type
class ApiClient:
    id: strawberry.ID
    client_id: str
    organisation_id: strawberry.ID
    name: str
    scopes: list[Scope]
    status: ClientStatus

    @classmethod
    def of(cls, view: ClientView) -> ApiClient:
        return cls(
            id=strawberry.ID(str(view.id)),
            client_id=view.client_id,
            organisation_id=strawberry.ID(str(view.organisation_id)),
            name=view.name,
            scopes=[Scope(s) for s in view.scopes],
            status=ClientStatus(view.status),
        )


@strawberry.type
class LegalBasis:
    id: strawberry.ID
    organisation_id: strawberry.ID
    code: str
    reference: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def of(cls, view: LegalBasisView) -> LegalBasis:
        return cls(
            id=strawberry.ID(str(view.id)),
            organisation_id=strawberry.ID(str(view.organisation_id)),
            code=view.code,
            reference=view.reference,
            valid_from=view.valid_from,
            valid_until=view.valid_until,
            revoked_at=view.revoked_at,
        )


@strawberry.type
class ChainBreak:
    citizen_id: strawberry.ID
    seq: int | None = strawberry.field(description="Null: a record without its event")
    reason: str


@strawberry.type(description="The result of recomputing the event hash chains")
class ChainReport:
    citizens_checked: int
    events_checked: int
    intact: bool
    breaks: list[ChainBreak]

    @classmethod
    def of(cls, report: chain.ChainReport) -> ChainReport:
        return cls(
            citizens_checked=report.citizens,
            events_checked=report.events,
            intact=not report.breaks,
            breaks=[
                ChainBreak(citizen_id=strawberry.ID(str(b.citizen_id)), seq=b.seq, reason=b.reason)
                for b in report.breaks
            ],
        )


@strawberry.input
class RegisterOrganisationInput:
    kind: OrganisationKind
    name: str
    enterprise_number: str


@strawberry.input
class RegisterClientInput:
    organisation_id: strawberry.ID
    client_id: str = strawberry.field(
        description="The client_id your identity provider puts in tokens"
    )
    name: str
    scopes: list[Scope]


@strawberry.input
class GrantLegalBasisInput:
    organisation_id: strawberry.ID
    code: str
    reference: str = strawberry.field(description="The statute or decision it rests on")
    valid_until: dt.datetime | None = None


OrganisationResult = Annotated[Organisation | ErrorResult, strawberry.union("OrganisationResult")]
ApiClientResult = Annotated[ApiClient | ErrorResult, strawberry.union("ApiClientResult")]
LegalBasisResult = Annotated[LegalBasis | ErrorResult, strawberry.union("LegalBasisResult")]
