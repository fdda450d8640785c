"""Endorsing a claim, revoking an endorsement (the endorser), hiding one (the citizen)."""

from __future__ import annotations

import strawberry

from service.endorsements import service as endorsements
from service.errors import DomainError
from service.schema.context import Info
from service.schema.endorsements.types import (
    ClaimEndorsed,
    EndorseClaimInput,
    EndorseClaimResult,
    EndorsementChanged,
    EndorsementChangeResult,
    RevokeEndorsementInput,
    endorsement_type,
)
from service.schema.errors import error_result
from service.schema.ids import parse_uuid
from service.schema.inputs import plain


@strawberry.type
class EndorsementMutations:
    @strawberry.mutation(
        description="Endorse another organisation's claim, as your organisation (the "
        "claims:endorse scope). Never your own organisation's claim."
    )
    async def endorse_claim(self, info: Info, input: EndorseClaimInput) -> EndorseClaimResult:
        ctx = info.context
        try:
            outcome = await ctx.atomically(
                lambda: endorsements.endorse_claim(ctx.session, ctx.principal, plain(input))
            )
        except DomainError as exc:
            return error_result(exc)
        return ClaimEndorsed(
            endorsement=endorsement_type(outcome.endorsement), created=outcome.created
        )

    @strawberry.mutation(description="Withdraw an endorsement your organisation gave")
    async def revoke_endorsement(
        self, info: Info, input: RevokeEndorsementInput
    ) -> EndorsementChangeResult:
        ctx = info.context
        data = plain(input)
        try:
            endorsement_id = parse_uuid(data.pop("endorsement_id"), "endorsement")
            view = await ctx.atomically(
                lambda: endorsements.revoke_endorsement(
                    ctx.session, ctx.principal, endorsement_id, data
                )
            )
        except DomainError as exc:
            return error_result(exc)
        return EndorsementChanged(endorsement=endorsement_type(view))

    @strawberry.mutation(
        description="Hide an endorsement of your claim from everyone else (readers, share "
        "links, exports); you still see it"
    )
    async def hide_endorsement(self, info: Info, id: strawberry.ID) -> EndorsementChangeResult:
        return await _set_hidden(info, id, hidden=True)

    @strawberry.mutation(description="Show an endorsement you hid again")
    async def show_endorsement(self, info: Info, id: strawberry.ID) -> EndorsementChangeResult:
        return await _set_hidden(info, id, hidden=False)


async def _set_hidden(info: Info, id: strawberry.ID, *, hidden: bool) -> EndorsementChangeResult:
    ctx = info.context
    try:
        endorsement_id = parse_uuid(id, "endorsement")
        view = await ctx.atomically(
            lambda: endorsements.set_hidden(
                ctx.session, ctx.principal, ctx.hmac_key, endorsement_id, hidden=hidden
            )
        )
    except DomainError as exc:
        return error_result(exc)
    return EndorsementChanged(endorsement=endorsement_type(view))
