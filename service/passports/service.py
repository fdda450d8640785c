"""The passport read: who may read it, what they see, and the record of every read.

A read costs a constant number of statements whatever the passport size: find the citizen,
check the basis, one SELECT for all claims, one INSERT for the access record.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, NamedTuple, Protocol, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import (
    LargeBinary,
    Text,
    bindparam,
    cast,
    column,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.policy import may_hold_legal_basis, require_reader
from service.auth.principal import Principal
from service.citizens.service import (
    BY_HASH,
    find_citizen,
    own_citizen_id,
    share_citizen_lock,
    share_citizen_locks,
)
from service.claims.views import (
    ClaimView,
    PassportClaimsFilter,
    load_passport_claims,
    load_passports_claims,
)
from service.consent.service import GrantView, active_grants, active_grants_of_many, link_grant
from service.db.raw import DriverSql, driver_sql, fetchrow, fetchval
from service.endorsements.views import for_readers
from service.errors import DomainError, NotAuthorized, NotFound, ValidationFailed
from service.identity.numbers import insz_hash
from service.models import AccessRecord, Citizen, CitizenIdentity
from service.models.enums import (
    AccessBasis,
    ClaimStatus,
    LearningContext,
    OrganisationKind,
    PrincipalKind,
)
from service.organisations.service import (
    ACTIVE_BASIS,
    LegalBasisCode,
    LegalBasisView,
    active_basis_values,
    active_basis_view,
    active_legal_basis,
)
from service.taxonomy.search import CompetenceRef
from service.validation import Insz, Purpose, validate

NOT_FOUND = "no passport found for this citizen"


def as_refusal(exc: DomainError) -> DomainError:
    """What a refused read shows: bad input as it is, anything else as "not found", since
    whether the passport exists is itself personal data."""
    return exc if isinstance(exc, ValidationFailed) else NotFound(NOT_FOUND)


NOBODY = uuid.UUID(int=0)


class PassportFilter(BaseModel):
    """Claim filters apply before grouping; ``used_since`` applies to the grouped competence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statuses: frozenset[ClaimStatus] | None = None
    skill_types: frozenset[str] | None = None
    issuer_kinds: frozenset[OrganisationKind] | None = None
    learning_contexts: frozenset[LearningContext] | None = None
    used_since: date | None = None
    # Chosen competences (a wallet offer for some of them); None: every competence in scope.
    competence_ids: frozenset[int] | None = None


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
    """A legal-basis read names its basis and must state a purpose; a consent read may."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    purpose: Purpose | None = None
    legal_basis: LegalBasisCode | None = None

    @model_validator(mode="after")
    def _purpose_for_legal_basis(self) -> Self:
        if self.legal_basis is not None and self.purpose is None:
            raise ValueError("a read under a legal basis must state its purpose")
        return self


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
    # Endorsements in force of the current claims, as this read shows them: apart from
    # vouching, since an endorser only seconds what an issuer stated.
    endorsements: int = 0
    endorsing_organisations: int = 0


@dataclass(frozen=True)
class Rendered:
    """A passport's answer as one statement built it (service/schema/passports/compiled.py):
    the JSON text asked for, and what it showed at the level of competences (for the access log)."""

    data: orjson.Fragment
    competence_ids: tuple[int, ...]
    recorded: bool = False  # the statement also wrote the read's access record (``record``)


class Render(Protocol):
    """Builds the answers of many passports in one statement, in place of loading their claims
    (``_read``): each citizen under their own scope (None: the whole passport), the claims
    narrowed by ``claims``, then by ``flt``'s statuses and date as ``_assemble`` does."""

    async def __call__(
        self,
        session: AsyncSession,
        scopes: Mapping[uuid.UUID, frozenset[int] | None],
        claims: PassportClaimsFilter,
        flt: PassportFilter,
        basis: AccessBasis,
        read_at: datetime,
        record: Mapping[str, Any] | None = None,
    ) -> dict[uuid.UUID, Rendered]: ...


@dataclass(frozen=True)
class Passport:
    citizen_id: uuid.UUID | None  # None: nobody has written anything about this citizen yet
    competences: list[PassportCompetence]  # verified: vouched for by organisations
    self_declared: list[ClaimView]  # the citizen's own, current declarations; never verified
    read_at: datetime
    basis: AccessBasis
    grants: tuple[GrantView, ...] = ()  # the consents a consent or share-link read relied on
    # Built by a compiled statement: then the lists above are left empty.
    rendered: Rendered | None = None

    @property
    def scope(self) -> frozenset[int] | None:
        """The competences this read could show at all; None: the whole passport."""
        if self.basis in (AccessBasis.CONSENT, AccessBasis.LINK):
            return _scope(self.grants)
        return None

    @property
    def competence_ids(self) -> list[int]:
        """What the read returned, at the level of competences (for the access log)."""
        if self.rendered is not None:
            return list(self.rendered.competence_ids)
        shown = {pc.competence.id for pc in self.competences}
        shown.update(claim.competence.id for claim in self.self_declared)
        return sorted(shown)


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
        organisations = {(c.issuer.id, c.issuer.kind) for c in active if c.issuer}
        by_kind = Counter(kind for _, kind in organisations)
        endorsements = [e for c in active for e in c.endorsements if e.revoked_at is None]
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
                endorsements=len(endorsements),
                endorsing_organisations=len({e.endorser.id for e in endorsements}),
            )
        )
    result.sort(key=lambda pc: (STATUS_ORDER.index(pc.status), -pc.most_recent_use.toordinal()))
    return result


def _claims_filter(flt: PassportFilter, scope: frozenset[int] | None) -> PassportClaimsFilter:
    """A grant for chosen competences (``scope``): nothing else is even looked at."""
    chosen = flt.competence_ids
    return PassportClaimsFilter(
        competence_ids=scope if chosen is None else chosen if scope is None else scope & chosen,
        skill_types=flt.skill_types or None,
        issuer_kinds=frozenset(k.value for k in flt.issuer_kinds) if flt.issuer_kinds else None,
        learning_contexts=frozenset(c.value for c in flt.learning_contexts)
        if flt.learning_contexts
        else None,
    )


def _scope(grants: Sequence[GrantView]) -> frozenset[int] | None:
    """What the grants cover together: everything if any covers the whole passport."""
    covered: set[int] = set()
    for grant in grants:
        if grant.competence_ids is None:
            return None
        covered |= grant.competence_ids
    return frozenset(covered)


async def _read(
    session: AsyncSession,
    principal: Principal,
    citizen_id: uuid.UUID,
    flt: PassportFilter,
    basis: AccessBasis,
    grants: Sequence[GrantView] = (),
    render: Render | None = None,
    *,
    operation: str,
    legal_basis_id: uuid.UUID | None = None,
    purpose: str | None = None,
) -> Passport | None:
    """One citizen's passport, and the read in their access log; None: the citizen was erased
    while this read waited for their lock, so there is nothing to show. Compiled (``render``),
    the statement that builds the answer also writes the record: one round trip fewer."""
    narrowed = _claims_filter(flt, _basis_scope(basis, grants))
    await share_citizen_lock(session, citizen_id, generic_plans=True)
    if render is None:
        claims = await load_passport_claims(session, citizen_id, narrowed)
        passport = _assemble(citizen_id, claims, flt, basis, grants)
        recorded = await record_access(
            session,
            principal,
            passport,
            operation=operation,
            legal_basis_id=legal_basis_id,
            purpose=purpose,
        )
        return passport if recorded else None
    read_at = clock.now()
    record = _record_columns(
        principal,
        citizen_id=citizen_id,
        basis=basis,
        read_at=read_at,
        grant_ids=[grant.grant_id for grant in grants],
        competence_ids=(),  # what the statement shows, it counts itself
        operation=operation,
        legal_basis_id=legal_basis_id,
        purpose=purpose,
    )
    scopes = {citizen_id: narrowed.competence_ids}
    built = (await render(session, scopes, narrowed, flt, basis, read_at, record))[citizen_id]
    if not built.recorded:
        return None
    return Passport(citizen_id, [], [], read_at, basis, tuple(grants), built)


def _basis_scope(basis: AccessBasis, grants: Sequence[GrantView]) -> frozenset[int] | None:
    return _scope(grants) if basis in (AccessBasis.CONSENT, AccessBasis.LINK) else None


