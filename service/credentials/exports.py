"""Exporting a passport as a signed credential, and looking an export up by its id.

An export is a read of the passport (it is in the access log) that also writes: the export's
record and any new status-list positions, in the same transaction, under the citizen's
exclusive lock. If anything fails, nothing of it remains and no credential was handed out.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import func, insert, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.principal import Principal
from service.citizens.service import export_name, lock_citizen, own_citizen_id
from service.claims.views import ClaimView, load_claims
from service.credentials import status
from service.credentials.clr import ExportRequest, sign_export
from service.credentials.i18n import Language
from service.credentials.issuer import Issuer
from service.endorsements.views import for_readers
from service.errors import CitizenGone, InvalidState, NotFound
from service.models import (
    Claim,
    CredentialExport,
    CredentialExportEndorsement,
    CredentialExportEntry,
    CredentialExportRevocation,
    Organisation,
)
from service.models.enums import AccessBasis, ClaimStatus
from service.pagination import decode_cursor, encode_cursor
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
NO_SUCH_EXPORT = "no export of your passport with this id"


# Built once: a multi-row VALUES list would be compiled again for every export.
_ENTRIES = text(
    """
    INSERT INTO credential_export_entries (citizen_id, export_id, claim_id, status_list, idx)
    SELECT :citizen, :export, claim_id, status_list, idx
    FROM unnest(CAST(:claims AS uuid[]), CAST(:lists AS integer[]), CAST(:idxs AS integer[]))
      AS e(claim_id, status_list, idx)
    """
)


_ENDORSEMENT_ENTRIES = text(
    """
    INSERT INTO credential_export_endorsements
      (citizen_id, export_id, endorsement_id, status_list, idx)
    SELECT :citizen, :export, endorsement_id, status_list, idx
    FROM unnest(CAST(:endorsements AS uuid[]), CAST(:lists AS integer[]),
                CAST(:idxs AS integer[])) AS e(endorsement_id, status_list, idx)
    """
)


@dataclass(frozen=True)
class SignedExport:
    export_id: uuid.UUID
    document: dict[str, Any] | str  # the ClrCredential, or an SD-JWT VC in compact form
    body: bytes  # exactly as served, whose SHA-256 the export record keeps
    passport: Passport
    request: ExportRequest


class Format(StrEnum):
    """How an export is signed: a Data Integrity ClrCredential, or an SD-JWT VC."""

    LDP_VC = "ldp_vc"
    SD_JWT = "dc+sd-jwt"


# An export's document from its request, run in a worker thread: the canonicalization and
# signatures are CPU-bound. Returns the document and the bytes served.
Signer = Callable[[ExportRequest], tuple[dict[str, Any] | str, bytes]]


def clr_signer(issuer: Issuer) -> Signer:
    def signed(request: ExportRequest) -> tuple[dict[str, Any] | str, bytes]:
        document = sign_export(issuer, request)
        return document, orjson.dumps(document)

    return signed


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
    # The name the citizen chose for exports, else their sign-in's; a link's holder has none.
    holder_name = await export_name(session, citizen_id) or (
        None if principal.is_link else principal.display_name
    )
    return await issue_export(
        session,
        citizen_id,
        passport,
        ExportTerms(
            issuer=issuer,
            valid_days=valid_days,
            language=language,
            holder_name=holder_name,
            basis=AccessBasis.LINK if principal.is_link else AccessBasis.SELF,
            grant_id=principal.grant_id if principal.is_link else None,
        ),
        clr_signer(issuer),
    )


@dataclass(frozen=True)
class ExportTerms:
    """What an export says beyond the passport's claims, and who asked for it."""

    issuer: Issuer
    valid_days: int
    language: Language
    holder_name: str | None
    basis: AccessBasis = AccessBasis.SELF
    grant_id: uuid.UUID | None = None
    format: Format = Format.LDP_VC
    offer_id: uuid.UUID | None = None  # the wallet offer it answers
    holder_id: str | None = None  # the holder's DID, when a wallet proved its key


