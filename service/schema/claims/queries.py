"""Claim queries for issuers: one claim, or everything the organisation issued."""

from __future__ import annotations

import strawberry

from service.claims import service as claims
from service.errors import DomainError, NotFound
from service.schema.claims.types import ClaimConnection, ClaimEdge, ClaimResult, claim_type
from service.schema.common import PageInfo, clamp_first
from service.schema.context import Info
from service.schema.errors import NotFoundType, error_result
from service.schema.ids import parse_uuid


@strawberry.type
class ClaimQueries:
    @strawberry.field(description="A claim your organisation issued")
    async def claim(self, info: Info, id: strawberry.ID) -> ClaimResult:
        ctx = info.context
        try:
            view = await claims.issued_claim(ctx.session, ctx.principal, parse_uuid(id, "claim"))
        except DomainError as exc:
            result = error_result(NotFound(exc.message))
            assert isinstance(result, NotFoundType)
            return result
        return claim_type(view, show_external_ref=True)

    @strawberry.field(description="Claims your organisation issued, oldest first")
    async def issued_claims(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> ClaimConnection:
        ctx = info.context
        page = await claims.issued_claims(
            ctx.session,
            ctx.principal,
            first=clamp_first(first, ctx.settings.max_page_size),
            after=after,
        )
        edges = [
            ClaimEdge(
                cursor=claims.claim_cursor(view), node=claim_type(view, show_external_ref=True)
            )
            for view in page.items
        ]
        return ClaimConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )
