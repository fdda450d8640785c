"""What an endorsing organisation gave."""

from __future__ import annotations

import strawberry

from service.endorsements import service as endorsements
from service.schema.common import PageInfo, clamp_first
from service.schema.context import Info
from service.schema.endorsements.types import (
    GivenEndorsementConnection,
    GivenEndorsementEdge,
    given_type,
)


@strawberry.type
class EndorsementQueries:
    @strawberry.field(
        description="Endorsements your organisation gave, newest first (the claims:endorse scope)"
    )
    async def endorsements_given(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> GivenEndorsementConnection:
        ctx = info.context
        page = await endorsements.endorsements_given(
            ctx.session,
            ctx.principal,
            first=clamp_first(first, ctx.settings.max_page_size),
            after=after,
        )
        return GivenEndorsementConnection(
            edges=[
                GivenEndorsementEdge(cursor=item.cursor, node=given_type(item))
                for item in page.items
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )
