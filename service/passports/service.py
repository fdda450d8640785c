"""The passport read: who may read it, what they see, and the record of every read.

A read costs a constant number of statements whatever the passport size: find the citizen,
check the basis, one SELECT for all claims, one INSERT for the access record.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.policy import require_reader
from service.auth.principal import Principal
from service.citizens.service import find_citizen
from service.claims.views import ClaimView, load_claims
from service.errors import NotAuthorized, NotFound
from service.models import AccessRecord, Claim, Organisation
from service.models.enums import AccessBasis, ClaimStatus, LearningContext, OrganisationKind
from service.organisations.service import active_legal_basis
from service.taxonomy.search import CompetenceRef
from service.validation import validate

NOT_FOUND = "no passport found for this citizen"


class PassportFilter(BaseModel):
    """Claim filters apply before grouping; ``used_since`` applies to the grouped competence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statuses: frozenset[ClaimStatus] | None = None
    skill_types: frozenset[str] | None = None
    issuer_kinds: frozenset[OrganisationKind] | None = None
    learning_contexts: frozenset[LearningContext] | None = None
    used_since: date | None = None


class ReadPurpose(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    purpose: str = Field(min_length=3, max_length=500)
    legal_basis: str = Field(min_length=2, max_length=64)


@dataclass(frozen=True)
class VoucherCount:
    organisation_kind: str
    organisations: int


@dataclass(frozen=True)
class PassportCompetence:
    competence: CompetenceRef
    status: ClaimStatus
    highest_level: ClaimView | None  # the claim holding the highest level among current claims
    first_acquired_on: date
    most_recent_use: date
    distinct_organisations: int
    vouchers: list[VoucherCount]
    claims: list[ClaimView]


@dataclass(frozen=True)
class Passport:
    citizen_id: uuid.UUID | None  # None: nobody has vouched for this citizen yet
    competences: list[PassportCompetence]
    read_at: datetime
    basis: AccessBasis
    claim_count: int = field(default=0)


STATUS_ORDER = (
    ClaimStatus.ACTIVE,
    ClaimStatus.EXPIRED,
    ClaimStatus.SUPERSEDED,
    ClaimStatus.REVOKED,
)


def aggregate(
    claims: Iterable[ClaimView], used_since: date | None = None
) -> list[PassportCompetence]:
    """Group claims per competence. Only current (active) claims vouch; the rest stay as history."""
    grouped: dict[int, list[ClaimView]] = {}
    for claim in claims:
        grouped.setdefault(claim.competence.id, []).append(claim)
    result = []
    for items in grouped.values():
        active = [c for c in items if c.status is ClaimStatus.ACTIVE]
        status = min((c.status for c in items), key=STATUS_ORDER.index)
        basis = active or items
        ranked = [c for c in basis if c.proficiency_rank is not None]
        organisations = {(c.issuer.id, c.issuer.kind) for c in active}
        by_kind = Counter(kind for _, kind in organisations)
        most_recent_use = max(c.most_recent_use for c in basis)
        if used_since is not None and most_recent_use < used_since:
            continue
        result.append(
            PassportCompetence(
                competence=items[0].competence,
                status=status,
                highest_level=max(ranked, key=lambda c: c.proficiency_rank or 0)
                if ranked
                else None,
                first_acquired_on=min(c.acquired_on for c in items),
                most_recent_use=most_recent_use,
                distinct_organisations=len(organisations),
                vouchers=[VoucherCount(kind, n) for kind, n in sorted(by_kind.items())],
                claims=sorted(items, key=lambda c: c.recorded_at, reverse=True),
            )
        )
    result.sort(key=lambda pc: (STATUS_ORDER.index(pc.status), -pc.most_recent_use.toordinal()))
    return result


def _claim_conditions(citizen_id: uuid.UUID, flt: PassportFilter) -> list[object]:
    from service.models import Competence

    conditions: list[object] = [Claim.citizen_id == citizen_id]
    if flt.skill_types:
        conditions.append(Competence.skill_type.in_(sorted(flt.skill_types)))
    if flt.issuer_kinds:
        conditions.append(Organisation.kind.in_(sorted(k.value for k in flt.issuer_kinds)))
    if flt.learning_contexts:
        conditions.append(
            Claim.learning_context.in_(sorted(c.value for c in flt.learning_contexts))
        )
    return conditions


async def _build(
    session: AsyncSession, citizen_id: uuid.UUID, flt: PassportFilter, basis: AccessBasis
) -> Passport:
    claims = await load_claims(session, *_claim_conditions(citizen_id, flt))  # type: ignore[arg-type]
    if flt.statuses:
        claims = [c for c in claims if c.status in flt.statuses]
    return Passport(
        citizen_id=citizen_id,
        competences=aggregate(claims, flt.used_since),
        read_at=clock.now(),
        basis=basis,
        claim_count=len(claims),
    )


async def _record_access(
    session: AsyncSession,
    principal: Principal,
    passport: Passport,
    *,
    legal_basis_id: uuid.UUID | None = None,
    purpose: str | None = None,
) -> None:
    assert passport.citizen_id is not None
    await session.execute(
        insert(AccessRecord).values(
            citizen_id=passport.citizen_id,
            id=uuid.uuid4(),
            accessed_at=passport.read_at,
            principal_kind=principal.kind.value,
            subject=None if principal.is_citizen else principal.subject,
            organisation_id=principal.organisation_id,
            basis=passport.basis.value,
            legal_basis_id=legal_basis_id,
            purpose=purpose,
            operation="passport",
            competence_ids=[pc.competence.id for pc in passport.competences],
        )
    )


async def read_own_passport(
    session: AsyncSession, principal: Principal, hmac_key: bytes, flt: PassportFilter
) -> Passport:
    if not principal.is_citizen or principal.insz is None:
        raise NotAuthorized("only a citizen has a passport of their own")
    citizen_id = await find_citizen(session, principal.insz, hmac_key)
    if citizen_id is None:  # nobody has vouched for anything yet: an empty passport
        return Passport(None, [], clock.now(), AccessBasis.SELF)
    passport = await _build(session, citizen_id, flt, AccessBasis.SELF)
    await _record_access(session, principal, passport)
    return passport


async def read_passport(
    session: AsyncSession,
    principal: Principal,
    hmac_key: bytes,
    *,
    insz: str | None,
    citizen_id: uuid.UUID | None,
    purpose: str | None,
    legal_basis: str | None,
    flt: PassportFilter,
) -> Passport:
    """A reader's read under a legal basis; every refusal looks like "not found"."""
    if principal.is_citizen:
        return await read_own_passport(session, principal, hmac_key, flt)
    try:
        organisation_id = require_reader(principal)
    except NotAuthorized:
        raise NotFound(NOT_FOUND) from None
    stated = validate(ReadPurpose, {"purpose": purpose or "", "legal_basis": legal_basis or ""})
    basis = await active_legal_basis(session, organisation_id, stated.legal_basis)
    if basis is None:
        raise NotFound(NOT_FOUND)
    if insz is not None:
        found = await find_citizen(session, insz, hmac_key)
    else:
        found = (
            citizen_id if citizen_id is not None and await _exists(session, citizen_id) else None
        )
    if found is None:
        raise NotFound(NOT_FOUND)
    passport = await _build(session, found, flt, AccessBasis.LEGAL_BASIS)
    await _record_access(
        session, principal, passport, legal_basis_id=basis.id, purpose=stated.purpose
    )
    return passport


async def _exists(session: AsyncSession, citizen_id: uuid.UUID) -> bool:
    from service.models import Citizen

    return await session.get(Citizen, citizen_id) is not None
