"""Consent: a citizen lets a named organisation, or whoever holds a share link, read their
passport (all of it or chosen competences) for a stated purpose until an expiry.

Grants are checked on every read, never cached, so a revocation or an expiry takes effect on
the very next request. A share link's secret is shown once, at creation; only its SHA-256 is
stored. The secret carries 256 random bits, so a fast hash is enough: there is nothing to guess.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import BindParameter, ColumnElement, bindparam, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from service import canonical, clock
from service.auth.policy import require_citizen, require_reader
from service.auth.principal import Principal
from service.citizens.service import lock_citizen, own_citizen_id
from service.claims.rules import ConceptUri
from service.db.raw import driver
from service.errors import CitizenGone, Conflict, InvalidState, NotFound, ValidationFailed
from service.events.chain import append_event, new_event
from service.events.outbox import Notice, grant_notice
from service.events.payloads import grant_payload
from service.identity.numbers import (
    INSZ_KEY_VERSION,
    InvalidNumber,
    insz_hash,
    normalize_enterprise_number,
)
from service.models import AccessGrant, Organisation, ShareLink, TeamCheck
from service.models.enums import (
    EventType,
    GranteeKind,
    GrantStatus,
    OrganisationStatus,
    PrincipalKind,
    TeamDisclosure,
)
from service.pagination import decode_cursor, encode_cursor
from service.taxonomy.search import CompetenceRef, competences_by_id, competences_by_uri
from service.validation import IdempotencyKey, Purpose, validate

# Recognisable, so secret scanners and our log redaction find it.
SHARE_TOKEN_PREFIX = "psl_"  # noqa: S105 - a prefix, no secret
MAX_ACTIVE_GRANTS = 100
MIN_GRANT_TERM = timedelta(minutes=5)
MAX_GRANT_COMPETENCES = 500


def one_year_after(moment: datetime) -> datetime:
    """The longest a grant may run."""
    return clock.add_years(moment, 1)


def check_term(expires_at: datetime, now: datetime) -> None:
    """Every grant runs at least five minutes and at most a year. Checked when the grant is
    made, not when a retry of it arrives: a faithful retry after the expiry still returns the
    grant it made."""
    if not now + MIN_GRANT_TERM <= expires_at <= one_year_after(now):
        raise ValidationFailed.one(
            "input.expiresAt",
            "must be at least five minutes and at most one year from now",
            "invalid_term",
        )


def zoned(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone offset")
    return value


class GrantInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    grantee_kind: GranteeKind
    organisation_id: uuid.UUID | None = None
    enterprise_number: str | None = Field(default=None, max_length=20)
    purpose: Purpose
    expires_at: datetime
    competence_uris: list[ConceptUri] | None = Field(
        default=None, min_length=1, max_length=MAX_GRANT_COMPETENCES
    )
    # What the citizen wants and the work they did are private unless a grant includes them.
    include_wants: bool = False
    include_work_history: bool = False
    idempotency_key: IdempotencyKey

    @field_validator("enterprise_number")
    @classmethod
    def _enterprise_number(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalize_enterprise_number(value)
        except InvalidNumber as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("expires_at")
    @classmethod
    def _zoned(cls, value: datetime) -> datetime:
        return zoned(value)

    def check_term(self, now: datetime) -> None:
        check_term(self.expires_at, now)

    @model_validator(mode="after")
    def _grantee(self) -> Self:
        named = (self.organisation_id is not None) + (self.enterprise_number is not None)
        if self.grantee_kind is GranteeKind.ORGANISATION and named != 1:
            raise ValueError(
                "name the organisation by exactly one of organisationId or enterpriseNumber"
            )
        if self.grantee_kind is GranteeKind.LINK and named:
            raise ValueError("a share link is for whoever holds it: name no organisation")
        return self

    def digest(self) -> bytes:
        """Left out when false, so grants asked for before they existed still retry as such."""
        body = self.model_dump(mode="json", exclude={"idempotency_key"})
        for option in ("include_wants", "include_work_history"):
            if not body[option]:
                del body[option]
        return hashlib.sha256(canonical.dumps(body)).digest()


@dataclass(frozen=True)
class OrganisationRef:
    id: uuid.UUID
    name: str
    kind: str
    enterprise_number: str


def organisation_ref(org: Organisation) -> OrganisationRef:
    return OrganisationRef(org.id, org.name, org.kind, org.enterprise_number)


@dataclass(frozen=True)
class TeamCheckRef:
    id: uuid.UUID
    name: str


@dataclass(frozen=True)
class GrantView:
    grant_id: uuid.UUID
    citizen_id: uuid.UUID
    grantee_kind: GranteeKind
    organisation: OrganisationRef | None
    purpose: str
    competences: list[CompetenceRef] | None  # None: the whole passport
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    status: GrantStatus
    include_wants: bool = False
    include_work_history: bool = False
    # A consent to a team competence check: read by that check alone, never by a passport read.
    team_check: TeamCheckRef | None = None
    disclosure: TeamDisclosure | None = None

    @property
    def competence_ids(self) -> frozenset[int] | None:
        return None if self.competences is None else frozenset(c.id for c in self.competences)


@dataclass(frozen=True)
class GrantOutcome:
    grant: GrantView
    created: bool  # False: a retry with the same idempotency key returned the earlier grant
    share_token: str | None  # only when a share link was just created: shown this once


def share_token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _active(at: datetime | BindParameter[datetime]) -> tuple[ColumnElement[bool], ...]:
    """The one rule of an active grant, in SQL: not revoked, not yet expired (``_status``
    says the same of a loaded row)."""
    return (AccessGrant.revoked_at.is_(None), AccessGrant.expires_at > at)


def _readable(at: datetime | BindParameter[datetime]) -> tuple[ColumnElement[bool], ...]:
    """An active grant that a passport read may rely on: a consent to a team check is read by
    that check alone (``team_consents``), so a counted-only person's passport stays unseen."""
    return (*_active(at), AccessGrant.team_check_id.is_(None))


