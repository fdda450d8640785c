"""A credential offer as the citizen's app shows it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from service.schema.common import Language
from service.schema.errors import ErrorResult
from service.schema.taxonomy.types import Competence, competence_type
from service.wallet.offers import OfferCreated


@strawberry.type(description="An offer of your competences to your wallet (OpenID4VCI)")
class CredentialOffer:
    id: strawberry.ID
    uri: str = strawberry.field(
        description="openid-credential-offer://...: open it on the phone, or show qrCodeSvg"
    )
    tx_code: str = strawberry.field(
        description="Show it to the citizen: their wallet asks for it. Shown only this once"
    )
    expires_at: dt.datetime = strawberry.field(description="Redeem it before then, once")
    qr_code_svg: str = strawberry.field(description="The offer URI as a QR code (SVG markup)")
    credential_configuration_ids: list[str] = strawberry.field(
        description="What the wallet can take: an SD-JWT VC and a Data Integrity CLR"
    )
    competences: list[Competence] | None = strawberry.field(
        description="The competences it covers; null: the whole passport"
    )


def offer_type(created: OfferCreated) -> CredentialOffer:
    return CredentialOffer(
        id=strawberry.ID(str(created.offer_id)),
        uri=created.uri,
        tx_code=created.tx_code,
        expires_at=created.expires_at,
        qr_code_svg=created.qr_svg,
        credential_configuration_ids=list(created.configuration_ids),
        competences=None
        if created.competences is None
        else [competence_type(ref) for ref in created.competences],
    )


@strawberry.type
class CredentialOfferCreated:
    offer: CredentialOffer


@strawberry.input
class CreateCredentialOfferInput:
    competence_uris: list[str] | None = strawberry.field(
        default=None, description="Offer only these ESCO competences; omit for the whole passport"
    )
    language: Language = strawberry.field(
        default=Language.EN, description="Language of the labels in the credentials"
    )


CreateCredentialOfferResult = Annotated[
    CredentialOfferCreated | ErrorResult, strawberry.union("CreateCredentialOfferResult")
]
