"""The citizen's own mutations: self-declarations and erasure."""

from __future__ import annotations

import strawberry

from service.citizens.erasure import request_erasure
from service.claims import service as claims
from service.errors import DomainError
from service.schema.citizens.types import (
    RequestErasureResult,
    SelfDeclarationWithdrawn,
    SelfDeclared,
    SelfDeclareInput,
    SelfDeclareResult,
    WithdrawSelfDeclarationResult,
    erasure_completed,
)
from service.schema.context import Info
from service.schema.errors import error_result
from service.schema.ids import parse_uuid
from service.schema.inputs import plain
from service.schema.passports.types import self_declared_type


@strawberry.type
class CitizenMutations:
    @strawberry.mutation(
        description="Add a competence about yourself; shown apart and never counted as verified"
    )
    async def self_declare(self, info: Info, input: SelfDeclareInput) -> SelfDeclareResult:
        ctx = info.context
        try:
            outcome = await ctx.atomically(
                lambda: claims.declare_self(ctx.session, ctx.principal, ctx.hmac_key, plain(input))
            )
        except DomainError as exc:
            return error_result(exc)
        return SelfDeclared(competence=self_declared_type(outcome.claim), created=outcome.created)

    @strawberry.mutation(description="Take back a competence you declared yourself")
    async def withdraw_self_declaration(
        self, info: Info, id: strawberry.ID
    ) -> WithdrawSelfDeclarationResult:
        ctx = info.context
        try:
            claim_id = parse_uuid(id, "self-declared competence")
            view = await ctx.atomically(
                lambda: claims.withdraw_self_declaration(
                    ctx.session, ctx.principal, ctx.hmac_key, claim_id
                )
            )
        except DomainError as exc:
            return error_result(exc)
        return SelfDeclarationWithdrawn(id=strawberry.ID(str(view.claim_id)))

    @strawberry.mutation(
        description="Erase everything held about you, at once and for good (see the README for "
        "the few records the law makes us keep). Export your data first if you want a copy."
    )
    async def request_erasure(self, info: Info) -> RequestErasureResult:
        ctx = info.context
        try:
            report = await ctx.atomically(
                lambda: request_erasure(ctx.session, ctx.principal, ctx.hmac_key)
            )
        except DomainError as exc:
            return error_result(exc)
        return erasure_completed(report)