def _status(row: AccessGrant, at: datetime) -> GrantStatus:
    if row.revoked_at is not None:
        return GrantStatus.REVOKED
    return GrantStatus.ACTIVE if row.expires_at > at else GrantStatus.EXPIRED


_ORGANISATIONS = select(Organisation).where(Organisation.id.in_(bindparam("ids", expanding=True)))


_TEAM_CHECKS = select(TeamCheck.id, TeamCheck.name).where(
    TeamCheck.id.in_(bindparam("ids", expanding=True))
)


async def grant_views(session: AsyncSession, rows: Sequence[AccessGrant]) -> list[GrantView]:
    """Grants with their organisations, competences and team checks, in at most three queries
    whatever their number."""
    team_ids = {row.team_check_id for row in rows if row.team_check_id is not None}
    teams = (
        {
            team_id: TeamCheckRef(team_id, name)
            for team_id, name in await session.execute(_TEAM_CHECKS, {"ids": list(team_ids)})
        }
        if team_ids
        else {}
    )
    org_ids = {row.organisation_id for row in rows if row.organisation_id is not None}
    orgs = (
        {
            org.id: organisation_ref(org)
            for org in await session.scalars(_ORGANISATIONS, {"ids": list(org_ids)})
        }
        if org_ids
        else {}
    )
    wanted = sorted({cid for row in rows for cid in row.competence_ids or ()})
    refs = await competences_by_id(session, wanted) if wanted else {}
    at = clock.now()
    return [_view(row, orgs, teams, refs, at) for row in rows]


def _view(
    row: AccessGrant,
    orgs: Mapping[uuid.UUID, OrganisationRef],
    teams: Mapping[uuid.UUID, TeamCheckRef],
    refs: Mapping[int, CompetenceRef],
    at: datetime,
) -> GrantView:
    return GrantView(
        grant_id=row.grant_id,
        citizen_id=row.citizen_id,
        grantee_kind=GranteeKind(row.grantee_kind),
        organisation=orgs.get(row.organisation_id) if row.organisation_id else None,
        purpose=row.purpose,
        competences=None
        if row.competence_ids is None
        else [refs[cid] for cid in row.competence_ids if cid in refs],
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        status=_status(row, at),
        include_wants=row.include_wants,
        include_work_history=row.include_work_history,
        team_check=teams.get(row.team_check_id) if row.team_check_id else None,
        disclosure=TeamDisclosure(row.disclosure) if row.disclosure else None,
    )