def _assemble(
    citizen_id: uuid.UUID,
    claims: Sequence[ClaimView],
    flt: PassportFilter,
    basis: AccessBasis,
    grants: Sequence[GrantView] = (),
) -> Passport:
    """The passport from its claims, loaded already narrowed to the read's scope; anyone but
    the citizen sees only the endorsements in force that the citizen did not hide."""
    if basis is not AccessBasis.SELF:
        claims = [for_readers(c) for c in claims]
    verified = [c for c in claims if not c.self_declared]
    if flt.statuses:
        verified = [c for c in verified if c.status in flt.statuses]
    declared = [
        c
        for c in claims
        if c.self_declared
        and c.status is ClaimStatus.ACTIVE
        and (not flt.statuses or ClaimStatus.ACTIVE in flt.statuses)
        and (flt.used_since is None or c.most_recent_use >= flt.used_since)
    ]
    return Passport(
        citizen_id=citizen_id,
        competences=aggregate(verified, flt.used_since),
        self_declared=sorted(declared, key=lambda c: c.recorded_at, reverse=True),
        read_at=clock.now(),
        basis=basis,
        grants=tuple(grants),
    )


async def record_access(
    session: AsyncSession,
    principal: Principal,
    passport: Passport,
    *,
    operation: str = "passport",
    legal_basis_id: uuid.UUID | None = None,
    purpose: str | None = None,
) -> bool:
    """Every read of a passport that returned it, in the citizen's access log. False: the
    citizen was erased while this read waited for their lock, so there is nothing to show."""
    record = _access_record(
        principal, passport, operation=operation, legal_basis_id=legal_basis_id, purpose=purpose
    )
    sql = _record_sql(tuple(record))
    record["exists_citizen_id"] = passport.citizen_id
    return await fetchval(session, sql, record) is not None


def _access_record(
    principal: Principal,
    passport: Passport,
    *,
    operation: str,
    legal_basis_id: uuid.UUID | None,
    purpose: str | None,
) -> dict[str, Any]:
    """The access log's record of one read, by column."""
    assert passport.citizen_id is not None
    return _record_columns(
        principal,
        citizen_id=passport.citizen_id,
        basis=passport.basis,
        read_at=passport.read_at,
        grant_ids=[grant.grant_id for grant in passport.grants],
        competence_ids=passport.competence_ids,
        operation=operation,
        legal_basis_id=legal_basis_id,
        purpose=purpose,
    )


def _record_columns(
    principal: Principal,
    *,
    citizen_id: uuid.UUID,
    basis: AccessBasis,
    read_at: datetime,
    grant_ids: Sequence[uuid.UUID],
    competence_ids: Sequence[int],
    operation: str,
    legal_basis_id: uuid.UUID | None,
    purpose: str | None,
) -> dict[str, Any]:
    # The role this read used: a client holding both scopes reads as a reader.
    role = {
        AccessBasis.SELF: PrincipalKind.CITIZEN,
        AccessBasis.LINK: PrincipalKind.LINK,
        AccessBasis.EXPORT: PrincipalKind.VERIFIER,
    }.get(basis, PrincipalKind.READER)
    reader = role is PrincipalKind.READER
    return {
        "citizen_id": citizen_id,
        "id": uuid.uuid4(),
        "accessed_at": read_at,
        "principal_kind": role.value,
        "subject": principal.subject if reader else None,
        "organisation_id": principal.organisation_id if reader else None,
        "basis": basis.value,
        "legal_basis_id": legal_basis_id,
        "grant_ids": list(grant_ids),
        "purpose": purpose,
        "operation": operation,
        "competence_ids": list(competence_ids),
    }


class ConsentRead(NamedTuple):
    """A read under a citizen's grants that is no passport: a part of it, looked at with
    others' (a team check), recorded as any read is. (A tuple: a check makes thousands.)"""

    citizen_id: uuid.UUID
    grant_ids: Sequence[uuid.UUID]
    competence_ids: Sequence[int] | None  # what was looked at; None: all the read looked at


