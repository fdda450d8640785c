"""The citizen starts an offer to their wallet: parse, call one domain function, shape it."""

from __future__ import annotations

import strawberry

from service.errors import DomainError
from service.schema.context import Info
from service.schema.errors import error_result
from service.schema.inputs import plain
from service.schema.wallet.types import (
    CreateCredentialOfferInput,
    CreateCredentialOfferResult,
    CredentialOfferCreated,
    offer_type,
)
from service.wallet import offers


@strawberry.type
class WalletMutations:
    @strawberry.mutation(
        description="Offer your verified competences (all, or chosen ones) to your wallet over "
        "OpenID4VCI: an openid-credential-offer:// URI and QR code, and a transaction code to "
        "type into the wallet; redeemable once, for minutes (also POST "
        "/passports/me/credential-offers). Not idempotent: a retry shows new codes."
    )
    async def create_credential_offer(
        self, info: Info, input: CreateCredentialOfferInput | None = None
    ) -> CreateCredentialOfferResult:
        ctx = info.context
        data = plain(input) if input is not None else {}
        try:
            created = await ctx.atomically(
                lambda: offers.create_offer(
                    ctx.session, ctx.principal, ctx.hmac_key, data, settings=ctx.settings
                )
            )
        except DomainError as exc:
            return error_result(exc)
        return CredentialOfferCreated(offer=offer_type(created))