# The reads before a grant, in one statement sent to asyncpg as it is: the citizen by their
# identity, a grant already made under the request's key (a retry is answered before anything
# else is checked, so it still gets its grant after the term or the grantee has changed), and
# the active organisation the request names, if any.
_BEFORE_GRANT = """
    SELECT (SELECT i.citizen_id FROM citizen_identities i WHERE i.insz_hash = $1) AS citizen,
           (SELECT g.grant_id FROM access_grants g
             WHERE g.citizen_id = (SELECT i.citizen_id FROM citizen_identities i
                                    WHERE i.insz_hash = $1)
               AND g.request_key = $2) AS earlier,
           (SELECT json_build_array(o.id, o.name, o.kind, o.enterprise_number)
              FROM organisations o
             WHERE (o.id = $3 OR o.enterprise_number = $4) AND o.status = $5) AS organisation
"""
# The grant in one call (migration 0015_grant_function): what needs the rows is done there
# under the citizen lock (the citizen found or made, the key, one consent per team check, the
# number of active grants, the grant, its event, the share link); what needs none is done here
# and arrives as arguments (validation, the term, the grantee, the event's JSON, the limit).
RECORD_GRANT = """
    SELECT outcome, grant_id, citizen_id
      FROM passport_record_grant($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7)
"""


@dataclass(frozen=True)
class BeforeGrant:
    """What the reads before a grant found."""

    insz_hash: bytes
    citizen_id: uuid.UUID | None  # None: nobody has written about the citizen yet
    earlier: uuid.UUID | None  # a grant under the request's key
    organisation: OrganisationRef | None  # the named organisation, when it is active


async def before_grant(
    session: AsyncSession,
    principal: Principal,
    hmac_key: bytes,
    request_key: str,
    *,
    organisation_id: uuid.UUID | None = None,
    enterprise_number: str | None = None,
) -> BeforeGrant:
    digest = insz_hash(require_citizen(principal), hmac_key)
    citizen_id, earlier, organisation = await (await driver(session)).fetchrow(
        _BEFORE_GRANT,
        digest,
        request_key,
        organisation_id,
        enterprise_number,
        OrganisationStatus.ACTIVE.value,
    )
    found = None
    if organisation is not None:
        org_id, name, kind, number = organisation  # decoded: SQLAlchemy's asyncpg dialect
        found = OrganisationRef(uuid.UUID(org_id), name, kind, number)
    return BeforeGrant(digest, citizen_id, earlier, found)


async def earlier_grant(
    session: AsyncSession, citizen_id: uuid.UUID, grant_id: uuid.UUID, digest: bytes
) -> GrantOutcome:
    """What a request under an idempotency key already made: a faithful retry gets it back
    (without a share link's secret), another request under the key is a conflict."""
    earlier = await session.get(AccessGrant, (citizen_id, grant_id))
    assert earlier is not None  # grants are never deleted but with their citizen
    if earlier.request_digest != digest:
        raise Conflict(
            "idempotencyKey was already used for a different grant", str(earlier.grant_id)
        )
    return GrantOutcome((await grant_views(session, [earlier]))[0], created=False, share_token=None)


def _grantee(spec: GrantInput, before: BeforeGrant) -> OrganisationRef | None:
    if spec.grantee_kind is GranteeKind.LINK:
        return None
    if before.organisation is None:
        field = "organisationId" if spec.organisation_id is not None else "enterpriseNumber"
        raise ValidationFailed.one(f"input.{field}", "no active organisation", "unknown_grantee")
    return before.organisation


async def grant_competences(
    session: AsyncSession, uris: list[str] | None, field: str = "input.competenceUris"
) -> list[CompetenceRef] | None:
    """The ESCO skills a grant names, in the order of their ids; None (the whole passport)
    for None."""
    if uris is None:
        return None
    found = await competences_by_uri(session, uris)
    problems = [
        i for i, uri in enumerate(uris) if uri not in found or found[uri].concept_type != "skill"
    ]
    if problems:
        raise ValidationFailed.one(
            f"{field}.{problems[0]}",
            "not an ESCO skill or knowledge concept",
            "unknown_competence",
        )
    return sorted({found[uri].id: found[uri] for uri in uris}.values(), key=lambda c: c.id)


def _notice(row: AccessGrant, **extra: Any) -> Notice | None:
    """What the grantee organisation hears of a grant. A counted-only team consent names no
    passport: the organisation must not learn who is among the counted."""
    if row.organisation_id is None:
        return None
    notice = grant_notice(row.organisation_id, row.citizen_id, row.grant_id, **extra)
    if row.team_check_id is None:
        return notice
    data = {**notice.data, "teamCheckId": str(row.team_check_id), "disclosure": row.disclosure}
    if row.disclosure == TeamDisclosure.COUNTED.value:
        data.pop("passportId")
    return Notice(notice.audience, data)


