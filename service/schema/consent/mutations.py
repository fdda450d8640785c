"""The citizen's consent mutations: parse, call one domain function, shape the result."""

from __future__ import annotations

import strawberry

from service.consent import service as consent
from service.errors import DomainError
from service.schema.consent.types import (
    AccessRevoked,
    GrantAccessInput,
    GrantAccessResult,
    RevokeAccessResult,
    access_granted,
    grant_type,
)
from service.schema.context import Info
from service.schema.errors import error_result
from service.schema.ids import parse_uuid
from service.schema.inputs import plain


@strawberry.type
class ConsentMutations:
    @strawberry.mutation(
        description="Let an organisation, or whoever holds a share link, read your passport "
        "(or chosen competences) for a purpose, until an expiry"
    )
    async def grant_access(self, info: Info, input: GrantAccessInput) -> GrantAccessResult:
        ctx = info.context
        try:
            outcome = await ctx.atomically(
                lambda: consent.grant_access(ctx.session, ctx.principal, ctx.hmac_key, plain(input))
            )
        except DomainError as exc:
            return error_result(exc)
        return access_granted(outcome, ctx.settings.share_link_base_url)

    @strawberry.mutation(description="Withdraw a grant; it stops working on the next request")
    async def revoke_access(self, info: Info, id: strawberry.ID) -> RevokeAccessResult:
        ctx = info.context
        try:
            grant_id = parse_uuid(id, "grant")
            view = await ctx.atomically(
                lambda: consent.revoke_access(ctx.session, ctx.principal, ctx.hmac_key, grant_id)
            )
        except DomainError as exc:
            return error_result(exc)
        return AccessRevoked(grant=grant_type(view))
