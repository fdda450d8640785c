"""The citizen's access log: every read of their passport, newest first.

Only the citizen reads it (``own_citizen_id`` refuses anyone else); a page costs four queries
whatever its size: the records, their grants, and the competences they returned.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal
from service.citizens.service import own_citizen_id
from service.consent.service import OrganisationRef
from service.models import AccessGrant, AccessRecord, LegalBasis, Organisation
from service.models.enums import AccessBasis, PrincipalKind
from service.pagination import decode_cursor, encode_cursor
from service.taxonomy.search import CompetenceRef, competences_by_id


@dataclass(frozen=True)
class GrantRef:
    grant_id: uuid.UUID
    purpose: str


@dataclass(frozen=True)
class LegalBasisRef:
    code: str
    reference: str


@dataclass(frozen=True)
class AccessLogEntry:
    id: uuid.UUID
    accessed_at: datetime
    principal_kind: PrincipalKind
    client_id: str | None  # the reading organisation's system
    organisation: OrganisationRef | None
    basis: AccessBasis
    legal_basis: LegalBasisRef | None
    grants: list[GrantRef]
    purpose: str | None
    operation: str
    competences: list[CompetenceRef]

    @property
    def cursor(self) -> str:
        return encode_cursor(self.accessed_at, self.id)


@dataclass(frozen=True)
class AccessLogPage:
    items: list[AccessLogEntry]
    has_next_page: bool
    end_cursor: str | None


async def load_access_log(
    session: AsyncSession, citizen_id: uuid.UUID, *, first: int | None, after: str | None
) -> AccessLogPage:
    """Newest first; ``first`` None reads it all (the data export)."""
    conditions = [AccessRecord.citizen_id == citizen_id]
    if after:
        stamp, last_id = decode_cursor(after)
        conditions.append(
            tuple_(AccessRecord.accessed_at, AccessRecord.id) < tuple_(stamp, last_id)
        )
    statement = (
        select(AccessRecord, Organisation, LegalBasis)
        .outerjoin(Organisation, Organisation.id == AccessRecord.organisation_id)
        .outerjoin(LegalBasis, LegalBasis.id == AccessRecord.legal_basis_id)
        .where(*conditions)
        .order_by(AccessRecord.accessed_at.desc(), AccessRecord.id.desc())
    )
    if first is not None:
        statement = statement.limit(first + 1)
    rows = list(await session.execute(statement))
    page = rows if first is None else rows[:first]
    grant_ids = sorted({gid for record, _, _ in page for gid in record.grant_ids})
    purposes: dict[uuid.UUID, str] = {}
    if grant_ids:
        found = await session.execute(
            select(AccessGrant.grant_id, AccessGrant.purpose).where(
                AccessGrant.citizen_id == citizen_id, AccessGrant.grant_id.in_(grant_ids)
            )
        )
        purposes = {grant_id: purpose for grant_id, purpose in found}
    wanted = sorted({cid for record, _, _ in page for cid in record.competence_ids})
    refs = await competences_by_id(session, wanted) if wanted else {}
    items = [
        AccessLogEntry(
            id=record.id,
            accessed_at=record.accessed_at,
            principal_kind=PrincipalKind(record.principal_kind),
            client_id=record.subject,
            organisation=OrganisationRef(org.id, org.name, org.kind, org.enterprise_number)
            if org
            else None,
            basis=AccessBasis(record.basis),
            legal_basis=LegalBasisRef(basis.code, basis.reference) if basis else None,
            grants=[GrantRef(gid, purposes[gid]) for gid in record.grant_ids if gid in purposes],
            purpose=record.purpose,
            operation=record.operation,
            competences=[refs[cid] for cid in record.competence_ids if cid in refs],
        )
        for record, org, basis in page
    ]
    return AccessLogPage(
        items=items,
        has_next_page=first is not None and len(rows) > first,
        end_cursor=items[-1].cursor if items else None,
    )


async def access_log(
    session: AsyncSession,
    principal: Principal,
    hmac_key: bytes,
    *,
    first: int,
    after: str | None,
) -> AccessLogPage:
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    if citizen_id is None:
        return AccessLogPage([], has_next_page=False, end_cursor=None)
    return await load_access_log(session, citizen_id, first=first, after=after)