@dataclass(frozen=True)
class NewGrant:
    """A grant to make, as the request and the reads before it gave it."""

    grantee_kind: GranteeKind
    organisation: OrganisationRef | None
    purpose: str
    competences: list[CompetenceRef] | None  # None: the whole passport
    expires_at: datetime
    request_key: str
    request_digest: bytes
    now: datetime
    team_check: TeamCheckRef | None = None
    disclosure: TeamDisclosure | None = None
    include_wants: bool = False
    include_work_history: bool = False
    share_token: str | None = None  # a share link's secret, for a grant to whoever holds it


def grant_call(before: BeforeGrant, grant: NewGrant) -> tuple[AccessGrant, tuple[Any, ...]]:
    """The grant's row and the arguments of ``RECORD_GRANT``, the one call that writes it."""
    row = AccessGrant(
        citizen_id=before.citizen_id or uuid.uuid4(),
        grant_id=uuid.uuid4(),
        grantee_kind=grant.grantee_kind.value,
        organisation_id=grant.organisation.id if grant.organisation else None,
        purpose=grant.purpose,
        competence_ids=None if grant.competences is None else [c.id for c in grant.competences],
        include_wants=grant.include_wants,
        include_work_history=grant.include_work_history,
        created_at=grant.now,
        expires_at=grant.expires_at,
        revoked_at=None,
        request_key=grant.request_key,
        request_digest=grant.request_digest,
        team_check_id=grant.team_check.id if grant.team_check else None,
        disclosure=grant.disclosure.value if grant.disclosure else None,
    )
    # The event names no citizen but in its notice, whose passport id the database puts in.
    event = new_event(
        EventType.GRANT_CREATED,
        grant_payload(
            grant_id=row.grant_id,
            grantee_kind=row.grantee_kind,
            organisation_id=row.organisation_id,
            competence_ids=row.competence_ids,
            expires_at=grant.expires_at,
            include_wants=grant.include_wants,
            include_work_history=grant.include_work_history,
            team_check_id=row.team_check_id,
            disclosure=row.disclosure,
        ),
        grant.now,
        _notice(row, expiresAt=grant.expires_at.astimezone(UTC).isoformat()),
    )
    columns = {c.key: getattr(row, c.key) for c in AccessGrant.__table__.columns}
    columns.pop("citizen_id")
    columns["request_digest"] = "\\x" + grant.request_digest.hex()  # bytea's text form
    # A citizen the read found is named by their id: erased since, they are gone (the request
    # runs again and makes a new passport), never made again under the same id. Only one the
    # read did not find is named by identity, with a fresh id for the database to use.
    arguments = (
        None if before.citizen_id else before.insz_hash,
        INSZ_KEY_VERSION,
        row.citizen_id,
        orjson.dumps(columns, default=str).decode(),
        orjson.dumps([event]).decode(),
        share_token_hash(grant.share_token) if grant.share_token else None,
        MAX_ACTIVE_GRANTS,
    )
    return row, arguments


async def record_grant(session: AsyncSession, before: BeforeGrant, grant: NewGrant) -> GrantOutcome:
    """A new grant, its event and its share link in one database call; the grant it answers
    with is made from what the call was given, not read back."""
    row, arguments = grant_call(before, grant)
    outcome, grant_id, citizen_id = await (await driver(session)).fetchrow(RECORD_GRANT, *arguments)
    if outcome == "gone":
        raise CitizenGone
    if outcome == "taken":  # another request under the key won the lock
        return await earlier_grant(session, citizen_id, grant_id, grant.request_digest)
    if outcome == "joined":
        raise Conflict("you already take part in this team check: withdraw first", str(grant_id))
    if outcome == "full":
        raise InvalidState(f"at most {MAX_ACTIVE_GRANTS} grants can be active; revoke one first")
    row.citizen_id = citizen_id
    organisation, team = grant.organisation, grant.team_check
    view = _view(
        row,
        {organisation.id: organisation} if organisation else {},
        {team.id: team} if team else {},
        {c.id: c for c in grant.competences or ()},
        grant.now,
    )
    return GrantOutcome(view, created=True, share_token=grant.share_token)


async def grant_access(
    session: AsyncSession, principal: Principal, hmac_key: bytes, data: Mapping[str, Any]
) -> GrantOutcome:
    spec = validate(GrantInput, data)
    before = await before_grant(
        session,
        principal,
        hmac_key,
        spec.idempotency_key,
        organisation_id=spec.organisation_id,
        enterprise_number=spec.enterprise_number,
    )
    if before.citizen_id is not None and before.earlier is not None:
        return await earlier_grant(session, before.citizen_id, before.earlier, spec.digest())
    # Before the citizen lock, as a claim's: the grant's times are those the request was
    # checked against, and the database checks the limit as of then.
    now = clock.now()
    spec.check_term(now)
    organisation = _grantee(spec, before)
    competences = await grant_competences(session, spec.competence_uris)
    return await record_grant(session, before, new_grant(spec, organisation, competences, now))