async def issue_export(
    session: AsyncSession,
    citizen_id: uuid.UUID,
    passport: Passport,
    terms: ExportTerms,
    signer: Signer,
) -> SignedExport:
    """Sign the passport's verified claims (already read, and recorded in the access log, under
    the citizen's lock) and record the export with fresh status positions."""
    # Handed to others: only the endorsements in force that the citizen did not hide.
    claims = [for_readers(claim) for pc in passport.competences for claim in pc.claims]
    if passport.citizen_id is None or not claims:
        raise InvalidState(NOTHING_TO_EXPORT)
    export_id = uuid.uuid4()
    created = clock.now().replace(microsecond=0)
    # Fresh positions for this export alone: no index is shared with any other copy. A Data
    # Integrity credential's in a list of its issuer's (verifiers bind a list to the
    # credential's issuer), the export's own in the service's. An SD-JWT VC is signed by the
    # service alone, so all its positions are in the service's lists.
    (export_position,) = await status.allocate(session, 1, None)
    positions: dict[uuid.UUID, status.Position] = {}
    for organisation_id, held in _by_issuer(claims).items():
        owner = organisation_id if terms.format is Format.LDP_VC else None
        drawn = await status.allocate(session, len(held), owner)
        positions.update(zip((claim.claim_id for claim in held), drawn, strict=True))
    endorsement_positions: dict[uuid.UUID, status.Position] = {}
    for organisation_id, given in _by_endorser(claims).items():
        drawn = await status.allocate(session, len(given), organisation_id)
        endorsement_positions.update(zip(given, drawn, strict=True))
    request = ExportRequest(
        export_id=export_id,
        created=created,
        valid_until=created + timedelta(days=terms.valid_days),
        language=terms.language,
        holder_name=terms.holder_name,
        claims=claims,
        positions=positions,
        export_position=export_position,
        enterprise_numbers=await enterprise_numbers(session, claims),
        holder_id=terms.holder_id,
        endorsement_positions=endorsement_positions,
    )
    # Canonicalizing a few hundred credentials takes a while: off the event loop.
    document, body = await asyncio.to_thread(signer, request)
    await session.execute(
        insert(CredentialExport).values(
            id=export_id,
            citizen_id=citizen_id,
            created_at=created,
            valid_until=request.valid_until,
            basis=terms.basis.value,
            grant_id=terms.grant_id,
            key_id=terms.issuer.keys.active.kid,
            language=terms.language.value,
            status_list=export_position.status_list,
            status_idx=export_position.index,
            document_sha256=hashlib.sha256(body).digest(),
            format=terms.format.value,
            offer_id=terms.offer_id,
        )
    )
    await session.execute(
        _ENTRIES,
        {
            "citizen": citizen_id,
            "export": export_id,
            "claims": list(positions),
            "lists": [position.status_list for position in positions.values()],
            "idxs": [position.index for position in positions.values()],
        },
    )
    if endorsement_positions:
        await session.execute(
            _ENDORSEMENT_ENTRIES,
            {
                "citizen": citizen_id,
                "export": export_id,
                "endorsements": list(endorsement_positions),
                "lists": [position.status_list for position in endorsement_positions.values()],
                "idxs": [position.index for position in endorsement_positions.values()],
            },
        )
    return SignedExport(export_id, document, body, passport, request)