# Many consent reads in one statement: the columns all share given once, the rest as arrays
# (a text array for the per-read lists, which need not be of one length). Joined with
# ``citizens``, not a correlated EXISTS, as ``_record_many_sql``: Citus runs no correlated
# subquery over a set-returning function.
_CONSENT_READS = text(
    """
    INSERT INTO access_records
      (citizen_id, id, accessed_at, principal_kind, subject, organisation_id, basis,
       legal_basis_id, grant_ids, purpose, operation, competence_ids)
    SELECT c.citizen_id, gen_random_uuid(), :at, :kind, :subject, :organisation, :basis, NULL,
           CAST(r.grant_ids AS uuid[]), :purpose, :operation,
           coalesce(CAST(r.competence_ids AS integer[]), CAST(:looked_at AS integer[]))
    FROM unnest(CAST(:citizens AS uuid[]), CAST(:grants AS text[]), CAST(:competences AS text[]))
      AS r(citizen_id, grant_ids, competence_ids)
    JOIN citizens c ON c.citizen_id = r.citizen_id
    RETURNING citizen_id
    """
)


def _array(values: Iterable[object]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


async def record_consent_reads(
    session: AsyncSession,
    principal: Principal,
    reads: Sequence[ConsentRead],
    *,
    read_at: datetime,
    operation: str,
    purpose: str | None,
    looked_at: Sequence[int],
) -> set[uuid.UUID]:
    """Each read in its citizen's access log, in one statement; the citizens recorded (one
    erased meanwhile is not, and nothing of theirs may be shown). The caller holds their
    shared locks, as ``read_passports`` does."""
    if not reads:
        return set()
    shared = _record_columns(
        principal,
        citizen_id=reads[0].citizen_id,
        basis=AccessBasis.CONSENT,
        read_at=read_at,
        grant_ids=(),
        competence_ids=(),
        operation=operation,
        legal_basis_id=None,
        purpose=purpose,
    )
    written = await session.execute(
        _CONSENT_READS,
        {
            "at": read_at,
            "kind": shared["principal_kind"],
            "subject": shared["subject"],
            "organisation": shared["organisation_id"],
            "basis": shared["basis"],
            "purpose": purpose,
            "operation": operation,
            "looked_at": list(looked_at),
            "citizens": [read.citizen_id for read in reads],
            "grants": [_array(read.grant_ids) for read in reads],
            "competences": [
                None if read.competence_ids is None else _array(read.competence_ids)
                for read in reads
            ],
        },
    )
    return set(written.scalars())


@cache
def _record_sql(columns: tuple[str, ...]) -> DriverSql:
    """INSERT .. SELECT of one access record, only while the citizen exists, RETURNING its id;
    compiled once to PostgreSQL's SQL (``driver_sql``)."""
    table = AccessRecord.__table__
    values = select(*(bindparam(k, type_=table.c[k].type) for k in columns)).where(
        exists().where(
            Citizen.citizen_id
            == bindparam("exists_citizen_id", type_=Citizen.__table__.c.citizen_id.type)
        )
    )
    return driver_sql(
        insert(AccessRecord).from_select(list(columns), values).returning(AccessRecord.id)
    )


async def read_own_passport(
    session: AsyncSession,
    principal: Principal,
    hmac_key: bytes,
    flt: PassportFilter,
    *,
    operation: str = "passport",
    render: Render | None = None,
) -> Passport:
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    if citizen_id is None:  # nobody has written anything yet: an empty passport
        return Passport(None, [], [], clock.now(), AccessBasis.SELF)
    passport = await _read(
        session, principal, citizen_id, flt, AccessBasis.SELF, render=render, operation=operation
    )
    if passport is None:
        return Passport(None, [], [], clock.now(), AccessBasis.SELF)  # erased meanwhile
    return passport


# Who reads when a wallet redeems the citizen's offer: the citizen, through their wallet.
WALLET = Principal(kind=PrincipalKind.CITIZEN, subject="wallet")


async def read_for_wallet(
    session: AsyncSession, citizen_id: uuid.UUID, flt: PassportFilter, *, operation: str
) -> Passport:
    """The citizen's passport as their wallet receives it. The wallet holds the citizen's offer
    (its pre-authorized code and the transaction code only the citizen saw), so this is the
    citizen's own read, and in their access log as one; the caller holds the citizen's lock."""
    passport = await _read(session, WALLET, citizen_id, flt, AccessBasis.SELF, operation=operation)
    if passport is None:
        raise NotFound(NOT_FOUND)
    return passport


async def read_shared_passport(
    session: AsyncSession,
    principal: Principal,
    flt: PassportFilter,
    *,
    operation: str = "passport",
    render: Render | None = None,
) -> Passport:
    """What a share link's holder sees: exactly what its grant covers, while it is active."""
    grant = await link_grant(session, principal)
    if grant is None:
        raise NotFound(NOT_FOUND)
    passport = await _read(
        session,
        principal,
        grant.citizen_id,
        flt,
        AccessBasis.LINK,
        [grant],
        render,
        operation=operation,
    )
    if passport is None:
        raise NotFound(NOT_FOUND)
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
    legal_basis_kinds: Iterable[str],
    operation: str = "passport",
    render: Render | None = None,
) -> Passport:
    """A reader's read, under a legal basis or under the citizen's consent; every refusal
    looks like "not found", so a refusal tells nothing about whether the passport exists.

    A citizen may name only themselves here: answering with their own passport whatever they
    asked for would let an app show one person's competences as another's.
    """
    selector = validate(CitizenSelector, citizen, prefix="citizen")
    if principal.is_citizen:
        if not await _names_self(session, principal, hmac_key, selector):
            raise NotFound(NOT_FOUND)
        return await read_own_passport(
            session, principal, hmac_key, flt, operation=operation, render=render
        )
    try:
        organisation_id = require_reader(principal)
    except NotAuthorized:
        raise NotFound(NOT_FOUND) from None
    stated = validate(ReadPurpose, {"purpose": purpose, "legal_basis": legal_basis}, prefix="")
    if stated.legal_basis is not None:
        if not may_hold_legal_basis(principal.organisation_kind, legal_basis_kinds):
            raise NotFound(NOT_FOUND)
        basis, found = await _basis_and_citizen(
            session, organisation_id, stated.legal_basis, hmac_key, selector
        )
        if basis is None or found is None:
            raise NotFound(NOT_FOUND)
        passport = await _read(
            session,
            principal,
            found,
            flt,
            AccessBasis.LEGAL_BASIS,
            render=render,
            operation=operation,
            legal_basis_id=basis.id,
            purpose=stated.purpose,
        )
        if passport is None:
            raise NotFound(NOT_FOUND)
        return passport
    found = await _find(session, hmac_key, selector)
    # Asked for a citizen who does not exist, too, so both take the same time to refuse.
    grants = await active_grants(session, found or NOBODY, organisation_id)
    if found is None or not grants:
        raise NotFound(NOT_FOUND)
    passport = await _read(
        session,
        principal,
        found,
        flt,
        AccessBasis.CONSENT,
        grants,
        render,
        operation=operation,
        purpose=stated.purpose,
    )
    if passport is None:
        raise NotFound(NOT_FOUND)
    return passport


