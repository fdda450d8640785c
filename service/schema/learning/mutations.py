"""Providers publish and withdraw their learning opportunities."""

from __future__ import annotations

import strawberry

from service.errors import DomainError
from service.learning import service as learning
from service.schema.context import Info
from service.schema.errors import error_result
from service.schema.ids import parse_uuid
from service.schema.inputs import plain
from service.schema.learning.types import (
    LearningOpportunityInput,
    OpportunitiesPublished,
    OpportunityPublished,
    PublishManyResult,
    PublishResult,
    WithdrawOpportunityResult,
    opportunity_row,
    opportunity_type,
)


@strawberry.type
class LearningMutations:
    @strawberry.mutation(
        description="Publish a course or programme (education providers and the public "
        "employment service); publishing the same externalRef again replaces it"
    )
    async def publish_learning_opportunity(
        self, info: Info, input: LearningOpportunityInput
    ) -> PublishResult:
        ctx = info.context
        try:
            view = await ctx.atomically(
                lambda: learning.publish(ctx.session, ctx.principal, plain(input))
            )
        except DomainError as exc:
            return error_result(exc)
        return OpportunityPublished(opportunity=opportunity_type(view))

    @strawberry.mutation(
        description="Publish up to 500 offers at once; each row is published or refused on its own"
    )
    async def publish_learning_opportunities(
        self, info: Info, inputs: list[LearningOpportunityInput]
    ) -> PublishManyResult:
        ctx = info.context
        try:
            outcomes = await ctx.atomically(
                lambda: learning.publish_many(
                    ctx.session, ctx.principal, [plain(item) for item in inputs]
                )
            )
        except DomainError as exc:
            return error_result(exc)
        rows = [opportunity_row(outcome) for outcome in outcomes]
        refused = sum(1 for row in rows if row.error is not None)
        return OpportunitiesPublished(rows=rows, published=len(rows) - refused, refused=refused)

    @strawberry.mutation(description="Withdraw an offer your organisation published")
    async def withdraw_learning_opportunity(
        self, info: Info, id: strawberry.ID
    ) -> WithdrawOpportunityResult:
        ctx = info.context
        try:
            opportunity_id = parse_uuid(id, "learning opportunity")
            view = await ctx.atomically(
                lambda: learning.withdraw(ctx.session, ctx.principal, opportunity_id)
            )
        except DomainError as exc:
            return error_result(exc)
        return OpportunityPublished(opportunity=opportunity_type(view))