def new_grant(
    spec: GrantInput,
    organisation: OrganisationRef | None,
    competences: list[CompetenceRef] | None,
    now: datetime,
) -> NewGrant:
    """The grant a ``grantAccess`` request asks for, with a fresh share link's secret when it
    is for whoever holds the link."""
    linked = spec.grantee_kind is GranteeKind.LINK
    return NewGrant(
        grantee_kind=spec.grantee_kind,
        organisation=organisation,
        purpose=spec.purpose,
        competences=competences,
        expires_at=spec.expires_at,
        request_key=spec.idempotency_key,
        request_digest=spec.digest(),
        now=now,
        include_wants=spec.include_wants,
        include_work_history=spec.include_work_history,
        share_token=SHARE_TOKEN_PREFIX + secrets.token_urlsafe(32) if linked else None,
    )


async def revoke_access(
    session: AsyncSession, principal: Principal, hmac_key: bytes, grant_id: uuid.UUID
) -> GrantView:
    """Idempotent: revoking a revoked grant returns it unchanged. Takes effect at once."""
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    if citizen_id is None:
        raise NotFound("no grant with this id")
    await lock_citizen(session, citizen_id)
    now = clock.now()
    revoked = await session.scalar(
        update(AccessGrant)
        .where(
            AccessGrant.citizen_id == citizen_id,
            AccessGrant.grant_id == grant_id,
            AccessGrant.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .returning(AccessGrant)
    )
    if revoked is None:
        existing = await session.get(AccessGrant, (citizen_id, grant_id))
        if existing is None:
            raise NotFound("no grant with this id")
        return (await grant_views(session, [existing]))[0]
    await append_event(
        session,
        citizen_id,
        EventType.GRANT_REVOKED,
        {"grantId": str(grant_id)},
        now,
        _notice(revoked),
    )
    return (await grant_views(session, [revoked]))[0]


async def citizen_grants(
    session: AsyncSession, principal: Principal, hmac_key: bytes
) -> list[GrantView]:
    """All of the citizen's grants, active or not, newest first."""
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    if citizen_id is None:
        return []
    rows = await session.scalars(
        select(AccessGrant)
        .where(AccessGrant.citizen_id == citizen_id)
        .order_by(AccessGrant.created_at.desc(), AccessGrant.grant_id.desc())
    )
    return await grant_views(session, list(rows))


async def active_grants_of_many(
    session: AsyncSession, citizen_ids: set[uuid.UUID], organisation_id: uuid.UUID
) -> dict[uuid.UUID, list[GrantView]]:
    """``active_grants`` for many citizens: only those with at least one, by citizen."""
    rows = await session.scalars(
        select(AccessGrant).where(
            AccessGrant.citizen_id.in_(sorted(citizen_ids)),
            AccessGrant.organisation_id == organisation_id,
            *_readable(clock.now()),
        )
    )
    by_citizen: dict[uuid.UUID, list[GrantView]] = {}
    for grant in await grant_views(session, list(rows)):
        by_citizen.setdefault(grant.citizen_id, []).append(grant)
    return by_citizen


class TeamConsent(NamedTuple):
    """One active consent to a team check, as the check reads it (a tuple: a check reads
    thousands)."""

    citizen_id: uuid.UUID
    grant_id: uuid.UUID
    team_check_id: uuid.UUID
    disclosure: TeamDisclosure
    competence_ids: frozenset[int] | None  # None: the whole passport


async def team_consents(
    session: AsyncSession, organisation_id: uuid.UUID, team_check_ids: Sequence[uuid.UUID]
) -> list[TeamConsent]:
    """The active consents to these team checks of the organisation, right now (never
    cached: a withdrawal counts from the next request on)."""
    rows = await session.execute(
        select(
            AccessGrant.citizen_id,
            AccessGrant.grant_id,
            AccessGrant.team_check_id,
            AccessGrant.disclosure,
            AccessGrant.competence_ids,
        ).where(
            AccessGrant.team_check_id.in_(list(team_check_ids)),
            AccessGrant.organisation_id == organisation_id,
            *_active(clock.now()),
        )
    )
    return [
        TeamConsent(
            citizen_id=row.citizen_id,
            grant_id=row.grant_id,
            team_check_id=row.team_check_id,
            disclosure=TeamDisclosure(row.disclosure),
            competence_ids=None if row.competence_ids is None else frozenset(row.competence_ids),
        )
        for row in rows
    ]


async def team_consent_counts(
    session: AsyncSession, team_check_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[TeamDisclosure, int]]:
    """Active consents per team check and disclosure: how many people, nobody named."""
    rows = await session.execute(
        select(AccessGrant.team_check_id, AccessGrant.disclosure, func.count())
        .where(AccessGrant.team_check_id.in_(list(team_check_ids)), *_active(clock.now()))
        .group_by(AccessGrant.team_check_id, AccessGrant.disclosure)
    )
    found: dict[uuid.UUID, dict[TeamDisclosure, int]] = {}
    for team_check_id, disclosure, count in rows:
        if team_check_id is not None and disclosure is not None:
            found.setdefault(team_check_id, {})[TeamDisclosure(disclosure)] = count
    return found


# Built once: every read under consent runs it.
_ACTIVE_FOR = select(AccessGrant).where(
    AccessGrant.citizen_id == bindparam("citizen_id"),
    AccessGrant.organisation_id == bindparam("org"),
    *_readable(bindparam("at", type_=AccessGrant.__table__.c.expires_at.type)),
)


async def active_grants(
    session: AsyncSession, citizen_id: uuid.UUID, organisation_id: uuid.UUID
) -> list[GrantView]:
    """The grants an organisation may read this citizen's passport under, right now."""
    rows = await session.scalars(
        _ACTIVE_FOR, {"citizen_id": citizen_id, "org": organisation_id, "at": clock.now()}
    )
    return await grant_views(session, list(rows))


async def link_grant(session: AsyncSession, principal: Principal) -> GrantView | None:
    """The share-link holder's grant (``share_link_principal`` found it active, this request)."""
    if not principal.is_link or principal.citizen_id is None or principal.grant_id is None:
        return None
    row = await session.get(AccessGrant, (principal.citizen_id, principal.grant_id))
    return None if row is None else (await grant_views(session, [row]))[0]


async def share_link_principal(session: AsyncSession, token: str) -> Principal | None:
    """Who a share-link token speaks for: only its grant, while it is active."""
    if not token.startswith(SHARE_TOKEN_PREFIX) or len(token) > 200:
        return None
    # Two lookups, each by its own key: the link by its secret's hash, then its grant with
    # the citizen's rows (on Citus they are sharded apart, and each lookup is one shard's).
    link = (
        await session.execute(
            select(ShareLink.citizen_id, ShareLink.grant_id).where(
                ShareLink.secret_hash == share_token_hash(token)
            )
        )
    ).one_or_none()
    if link is None:
        return None
    found = (
        await session.execute(
            select(AccessGrant.citizen_id, AccessGrant.grant_id).where(
                AccessGrant.citizen_id == link.citizen_id,
                AccessGrant.grant_id == link.grant_id,
                *_active(clock.now()),
            )
        )
    ).one_or_none()
    if found is None:
        return None
    return Principal(
        kind=PrincipalKind.LINK,
        subject="link",
        grant_id=found.grant_id,
        citizen_id=found.citizen_id,
    )


@dataclass(frozen=True)
class GrantPage:
    items: list[GrantView]
    has_next_page: bool
    end_cursor: str | None


async def grants_received(
    session: AsyncSession, principal: Principal, *, first: int, after: str | None
) -> GrantPage:
    """The active grants to the reader's organisation, newest first: which passports it may
    read, for what, until when. Listing them reads no passport. Team-check consents are not
    among them: they let no passport be read, and list the counted-only by no one's name."""
    organisation_id = require_reader(principal)
    conditions = [AccessGrant.organisation_id == organisation_id, *_readable(clock.now())]
    if after:
        stamp, last_id = decode_cursor(after)
        conditions.append(
            tuple_(AccessGrant.created_at, AccessGrant.grant_id) < tuple_(stamp, last_id)
        )
    rows = list(
        await session.scalars(
            select(AccessGrant)
            .where(*conditions)
            .order_by(AccessGrant.created_at.desc(), AccessGrant.grant_id.desc())
            .limit(first + 1)
        )
    )
    page = await grant_views(session, rows[:first])
    return GrantPage(
        items=page,
        has_next_page=len(rows) > first,
        end_cursor=encode_cursor(page[-1].created_at, page[-1].grant_id) if page else None,
    )
