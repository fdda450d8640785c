"""Admin mutations on the partner registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine

from service.auth.policy import require_admin
from service.errors import DomainError, NotFound
from service.events.chain import verify_chains
from service.models import Citizen
from service.organisations import service as registry
from service.schema.admin.types import (
    ApiClient,
    ApiClientResult,
    ChainReport,
    GrantLegalBasisInput,
    LegalBasis,
    LegalBasisResult,
    Organisation,
    OrganisationResult,
    RegisterClientInput,
    RegisterOrganisationInput,
)
from service.schema.context import Info
from service.schema.enums import ClientStatus, OrganisationStatus
from service.schema.errors import ErrorResult, error_result
from service.schema.ids import parse_uuid
from service.schema.inputs import plain

T = TypeVar("T")


async def _run(info: Info, operation: Callable[[], Awaitable[T]]) -> T | ErrorResult:
    try:
        return await info.context.atomically(operation)
    except DomainError as exc:
        return error_result(exc)


def _org(view: registry.OrganisationView | ErrorResult) -> OrganisationResult:
    return Organisation.of(view) if isinstance(view, registry.OrganisationView) else view


def _client(view: registry.ClientView | ErrorResult) -> ApiClientResult:
    return ApiClient.of(view) if isinstance(view, registry.ClientView) else view


def _basis(view: registry.LegalBasisView | ErrorResult) -> LegalBasisResult:
    return LegalBasis.of(view) if isinstance(view, registry.LegalBasisView) else view


@strawberry.type
class AdminMutations:
    @strawberry.mutation
    async def register_organisation(
        self, info: Info, input: RegisterOrganisationInput
    ) -> OrganisationResult:
        ctx = info.context
        return _org(
            await _run(
                info,
                lambda: registry.register_organisation(ctx.session, ctx.principal, plain(input)),
            )
        )

    @strawberry.mutation
    async def set_organisation_status(
        self, info: Info, id: strawberry.ID, status: OrganisationStatus
    ) -> OrganisationResult:
        ctx = info.context

        async def run() -> registry.OrganisationView:
            return await registry.set_organisation_status(
                ctx.session,
                ctx.principal,
                parse_uuid(id, "organisation"),
                status,
            )

        return _org(await _run(info, run))

    @strawberry.mutation
    async def register_client(self, info: Info, input: RegisterClientInput) -> ApiClientResult:
        ctx = info.context

        async def run() -> registry.ClientView:
            data = plain(input)
            data["organisation_id"] = parse_uuid(input.organisation_id, "organisation")
            return await registry.register_client(ctx.session, ctx.principal, data)

        return _client(await _run(info, run))

    @strawberry.mutation
    async def set_client_status(
        self, info: Info, client_id: str, status: ClientStatus
    ) -> ApiClientResult:
        ctx = info.context
        return _client(
            await _run(
                info,
                lambda: registry.set_client_status(ctx.session, ctx.principal, client_id, status),
            )
        )

    @strawberry.mutation
    async def grant_legal_basis(self, info: Info, input: GrantLegalBasisInput) -> LegalBasisResult:
        ctx = info.context

        async def run() -> registry.LegalBasisView:
            data = plain(input)
            data["organisation_id"] = parse_uuid(input.organisation_id, "organisation")
            return await registry.grant_legal_basis(
                ctx.session, ctx.principal, data, ctx.settings.legal_basis_organisation_kinds
            )

        return _basis(await _run(info, run))

    @strawberry.mutation
    async def revoke_legal_basis(self, info: Info, id: strawberry.ID) -> LegalBasisResult:
        ctx = info.context
        return _basis(
            await _run(
                info,
                lambda: registry.revoke_legal_basis(
                    ctx.session, ctx.principal, parse_uuid(id, "legal basis")
                ),
            )
        )


@strawberry.type
class AdminQueries:
    @strawberry.field(description="All partner organisations (admin only)")
    async def organisations(self, info: Info) -> list[Organisation]:
        ctx = info.context
        return [
            Organisation.of(v)
            for v in await registry.list_organisations(ctx.session, ctx.principal)
        ]

    @strawberry.field(
        description="Recompute every citizen's event hash chain (or one's) and report breaks "
        "(admin only; `passport verify-chain` does the same from the command line)"
    )
    async def verify_event_chains(
        self, info: Info, citizen_id: strawberry.ID | None = None
    ) -> ChainReport:
        ctx = info.context
        require_admin(ctx.principal)
        wanted = parse_uuid(citizen_id, "citizen") if citizen_id is not None else None
        if wanted is not None and await ctx.session.get(Citizen, wanted) is None:
            raise NotFound("no citizen with this id")
        engine = ctx.session.bind
        assert isinstance(engine, AsyncEngine)
        return ChainReport.of(await verify_chains(engine, wanted))