# A reader's legal basis and the citizen they name by national number, in one round trip: the
# basis's columns and the citizen's id (NULL: nobody known by that number); no row, no basis.
_BASIS_AND_CITIZEN = driver_sql(ACTIVE_BASIS.add_columns(BY_HASH.scalar_subquery()))


async def _basis_and_citizen(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    code: str,
    hmac_key: bytes,
    selector: CitizenSelector,
) -> tuple[LegalBasisView | None, uuid.UUID | None]:
    if selector.insz is None:
        basis = await active_legal_basis(session, organisation_id, code)
        return basis, None if basis is None else await _find(session, hmac_key, selector)
    values = {**active_basis_values(organisation_id, code), "h": insz_hash(selector.insz, hmac_key)}
    row = await fetchrow(session, _BASIS_AND_CITIZEN, values)
    return (None, None) if row is None else (active_basis_view(row), row[-1])


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
        return _is_self(principal, selector, None)
    own = await find_citizen(session, principal.insz, hmac_key)
    return _is_self(principal, selector, own)


def _is_self(principal: Principal, selector: CitizenSelector, own: uuid.UUID | None) -> bool:
    """Whether a citizen caller (``own``: their citizen id, if any) names themselves."""
    if principal.insz is None:
        return False
    if selector.insz is not None:
        return selector.insz == principal.insz
    return own is not None and own == selector.citizen_id


