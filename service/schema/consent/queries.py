"""What a reader's organisation was granted."""

from __future__ import annotations

import strawberry

from service.consent import service as consent
from service.pagination import encode_cursor
from service.schema.common import PageInfo, clamp_first
from service.schema.consent.types import GrantConnection, GrantEdge, grant_type
from service.schema.context import Info


@strawberry.type
class ConsentQueries:
    @strawberry.field(
        description="Active grants to your organisation, newest first: the passports you may "
        "read under consent (readers only)"
    )
    async def grants_received(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> GrantConnection:
        ctx = info.context
        page = await consent.grants_received(
            ctx.session,
            ctx.principal,
            first=clamp_first(first, ctx.settings.max_page_size),
            after=after,
        )
        return GrantConnection(
            edges=[
                GrantEdge(
                    cursor=encode_cursor(view.created_at, view.grant_id), node=grant_type(view)
                )
                for view in page.items
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )
