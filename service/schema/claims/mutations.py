"""Claim mutations: parse, call one domain function, shape the result."""

from __future__ import annotations

import strawberry

from service.claims import service as claims
from service.errors import DomainError
from service.observability import claim_issued
from service.schema.claims.inputs import IssueClaimInput, RevokeClaimInput, SupersedeClaimInput
from service.schema.claims.types import (
    ClaimIssued,
    ClaimRevoked,
    ClaimSuperseded,
    IssueClaimResult,
    RevokeClaimResult,
    SupersedeClaimResult,
    claim_type,
)
from service.schema.context import Info
from service.schema.errors import error_result
from service.schema.ids import parse_uuid
from service.schema.inputs import plain


@strawberry.type
class ClaimMutations:
    @strawberry.mutation(
        description="Record that the citizen has a competence, as your organisation"
    )
    async def issue_claim(self, info: Info, input: IssueClaimInput) -> IssueClaimResult:
        ctx = info.context
        try:
            outcome = await ctx.atomically(
                lambda: claims.issue_claim(ctx.session, ctx.principal, plain(input), ctx.hmac_key)
            )
        except DomainError as exc:
            return error_result(exc)
        if outcome.created:
            claim_issued(ctx.principal.organisation_kind)
        return ClaimIssued(
            claim=claim_type(outcome.claim, show_external_ref=True), created=outcome.created
        )

    @strawberry.mutation(description="Withdraw a claim your organisation issued")
    async def revoke_claim(self, info: Info, input: RevokeClaimInput) -> RevokeClaimResult:
        ctx = info.context
        try:
            claim_id = parse_uuid(input.claim_id, "claim")
            view = await ctx.atomically(
                lambda: claims.revoke_claim(
                    ctx.session, ctx.principal, claim_id, {"reason": input.reason}
                )
            )
        except DomainError as exc:
            return error_result(exc)
        return ClaimRevoked(claim=claim_type(view, show_external_ref=True))

    @strawberry.mutation(description="Replace a claim your organisation issued by a newer one")
    async def supersede_claim(self, info: Info, input: SupersedeClaimInput) -> SupersedeClaimResult:
        ctx = info.context
        data = plain(input)
        data.pop("claim_id")
        try:
            claim_id = parse_uuid(input.claim_id, "claim")
            outcome = await ctx.atomically(
                lambda: claims.supersede_claim(ctx.session, ctx.principal, claim_id, data)
            )
        except DomainError as exc:
            return error_result(exc)
        if outcome.created:
            claim_issued(ctx.principal.organisation_kind)
        return ClaimSuperseded(
            claim=claim_type(outcome.claim, show_external_ref=True), created=outcome.created
        )
