"""The citizen's exports: what they handed out, and taking one back."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated

import strawberry

from service.credentials.exports import ExportSummary
from service.credentials.issuer import export_code, verification_url
from service.schema.common import Language, PageInfo
from service.schema.enums import AccessBasis
from service.schema.errors import ErrorResult


@strawberry.enum(description="How an export is signed")
class ExportFormat(Enum):
    LDP_VC = "ldp_vc"  # a CLR 2.0 ClrCredential with Data Integrity proofs (JSON, PDF, wallet)
    DC_SD_JWT = "dc+sd-jwt"  # an SD-JWT VC with selective disclosure (wallet)


@strawberry.type(description="A signed credential (or PDF) made of your passport")
class Export:
    id: strawberry.ID
    code: str = strawberry.field(description="The short code printed on the PDF")
    verification_url: str = strawberry.field(
        description="The page a recruiter opens (the PDF's QR code)"
    )
    created_at: dt.datetime
    valid_until: dt.datetime
    basis: AccessBasis = strawberry.field(
        description="SELF: you made it; LINK: someone holding your share link did"
    )
    language: Language
    credentials: int = strawberry.field(description="How many signed competences it holds")
    revoked_at: dt.datetime | None = strawberry.field(
        description="When you took it back: from then on every credential in it verifies as revoked"
    )
    format: ExportFormat
    sent_to_wallet: bool = strawberry.field(
        description="Issued to your wallet through a credential offer (OpenID4VCI)"
    )


def export_type(view: ExportSummary, base_url: str) -> Export:
    return Export(
        id=strawberry.ID(str(view.export_id)),
        code=export_code(view.export_id),
        verification_url=verification_url(base_url, view.export_id),
        created_at=view.created_at,
        valid_until=view.valid_until,
        basis=AccessBasis(view.basis.value),
        language=Language(view.language.value),
        credentials=view.credentials,
        revoked_at=view.revoked_at,
        format=ExportFormat(view.format.value),
        sent_to_wallet=view.offer_id is not None,
    )


@strawberry.type
class ExportEdge:
    cursor: str
    node: Export


@strawberry.type
class ExportConnection:
    edges: list[ExportEdge]
    page_info: PageInfo


@strawberry.type
class ExportRevoked:
    export: Export


@strawberry.type
class ExportNameSet:
    export_name: str | None = strawberry.field(
        description="The name your exports show; null: the name your sign-in gives, if any"
    )


RevokeExportResult = Annotated[ExportRevoked | ErrorResult, strawberry.union("RevokeExportResult")]
SetExportNameResult = Annotated[
    ExportNameSet | ErrorResult, strawberry.union("SetExportNameResult")
]