def _by_endorser(claims: Sequence[ClaimView]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The exported endorsements' ids, by endorsing organisation (whose list holds them)."""
    grouped: dict[uuid.UUID, list[uuid.UUID]] = {}
    for claim in claims:
        for endorsement in claim.endorsements:
            grouped.setdefault(endorsement.endorser.id, []).append(endorsement.endorsement_id)
    return grouped


def _by_issuer(claims: Sequence[ClaimView]) -> dict[uuid.UUID, list[ClaimView]]:
    grouped: dict[uuid.UUID, list[ClaimView]] = {}
    for claim in claims:
        assert claim.issuer is not None  # verified claims only
        grouped.setdefault(claim.issuer.id, []).append(claim)
    return grouped


async def enterprise_numbers(
    session: AsyncSession, claims: Sequence[ClaimView]
) -> dict[uuid.UUID, str]:
    ids = {c.issuer.id for c in claims if c.issuer is not None}
    ids.update(e.endorser.id for c in claims for e in c.endorsements)
    rows = await session.execute(
        select(Organisation.id, Organisation.enterprise_number).where(Organisation.id.in_(ids))
    )
    return {row.id: row.enterprise_number for row in rows}


@dataclass(frozen=True)
class ExportRecord:
    export: CredentialExport
    claim_ids: list[uuid.UUID]  # what it holds, as signed
    claims: list[ClaimView]  # those still held; an erased citizen's export is gone entirely
    revoked_at: datetime | None  # the citizen took the whole export back
    endorsement_ids: list[uuid.UUID] = field(default_factory=list)  # as signed


async def find_export(
    session: AsyncSession, export_id: uuid.UUID, *, record_as: Principal | None = None
) -> ExportRecord:
    """The export and its claims as they stand now. With ``record_as``, the look-up is in the
    citizen's access log: the holder sees when their export was checked."""
    export = await session.scalar(select(CredentialExport).where(CredentialExport.id == export_id))
    if export is None:
        raise NotFound(NOT_FOUND)
    key = {"citizen_id": export.citizen_id, "export_id": export.id}
    claim_ids = list(await session.scalars(select(CredentialExportEntry.claim_id).filter_by(**key)))
    revoked_at = await session.scalar(
        select(CredentialExportRevocation.revoked_at).filter_by(**key)
    )
    claims = await load_claims(
        session, Claim.citizen_id == export.citizen_id, Claim.claim_id.in_(claim_ids)
    )
    endorsement_ids = list(
        await session.scalars(select(CredentialExportEndorsement.endorsement_id).filter_by(**key))
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
    return ExportRecord(export, claim_ids, claims, revoked_at, endorsement_ids)


@dataclass(frozen=True)
class ExportSummary:
    """One export as its citizen sees it in their list."""

    export_id: uuid.UUID
    created_at: datetime
    valid_until: datetime
    basis: AccessBasis  # SELF: the citizen made it; LINK: a share link's holder did
    language: Language
    credentials: int
    revoked_at: datetime | None
    format: Format = Format.LDP_VC
    offer_id: uuid.UUID | None = None  # the wallet offer it answered

    @property
    def cursor(self) -> str:
        return encode_cursor(self.created_at, self.export_id)


_SUMMARY = (
    select(
        CredentialExport.id,
        CredentialExport.created_at,
        CredentialExport.valid_until,
        CredentialExport.basis,
        CredentialExport.language,
        select(func.count())
        .where(
            CredentialExportEntry.citizen_id == CredentialExport.citizen_id,
            CredentialExportEntry.export_id == CredentialExport.id,
        )
        .scalar_subquery()
        .label("credentials"),
        CredentialExportRevocation.revoked_at,
        CredentialExport.format,
        CredentialExport.offer_id,
    )
    .outerjoin(
        CredentialExportRevocation,
        (CredentialExportRevocation.citizen_id == CredentialExport.citizen_id)
        & (CredentialExportRevocation.export_id == CredentialExport.id),
    )
    .order_by(CredentialExport.created_at.desc(), CredentialExport.id.desc())
)


def _summary(row: Any) -> ExportSummary:
    return ExportSummary(
        export_id=row.id,
        created_at=row.created_at,
        valid_until=row.valid_until,
        basis=AccessBasis(row.basis),
        language=Language(row.language),
        credentials=row.credentials,
        revoked_at=row.revoked_at,
        format=Format(row.format),
        offer_id=row.offer_id,
    )


@dataclass(frozen=True)
class ExportPage:
    items: list[ExportSummary]
    has_next_page: bool
    end_cursor: str | None


async def exports_of(
    session: AsyncSession,
    citizen_id: uuid.UUID,
    *,
    limit: int | None = None,
    after: str | None = None,
) -> list[ExportSummary]:
    """The citizen's exports, newest first, from ``after`` (a cursor) on."""
    statement = _SUMMARY.where(CredentialExport.citizen_id == citizen_id)
    if after:
        stamp, last_id = decode_cursor(after)
        statement = statement.where(
            tuple_(CredentialExport.created_at, CredentialExport.id) < tuple_(stamp, last_id)
        )
    return [_summary(row) for row in await session.execute(statement.limit(limit))]


async def citizen_exports(
    session: AsyncSession, principal: Principal, hmac_key: bytes, *, first: int, after: str | None
) -> ExportPage:
    """Every export of the citizen's passport, newest first: theirs and their links'."""
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    if citizen_id is None:
        return ExportPage([], False, None)
    rows = await exports_of(session, citizen_id, limit=first + 1, after=after)
    page = rows[:first]
    return ExportPage(
        items=page,
        has_next_page=len(rows) > first,
        end_cursor=page[-1].cursor if page else None,
    )


async def revoke_export(
    session: AsyncSession, principal: Principal, hmac_key: bytes, export_id: uuid.UUID
) -> ExportSummary:
    """Idempotent. From the next status-list read on, every credential in the export, and
    the export itself, verify as revoked. Only the citizen whose passport it is can."""
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    if citizen_id is None:
        raise NotFound(NO_SUCH_EXPORT)
    exists = await session.scalar(
        select(CredentialExport.id).where(
            CredentialExport.citizen_id == citizen_id, CredentialExport.id == export_id
        )
    )
    if exists is None:
        raise NotFound(NO_SUCH_EXPORT)
    await session.execute(
        pg_insert(CredentialExportRevocation)
        .values(citizen_id=citizen_id, export_id=export_id, revoked_at=clock.now())
        .on_conflict_do_nothing(index_elements=["citizen_id", "export_id"])
    )
    row = (
        await session.execute(
            _SUMMARY.where(
                CredentialExport.citizen_id == citizen_id, CredentialExport.id == export_id
            )
        )
    ).one()
    return _summary(row)