MAX_PASSPORTS = 100
PASSPORTS_OPERATION = "passports"

PassportOutcome = Passport | DomainError


async def read_passports(
    session: AsyncSession,
    principal: Principal,
    hmac_key: bytes,
    *,
    citizens: Sequence[Mapping[str, Any]],
    purpose: str | None,
    legal_basis: str | None,
    flt: PassportFilter,
    legal_basis_kinds: Iterable[str],
    operation: str = PASSPORTS_OPERATION,
    render: Render | None = None,
) -> list[PassportOutcome]:
    """``read_passport`` for up to ``MAX_PASSPORTS`` citizens at once, one outcome per position
    in the order asked (a citizen named twice is answered at both, read and recorded once).

    A batch, not a loop: a fixed number of statements whatever the number of citizens. The
    shared citizen locks are taken in lock-key order, the order batch writers take theirs in.
    """
    if len(citizens) > MAX_PASSPORTS:
        raise ValidationFailed.one(
            "citizens", f"at most {MAX_PASSPORTS} citizens at once", "too_many"
        )
    selectors: list[CitizenSelector | DomainError] = []
    for position, citizen in enumerate(citizens):
        try:
            selectors.append(validate(CitizenSelector, citizen, prefix=f"citizens.{position}"))
        except ValidationFailed as exc:
            selectors.append(exc)
    if principal.is_citizen:
        return await _read_own_many(session, principal, hmac_key, selectors, flt, operation, render)
    try:
        organisation_id = require_reader(principal)
    except NotAuthorized:
        return [s if isinstance(s, DomainError) else NotFound(NOT_FOUND) for s in selectors]
    stated = validate(ReadPurpose, {"purpose": purpose, "legal_basis": legal_basis}, prefix="")
    legal_basis_id: uuid.UUID | None = None
    if stated.legal_basis is not None:
        held = (
            await active_legal_basis(session, organisation_id, stated.legal_basis)
            if may_hold_legal_basis(principal.organisation_kind, legal_basis_kinds)
            else None
        )
        if held is None:
            return [s if isinstance(s, DomainError) else NotFound(NOT_FOUND) for s in selectors]
        legal_basis_id = held.id
    wanted = [s for s in selectors if isinstance(s, CitizenSelector)]
    found = await find_many(session, hmac_key, wanted)
    ids = set(found.values())
    grants: dict[uuid.UUID, list[GrantView]]
    if legal_basis_id is not None:
        basis, grants = AccessBasis.LEGAL_BASIS, {citizen: [] for citizen in ids}
    else:  # only the citizens with an active grant to this reader
        basis, grants = (
            AccessBasis.CONSENT,
            await active_grants_of_many(session, ids, organisation_id),
        )
    shown = await _build_many(session, grants, flt, basis, render)
    records = [
        _access_record(
            principal,
            passport,
            operation=operation,
            legal_basis_id=legal_basis_id,
            purpose=stated.purpose,
        )
        for passport in shown.values()
    ]
    recorded = await _record_many(session, records)
    outcomes: list[PassportOutcome] = []
    for selector in selectors:
        if isinstance(selector, DomainError):
            outcomes.append(selector)
            continue
        named = found.get(selector_key(selector))
        passport = shown.get(named) if named is not None and named in recorded else None
        outcomes.append(passport or NotFound(NOT_FOUND))
    return outcomes


async def _read_own_many(
    session: AsyncSession,
    principal: Principal,
    hmac_key: bytes,
    selectors: Sequence[CitizenSelector | DomainError],
    flt: PassportFilter,
    operation: str,
    render: Render | None = None,
) -> list[PassportOutcome]:
    """A citizen may name only themselves, as in ``read_passport``; their passport is read
    (and recorded) once however often they name themselves."""
    wanted = [s for s in selectors if isinstance(s, CitizenSelector)]
    own = (
        await find_citizen(session, principal.insz, hmac_key)
        if principal.insz is not None and any(s.insz is None for s in wanted)
        else None
    )
    names_self = [not isinstance(s, DomainError) and _is_self(principal, s, own) for s in selectors]
    passport = (
        await read_own_passport(
            session, principal, hmac_key, flt, operation=operation, render=render
        )
        if any(names_self)
        else None
    )
    return [
        s if isinstance(s, DomainError) else passport if yes and passport else NotFound(NOT_FOUND)
        for s, yes in zip(selectors, names_self, strict=True)
    ]


