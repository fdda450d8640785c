"""Claim mutations: parse, call one domain function, shape the result."""

from __future__ import annotations

import uuid

import strawberry

from service.claims import bulk
from service.claims import service as claims
from service.claims.views import ClaimView, load_claims
from service.errors import DomainError, ValidationFailed
from service.models import Claim
from service.observability import claim_issued
from service.schema.claims.inputs import IssueClaimInput, RevokeClaimInput, SupersedeClaimInput
from service.schema.claims.types import (
    KNOWN_TO_THE_WRITE,
    ClaimIssued,
    ClaimRevoked,
    ClaimsIssued,
    ClaimSuperseded,
    IssueClaimResult,
    IssueClaimsResult,
    RevokeClaimResult,
    SupersedeClaimResult,
    claim_type,
    recorded_claim_type,
)
from service.schema.common import asks_only
from service.schema.context import Info
from service.schema.errors import ErrorResult, error_result
from service.schema.ids import parse_uuid
from service.schema.inputs import plain

MAX_BATCH = 1000


@strawberry.type
class ClaimMutations:
    @strawberry.mutation(
        description="Record that the citizen has a competence, as your organisation"
    )
    async def issue_claim(self, info: Info, input: IssueClaimInput) -> IssueClaimResult:
        ctx = info.context
        read_back = not asks_only(info, "claim", KNOWN_TO_THE_WRITE)
        try:
            # Alone, the one call is the whole mutation; a claim read back is read in the
            # call's transaction, under its citizen lock, so no erasure comes in between.
            outcome = await ctx.atomically(
                lambda: claims.issue_claim(
                    ctx.session,
                    ctx.principal,
                    plain(input),
                    ctx.hmac_key,
                    read_back=read_back,
                    alone=not read_back,
                )
            )
        except DomainError as exc:
            return error_result(exc)
        if outcome.created:
            claim_issued(ctx.principal.organisation_kind)
        return ClaimIssued(claim=recorded_claim_type(outcome), created=outcome.created)

    @strawberry.mutation(
        description=f"Record up to {MAX_BATCH} claims in one transaction; each input is "
        "accepted, answered as a retry, or rejected on its own"
    )
    async def issue_claims(self, info: Info, inputs: list[IssueClaimInput]) -> IssueClaimsResult:
        ctx = info.context
        rows = [plain(item) for item in inputs]

        async def issue() -> tuple[list[bulk.RowOutcome], dict[uuid.UUID, ClaimView]]:
            if len(rows) > MAX_BATCH:
                raise ValidationFailed.one(
                    "inputs", f"at most {MAX_BATCH} claims at once", "too_many"
                )
            outcomes = await bulk.issue_many(ctx.session, ctx.principal, rows, ctx.hmac_key)
            ids = [o.claim_id for o in outcomes if o.claim_id is not None]
            views = await load_claims(ctx.session, Claim.claim_id.in_(ids)) if ids else []
            return outcomes, {view.claim_id: view for view in views}

        try:
            outcomes, views = await ctx.atomically(issue)
        except DomainError as exc:
            return error_result(exc)
        results: list[ClaimIssued | ErrorResult] = []
        for outcome in outcomes:
            if outcome.claim_id is not None:
                results.append(
                    ClaimIssued(
                        claim=claim_type(views[outcome.claim_id], show_external_ref=True),
                        created=outcome.status is bulk.RowStatus.ACCEPTED,
                    )
                )
            else:
                assert outcome.error is not None
                results.append(error_result(outcome.error))
        counts = bulk.counted(ctx.principal, (outcome.status for outcome in outcomes))
        return ClaimsIssued(
            results=results,
            accepted=counts[bulk.RowStatus.ACCEPTED],
            duplicates=counts[bulk.RowStatus.DUPLICATE],
            rejected=counts[bulk.RowStatus.REJECTED],
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
        read_back = not asks_only(info, "claim", KNOWN_TO_THE_WRITE)
        try:
            claim_id = parse_uuid(input.claim_id, "claim")
            outcome = await ctx.atomically(
                lambda: claims.supersede_claim(
                    ctx.session, ctx.principal, claim_id, data, read_back=read_back
                )
            )
        except DomainError as exc:
            return error_result(exc)
        if outcome.created:
            claim_issued(ctx.principal.organisation_kind)
        return ClaimSuperseded(claim=recorded_claim_type(outcome), created=outcome.created)
