"""Exporting a passport as a signed credential, and looking an export up by its id.

An export is a read of the passport (it is in the access log) that also writes: the export's
record and any new status-list positions, in the same transaction, under the citizen's
exclusive lock. If anything fails, nothing of it remains and no credential was handed out.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.principal import Principal
from service.citizens.service import lock_citizen, own_citizen_id
from service.claims.views import ClaimView, load_claims
from service.credentials import status
from service.credentials.clr import ExportRequest, sign_export
from service.credentials.i18n import Language
from service.credentials.issuer import Issuer
from service.errors import CitizenGone, InvalidState, NotFound
from service.models import Claim, CredentialExport, Organisation
from service.models.enums import AccessBasis, ClaimStatus
from service.passports.service import (
    NOT_FOUND,
    Passport,
    PassportFilter,
    aggregate,
    read_own_passport,
    read_shared_passport,
    record_access,
)

ACTIVE_ONLY = PassportFilter(statuses=frozenset({ClaimStatus.ACTIVE}))
NOTHING_TO_EXPORT = "there are no verified competences to export yet"


@dataclass(frozen=True)
class SignedExport:
    export_id: uuid.UUID
    document: dict[str, Any]
    body: bytes  # the JSON exactly as served, whose SHA-256 the export record keeps
    passport: Passport
    request: ExportRequest


async def export_passport(
    session: AsyncSession,
    principal: Principal,
    *,
    hmac_key: bytes,
    issuer: Issuer,
    valid_days: int,
    language: Language,
    operation: str,
) -> SignedExport:
    """The citizen's own passport, or what a share link covers, as a signed ClrCredential."""
    if principal.is_link:
        citizen_id = principal.citizen_id
    else:
        citizen_id = await own_citizen_id(session, principal, hmac_key)
    if citizen_id is None:
        raise InvalidState(NOTHING_TO_EXPORT)
    try:
        await lock_citizen(session, citizen_id)
    except CitizenGone:  # erased while this export waited for the lock
        raise InvalidState(NOTHING_TO_EXPORT) from None
    if principal.is_link:
        passport = await read_shared_passport(session, principal, ACTIVE_ONLY, operation=operation)
    else:
        passport = await read_own_passport(
            session, principal, hmac_key, ACTIVE_ONLY, operation=operation
        )
    claims = [claim for pc in passport.competences for claim in pc.claims]
    if passport.citizen_id is None or not claims:
        raise InvalidState(NOTHING_TO_EXPORT)
    export_id = uuid.uuid4()
    created = clock.now().replace(microsecond=0)
    positions, export_position = await status.assign(
        session, citizen_id, [c.claim_id for c in claims]
    )
    request = ExportRequest(
        export_id=export_id,
        created=created,
        valid_until=created + timedelta(days=valid_days),
        language=language,
        holder_name=None if principal.is_link else principal.display_name,
        claims=claims,
        positions=positions,
        export_position=export_position,
        enterprise_numbers=await _enterprise_numbers(session, claims),
    )
    # Canonicalizing a few hundred credentials takes a while: off the event loop.
    document = await asyncio.to_thread(sign_export, issuer, request)
    body = orjson.dumps(document)
    session.add(
        CredentialExport(
            id=export_id,
            citizen_id=citizen_id,
            created_at=created,
            valid_until=request.valid_until,
            basis=AccessBasis.LINK.value if principal.is_link else AccessBasis.SELF.value,
            grant_id=principal.grant_id if principal.is_link else None,
            key_id=issuer.keys.active.kid,
            language=language.value,
            claim_ids=[c.claim_id for c in claims],
            status_list=export_position.status_list,
            status_idx=export_position.index,
            document_sha256=hashlib.sha256(body).digest(),
        )
    )
    await session.flush()
    return SignedExport(export_id, document, body, passport, request)


async def _enterprise_numbers(
    session: AsyncSession, claims: Sequence[ClaimView]
) -> dict[uuid.UUID, str]:
    ids = {c.issuer.id for c in claims if c.issuer is not None}
    rows = await session.execute(
        select(Organisation.id, Organisation.enterprise_number).where(Organisation.id.in_(ids))
    )
    return {row.id: row.enterprise_number for row in rows}


@dataclass(frozen=True)
class ExportRecord:
    export: CredentialExport
    claims: list[ClaimView]  # those still held; an erased citizen's export is gone entirely


async def find_export(
    session: AsyncSession, export_id: uuid.UUID, *, record_as: Principal | None = None
) -> ExportRecord:
    """The export and its claims as they stand now. With ``record_as``, the look-up is in the
    citizen's access log: the holder sees when their export was checked."""
    export = await session.scalar(select(CredentialExport).where(CredentialExport.id == export_id))
    if export is None:
        raise NotFound(NOT_FOUND)
    claims = await load_claims(
        session, Claim.citizen_id == export.citizen_id, Claim.claim_id.in_(export.claim_ids)
    )
    if record_as is not None:
        seen = Passport(
            citizen_id=export.citizen_id,
            competences=aggregate(claims),
            self_declared=[],
            read_at=clock.now(),
            basis=AccessBasis.EXPORT,
        )
        if not await record_access(session, record_as, seen, operation="verifyExport"):
            raise NotFound(NOT_FOUND)
    return ExportRecord(export, claims)
