"""The passport read: who may read it, what they see, and the record of every read.

A read costs a constant number of statements whatever the passport size: find the citizen,
check the basis, one SELECT for all claims, one INSERT for the access record.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.policy import require_reader
from service.auth.principal import Principal
from service.citizens.service import find_citizen
from service.claims.views import ClaimView, load_claims
from service.errors import NotAuthorized, NotFound
from service.models import AccessRecord, Citizen, Claim, Organisation
from service.models.enums import (
    AccessBasis,
    ClaimStatus,
    LearningContext,
    OrganisationKind,
    PrincipalKind,
)
from service.organisations.service import LegalBasisCode, active_legal_basis
from service.taxonomy.search import CompetenceRef
from service.validation import Insz, Statement, validate

NOT_FOUND = "no passport found for this citizen"


class PassportFilter(BaseModel):
    """Claim filters apply before grouping; ``used_since`` applies to the grouped competence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statuses: frozenset[ClaimStatus] | None = None
    skill_types: frozenset[str] | None = None
    issuer_kinds: frozenset[OrganisationKind] | None = None
    learning_contexts: frozenset[LearningContext] | None = None
    used_since: date | None = None


class CitizenSelector(BaseModel):
    """A reader names the citizen by INSZ or by the passport's id; exactly one."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    insz: Insz | None = None
    id: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.insz is None) == (self.id is None):
            raise ValueError("give exactly one of insz or id")
        return self

    @property
    def citizen_id(self) -> uuid.UUID | None:
        """None for an id that is no UUID: such a passport does not exist."""
        try:
            return uuid.UUID(self.id) if self.id is not None else None
        except ValueError:
            return None


class ReadPurpose(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    purpose: Annotated[Statement, Field(min_length=3, max_length=500)]
    legal_basis: LegalBasisCode


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
    # The role this read used: a client holding both scopes reads as a reader.
    role = PrincipalKind.CITIZEN if passport.basis is AccessBasis.SELF else PrincipalKind.READER
    await session.execute(
        insert(AccessRecord).values(
            citizen_id=passport.citizen_id,
            id=uuid.uuid4(),
            accessed_at=passport.read_at,
            principal_kind=role.value,
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
    citizen: Mapping[str, Any],
    purpose: str | None,
    legal_basis: str | None,
    flt: PassportFilter,
) -> Passport:
    """A reader's read under a legal basis; every refusal looks like "not found".

    A citizen may name only themselves here: answering with their own passport whatever they
    asked for would let an app show one person's competences as another's.
    """
    selector = validate(CitizenSelector, citizen, prefix="citizen")
    if principal.is_citizen:
        if not await _names_self(session, principal, hmac_key, selector):
            raise NotFound(NOT_FOUND)
        return await read_own_passport(session, principal, hmac_key, flt)
    try:
        organisation_id = require_reader(principal)
    except NotAuthorized:
        raise NotFound(NOT_FOUND) from None
    stated = validate(
        ReadPurpose, {"purpose": purpose or "", "legal_basis": legal_basis or ""}, prefix=""
    )
    basis = await active_legal_basis(session, organisation_id, stated.legal_basis)
    if basis is None:
        raise NotFound(NOT_FOUND)
    found = await _find(session, hmac_key, selector)
    if found is None:
        raise NotFound(NOT_FOUND)
    passport = await _build(session, found, flt, AccessBasis.LEGAL_BASIS)
    await _record_access(
        session, principal, passport, legal_basis_id=basis.id, purpose=stated.purpose
    )
    return passport


async def _find(
    session: AsyncSession, hmac_key: bytes, selector: CitizenSelector
) -> uuid.UUID | None:
    if selector.insz is not None:
        return await find_citizen(session, selector.insz, hmac_key)
    wanted = selector.citizen_id
    if wanted is None or await session.get(Citizen, wanted) is None:
        return None
    return wanted


async def _names_self(
    session: AsyncSession, principal: Principal, hmac_key: bytes, selector: CitizenSelector
) -> bool:
    if principal.insz is None:
        return False
    if selector.insz is not None:
        return selector.insz == principal.insz
    own = await find_citizen(session, principal.insz, hmac_key)
    return own is not None and own == selector.citizen_id