def selector_key(selector: CitizenSelector) -> str:
    """How a selector is looked up in ``find_many``'s answer."""
    return f"insz:{selector.insz}" if selector.insz is not None else f"id:{selector.citizen_id}"


async def find_many(
    session: AsyncSession, hmac_key: bytes, selectors: Sequence[CitizenSelector]
) -> dict[str, uuid.UUID]:
    """``_find`` for many selectors in one statement, by ``_key``: the citizens known by
    these INSZ (through their keyed hash) and those that exist by these ids."""
    digests = {insz_hash(s.insz, hmac_key): s.insz for s in selectors if s.insz is not None}
    wanted = sorted({s.citizen_id for s in selectors if s.insz is None and s.citizen_id})
    if not digests and not wanted:
        return {}
    by_hash = select(CitizenIdentity.insz_hash, CitizenIdentity.citizen_id).where(
        CitizenIdentity.insz_hash.in_(list(digests))
    )
    by_id = select(literal(None, type_=LargeBinary), Citizen.citizen_id).where(
        Citizen.citizen_id.in_(wanted)
    )
    found: dict[str, uuid.UUID] = {}
    for digest, citizen in await session.execute(union_all(by_hash, by_id)):
        key = f"insz:{digests[bytes(digest)]}" if digest is not None else f"id:{citizen}"
        found[key] = citizen
    return found


async def _build_many(
    session: AsyncSession,
    grants: Mapping[uuid.UUID, Sequence[GrantView]],
    flt: PassportFilter,
    basis: AccessBasis,
    render: Render | None = None,
) -> dict[uuid.UUID, Passport]:
    """``_read``'s passports for many citizens, each under their own grants: the locks in one
    statement, the claims of all in another."""
    if not grants:
        return {}
    await share_citizen_locks(session, set(grants))
    scopes = {citizen: _basis_scope(basis, given) for citizen, given in grants.items()}
    if render is not None:
        read_at = clock.now()
        built = await render(session, scopes, _claims_filter(flt, None), flt, basis, read_at)
        return {
            citizen: Passport(citizen, [], [], read_at, basis, tuple(given), built[citizen])
            for citizen, given in grants.items()
        }
    claims = await load_passports_claims(session, scopes, _claims_filter(flt, None))
    return {
        citizen: _assemble(citizen, claims[citizen], flt, basis, given)
        for citizen, given in grants.items()
    }


async def _record_many(session: AsyncSession, records: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
    """``record_access`` for many reads in one statement: the citizens whose records were
    written (the others were erased while the read waited for their lock)."""
    if not records:
        return set()
    connection = await session.connection()
    written = await connection.exec_driver_sql(
        _record_many_sql(tuple(records[0])), (orjson.dumps(list(records), default=str).decode(),)
    )
    return {row[0] for row in written}


@cache
def _record_many_sql(columns: tuple[str, ...]) -> str:
    """INSERT .. SELECT of many access records from one JSON array, each only while its
    citizen exists, RETURNING their citizens; compiled once to PostgreSQL's SQL. A join with
    ``citizens``, not a correlated EXISTS: Citus runs no correlated subquery over a
    set-returning function (and the citizen's key then comes from its own row)."""
    table = AccessRecord.__table__
    rows = (
        func.jsonb_to_recordset(cast(bindparam("rows", type_=Text), JSONB))
        .table_valued(*(column(k, table.c[k].type) for k in columns))
        .render_derived(name="r", with_types=True)
    )
    citizen = Citizen.__table__
    values = select(
        *(citizen.c.citizen_id if k == "citizen_id" else rows.c[k] for k in columns)
    ).join_from(rows, citizen, citizen.c.citizen_id == rows.c.citizen_id)
    statement = (
        insert(AccessRecord).from_select(list(columns), values).returning(AccessRecord.citizen_id)
    )
    return str(statement.compile(dialect=postgresql.asyncpg.dialect()))
