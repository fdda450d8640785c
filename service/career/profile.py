"""The citizen's wants, career goals and work history: what they record, and who may see it.

- **Wants.** A stance on any ESCO competence, in the passport or not: want to use it more,
  want to develop it, or would rather not use it any more. Setting the same again changes
  nothing; ``want: null`` clears it.
- **Goals.** Occupations the citizen aims for, each by a year if they name one.
- **Work history.** Occupations held, from a date to a date (or ongoing). The citizen records
  their own, naming the employer in their own words if they like. An employer may record one
  too, as a statement about the citizen in one call, like a claim: the employer is the
  organisation of the caller's token (never input), ``(organisation, externalRef)`` makes a
  retry safe and a different payload under it a conflict, and only whoever recorded an entry
  can withdraw it. The citizen cannot withdraw an employer's entry (it is the employer's
  statement), but keeps it private like the rest: no grant shows it unless it says so.

Every change is an event in the citizen's hash chain. Wants and goals are shown to a reader
only under a grant with ``includeWants`` (stances only on the competences that grant covers),
the work history only under one with ``includeWorkHistory``; a legal basis shows neither, as it
is a basis for reading the record of competences, not the citizen's plans.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import canonical, clock
from service.auth.policy import require_issuer
from service.auth.principal import Principal
from service.career.fit import Preferences
from service.citizens.service import get_or_create_citizen, lock_citizen, own_citizen_id
from service.claims.rules import ConceptUri, PastDate
from service.consent.service import GrantView, OrganisationRef
from service.errors import Conflict, InvalidState, NotAuthorized, NotFound, ValidationFailed
from service.events.chain import append_event
from service.events.payloads import goal_payload, want_payload, work_payload
from service.models import (
    CareerGoal,
    CompetenceWant,
    Organisation,
    WorkExperience,
    WorkExperienceRef,
)
from service.models.enums import (
    AccessBasis,
    EventType,
    HolderKind,
    OrganisationKind,
    Want,
)
from service.passports.service import Passport
from service.taxonomy.search import (
    CompetenceRef,
    OccupationRef,
    competences_by_id,
    competences_by_uri,
    occupations_by_id,
    occupations_by_uri,
)
from service.validation import IdempotencyKey, Insz, Name, validate

MAX_WANTS = 500
MAX_GOALS = 10
MAX_WORK = 200
HORIZON_YEARS = 50
# Who can say a citizen worked for them: employers, volunteer organisations (volunteering is
# work experience too) and public bodies as employers.
EMPLOYERS = frozenset(
    {
        OrganisationKind.EMPLOYER,
        OrganisationKind.VOLUNTEER_ORGANISATION,
        OrganisationKind.GOVERNMENT_SERVICE,
    }
)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class WantInput(_Strict):
    competence_uri: ConceptUri
    want: Annotated[Want | None, BeforeValidator(_lower)]


class GoalInput(_Strict):
    occupation_uri: ConceptUri
    horizon_year: Annotated[int, Field(strict=True)] | None = None

    @model_validator(mode="after")
    def _ahead(self) -> Self:
        year = clock.today().year
        if self.horizon_year is not None and not (
            year <= self.horizon_year <= year + HORIZON_YEARS
        ):
            raise ValueError(f"horizonYear must be between {year} and {year + HORIZON_YEARS}")
        return self


class _WorkFacts(_Strict):
    occupation_uri: ConceptUri
    started_on: PastDate
    ended_on: PastDate | None = None

    @model_validator(mode="after")
    def _ended_after_started(self) -> Self:
        if self.ended_on is not None and self.ended_on < self.started_on:
            raise ValueError("endedOn must not be before startedOn")
        return self

    def digest(self, *extra: str) -> bytes:
        body = self.model_dump(mode="json", exclude={"idempotency_key", "insz"})
        return hashlib.sha256(canonical.dumps([body, *extra])).digest()


class WorkExperienceInput(_WorkFacts):
    employer_name: Name | None = None
    idempotency_key: IdempotencyKey


class EmploymentInput(_WorkFacts):
    insz: Insz
    external_ref: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")


@dataclass(frozen=True)
class WantView:
    competence: CompetenceRef
    want: Want
    updated_at: datetime


@dataclass(frozen=True)
class WantOutcome:
    competence: CompetenceRef
    want: Want | None
    changed: bool  # False: it already stood so (a retry, or nothing to clear)


@dataclass(frozen=True)
class GoalView:
    occupation: OccupationRef
    horizon_year: int | None
    active: bool
    updated_at: datetime


@dataclass(frozen=True)
class GoalOutcome:
    goal: GoalView
    changed: bool


@dataclass(frozen=True)
class WorkView:
    id: uuid.UUID
    citizen_id: uuid.UUID
    occupation: OccupationRef
    recorded_by: HolderKind
    organisation: OrganisationRef | None  # the employer that recorded it
    employer_name: str | None  # the citizen's own words, on their own entries
    started_on: date
    ended_on: date | None
    recorded_at: datetime
    withdrawn_at: datetime | None

    @property
    def employer(self) -> str | None:
        return self.organisation.name if self.organisation else self.employer_name


@dataclass(frozen=True)
class WorkOutcome:
    experience: WorkView
    created: bool  # False: a retry returned what the first request recorded


@dataclass(frozen=True)
class Visibility:
    """What of the career part of a passport a read may show."""

    wants: bool
    wants_scope: frozenset[int] | None  # stances only on these competences; None: all
    history: bool


@dataclass(frozen=True)
class CareerView:
    visibility: Visibility
    wants: list[WantView]
    goals: list[GoalView]
    history: list[WorkView]  # current entries, newest first

    @property
    def preferences(self) -> Preferences:
        return Preferences(
            stances={w.competence.id: w.want for w in self.wants},
            goals={g.occupation.id: g.horizon_year for g in self.goals},
        )

    @property
    def held_occupations(self) -> list[OccupationRef]:
        seen: dict[int, OccupationRef] = {}
        for entry in sorted(self.history, key=lambda e: e.started_on):
            seen.setdefault(entry.occupation.id, entry.occupation)
        return list(seen.values())


def visibility(passport: Passport) -> Visibility:
    """The citizen sees all of it; a reader what its grants include; a legal basis nothing."""
    if passport.basis is AccessBasis.SELF:
        return Visibility(wants=True, wants_scope=None, history=True)
    if passport.basis in (AccessBasis.CONSENT, AccessBasis.LINK):
        with_wants = [g for g in passport.grants if g.include_wants]
        return Visibility(
            wants=bool(with_wants),
            wants_scope=_scope(with_wants),
            history=any(g.include_work_history for g in passport.grants),
        )
    return Visibility(wants=False, wants_scope=frozenset(), history=False)


def _scope(grants: Sequence[GrantView]) -> frozenset[int] | None:
    covered: set[int] = set()
    for grant in grants:
        if grant.competence_ids is None:
            return None
        covered |= grant.competence_ids
    return frozenset(covered)


async def _skill(session: AsyncSession, uri: str, field: str) -> CompetenceRef:
    found = (await competences_by_uri(session, [uri])).get(uri)
    if found is None or found.concept_type != "skill":
        raise ValidationFailed.one(
            field, "not an ESCO skill or knowledge concept", "unknown_competence"
        )
    return found


async def _occupation(session: AsyncSession, uri: str, field: str) -> OccupationRef:
    found = (await occupations_by_uri(session, [uri])).get(uri)
    if found is None:
        raise ValidationFailed.one(field, "not an ESCO occupation", "unknown_occupation")
    return found


# --- wants ------------------------------------------------------------------------------------


async def set_want(
    session: AsyncSession, principal: Principal, hmac_key: bytes, data: Mapping[str, Any]
) -> WantOutcome:
    spec = validate(WantInput, data)
    competence = await _skill(session, spec.competence_uri, "input.competenceUri")
    citizen_id = await own_citizen_id(session, principal, hmac_key, create=spec.want is not None)
    if citizen_id is None:  # nothing recorded about them, so no stance to clear
        return WantOutcome(competence, None, changed=False)
    await lock_citizen(session, citizen_id)
    key = (CompetenceWant.citizen_id == citizen_id, CompetenceWant.competence_id == competence.id)
    current = await session.scalar(select(CompetenceWant.stance).where(*key))
    if current == (spec.want.value if spec.want else None):
        return WantOutcome(competence, spec.want, changed=False)
    if spec.want is not None and current is None:
        held = await session.scalar(
            select(func.count()).where(
                CompetenceWant.citizen_id == citizen_id, CompetenceWant.stance.is_not(None)
            )
        )
        if (held or 0) >= MAX_WANTS:
            raise InvalidState(f"at most {MAX_WANTS} wants; clear one first")
    now = clock.now()
    stance = spec.want.value if spec.want else None
    statement = insert(CompetenceWant).values(
        citizen_id=citizen_id, competence_id=competence.id, stance=stance, updated_at=now
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["citizen_id", "competence_id"],
            set_={"stance": stance, "updated_at": now},
        )
    )
    await append_event(
        session,
        citizen_id,
        EventType.WANT_SET,
        want_payload(competence.id, stance),
        now,
    )
    return WantOutcome(competence, spec.want, changed=True)


# --- goals ------------------------------------------------------------------------------------


async def _goal_row(
    session: AsyncSession, citizen_id: uuid.UUID, occupation: OccupationRef
) -> GoalView | None:
    row = (
        await session.execute(
            select(CareerGoal.horizon_year, CareerGoal.active, CareerGoal.updated_at).where(
                CareerGoal.citizen_id == citizen_id, CareerGoal.occupation_id == occupation.id
            )
        )
    ).one_or_none()
    return (
        None if row is None else GoalView(occupation, row.horizon_year, row.active, row.updated_at)
    )


async def _write_goal(
    session: AsyncSession,
    citizen_id: uuid.UUID,
    occupation: OccupationRef,
    horizon_year: int | None,
    active: bool,
) -> GoalView:
    now = clock.now()
    values = {"horizon_year": horizon_year, "active": active, "updated_at": now}
    statement = insert(CareerGoal).values(
        citizen_id=citizen_id, occupation_id=occupation.id, **values
    )
    await session.execute(
        statement.on_conflict_do_update(index_elements=["citizen_id", "occupation_id"], set_=values)
    )
    await append_event(
        session,
        citizen_id,
        EventType.GOAL_SET,
        goal_payload(occupation.id, active, horizon_year),
        now,
    )
    return GoalView(occupation, horizon_year, active, now)


async def set_goal(
    session: AsyncSession, principal: Principal, hmac_key: bytes, data: Mapping[str, Any]
) -> GoalOutcome:
    spec = validate(GoalInput, data)
    occupation = await _occupation(session, spec.occupation_uri, "input.occupationUri")
    citizen_id = await own_citizen_id(session, principal, hmac_key, create=True)
    assert citizen_id is not None
    await lock_citizen(session, citizen_id)
    current = await _goal_row(session, citizen_id, occupation)
    if current is not None and (current.horizon_year, current.active) == (spec.horizon_year, True):
        return GoalOutcome(current, False)
    if current is None or not current.active:
        active = await session.scalar(
            select(func.count()).where(CareerGoal.citizen_id == citizen_id, CareerGoal.active)
        )
        if (active or 0) >= MAX_GOALS:
            raise InvalidState(f"at most {MAX_GOALS} career goals; drop one first")
    goal = await _write_goal(session, citizen_id, occupation, spec.horizon_year, True)
    return GoalOutcome(goal, True)


async def drop_goal(
    session: AsyncSession, principal: Principal, hmac_key: bytes, occupation_uri: str
) -> GoalOutcome:
    """Idempotent: dropping a dropped goal changes nothing; one never set is not found."""
    occupation = await _occupation(session, occupation_uri, "occupationUri")
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    current = await _goal_row(session, citizen_id, occupation) if citizen_id else None
    if citizen_id is None or current is None:
        raise NotFound("no career goal for this occupation")
    await lock_citizen(session, citizen_id)
    current = await _goal_row(session, citizen_id, occupation)  # as it is, under the lock
    if current is None or not current.active:
        return GoalOutcome(current or GoalView(occupation, None, False, clock.now()), False)
    return GoalOutcome(await _write_goal(session, citizen_id, occupation, None, False), True)


# --- work history -----------------------------------------------------------------------------


def require_employer(principal: Principal) -> uuid.UUID:
    organisation_id = require_issuer(principal)
    if principal.organisation_kind not in EMPLOYERS:
        raise NotAuthorized(
            "only employers, volunteer organisations and public employers record work"
        )
    return organisation_id


async def _work_views(session: AsyncSession, rows: Sequence[WorkExperience]) -> list[WorkView]:
    occupations = await occupations_by_id(session, sorted({r.occupation_id for r in rows}))
    org_ids = sorted({r.organisation_id for r in rows if r.organisation_id})
    orgs = (
        {
            org.id: OrganisationRef(org.id, org.name, org.kind, org.enterprise_number)
            for org in await session.scalars(
                select(Organisation).where(Organisation.id.in_(org_ids))
            )
        }
        if org_ids
        else {}
    )
    return [
        WorkView(
            id=row.id,
            citizen_id=row.citizen_id,
            occupation=occupations[row.occupation_id],
            recorded_by=HolderKind.ORGANISATION if row.organisation_id else HolderKind.CITIZEN,
            organisation=orgs.get(row.organisation_id) if row.organisation_id else None,
            employer_name=row.employer_name,
            started_on=row.started_on,
            ended_on=row.ended_on,
            recorded_at=row.recorded_at,
            withdrawn_at=row.withdrawn_at,
        )
        for row in rows
        if row.occupation_id in occupations
    ]


async def _insert_work(
    session: AsyncSession,
    citizen_id: uuid.UUID,
    spec: _WorkFacts,
    occupation: OccupationRef,
    *,
    organisation_id: uuid.UUID | None,
    client_pk: uuid.UUID | None,
    employer_name: str | None,
    request_key: str,
    digest: bytes,
    experience_id: uuid.UUID | None = None,
) -> WorkView:
    active = await session.scalar(
        select(func.count()).where(
            WorkExperience.citizen_id == citizen_id, WorkExperience.withdrawn_at.is_(None)
        )
    )
    if (active or 0) >= MAX_WORK:
        raise InvalidState(f"at most {MAX_WORK} occupations in a work history")
    now = clock.now()
    row = WorkExperience(
        citizen_id=citizen_id,
        id=experience_id or uuid.uuid4(),
        occupation_id=occupation.id,
        organisation_id=organisation_id,
        client_id=client_pk,
        employer_name=employer_name,
        started_on=spec.started_on,
        ended_on=spec.ended_on,
        recorded_at=now,
        request_key=request_key,
        request_digest=digest,
        withdrawn_at=None,
    )
    session.add(row)
    await session.flush()
    payload = work_payload({c.key: getattr(row, c.key) for c in WorkExperience.__table__.c})
    await append_event(session, citizen_id, EventType.WORK_RECORDED, payload, now)
    return (await _work_views(session, [row]))[0]


async def _by_key(
    session: AsyncSession, citizen_id: uuid.UUID, request_key: str
) -> WorkExperience | None:
    found: WorkExperience | None = await session.scalar(
        select(WorkExperience).where(
            WorkExperience.citizen_id == citizen_id, WorkExperience.request_key == request_key
        )
    )
    return found


async def record_work(
    session: AsyncSession, principal: Principal, hmac_key: bytes, data: Mapping[str, Any]
) -> WorkOutcome:
    """The citizen's own entry. Its idempotency key makes a retry return the first entry."""
    spec = validate(WorkExperienceInput, data)
    occupation = await _occupation(session, spec.occupation_uri, "input.occupationUri")
    citizen_id = await own_citizen_id(session, principal, hmac_key, create=True)
    assert citizen_id is not None
    await lock_citizen(session, citizen_id)
    key, digest = f"self:{spec.idempotency_key}", spec.digest()
    earlier = await _by_key(session, citizen_id, key)
    if earlier is not None:
        if bytes(earlier.request_digest) != digest:
            raise Conflict("idempotencyKey was already used for a different entry", str(earlier.id))
        return WorkOutcome((await _work_views(session, [earlier]))[0], created=False)
    view = await _insert_work(
        session,
        citizen_id,
        spec,
        occupation,
        organisation_id=None,
        client_pk=None,
        employer_name=spec.employer_name,
        request_key=key,
        digest=digest,
    )
    return WorkOutcome(view, created=True)


async def record_employment(
    session: AsyncSession, principal: Principal, hmac_key: bytes, data: Mapping[str, Any]
) -> WorkOutcome:
    """An employer's statement that the citizen held an occupation with it: one call, as its
    own organisation; a retry under the same externalRef returns the first record."""
    organisation_id = require_employer(principal)
    spec = validate(EmploymentInput, data)
    occupation = await _occupation(session, spec.occupation_uri, "input.occupationUri")
    citizen_id = await get_or_create_citizen(session, spec.insz, hmac_key)
    await lock_citizen(session, citizen_id)
    digest = spec.digest(str(citizen_id))
    experience_id = uuid.uuid4()
    reserved = await session.scalar(
        insert(WorkExperienceRef)
        .values(
            organisation_id=organisation_id,
            external_ref=spec.external_ref,
            citizen_id=citizen_id,
            experience_id=experience_id,
            payload_digest=digest,
        )
        .on_conflict_do_nothing(index_elements=["organisation_id", "external_ref"])
        .returning(WorkExperienceRef.experience_id)
    )
    if reserved is None:
        earlier = (
            await session.execute(
                select(WorkExperienceRef).where(
                    WorkExperienceRef.organisation_id == organisation_id,
                    WorkExperienceRef.external_ref == spec.external_ref,
                )
            )
        ).scalar_one()
        if bytes(earlier.payload_digest) != digest:
            raise Conflict(
                "externalRef was already used for a different record", str(earlier.experience_id)
            )
        row = await session.get(WorkExperience, (earlier.citizen_id, earlier.experience_id))
        assert row is not None
        return WorkOutcome((await _work_views(session, [row]))[0], created=False)
    view = await _insert_work(
        session,
        citizen_id,
        spec,
        occupation,
        organisation_id=organisation_id,
        client_pk=principal.client_pk,
        employer_name=None,
        request_key=f"org:{organisation_id}:{spec.external_ref}",
        digest=digest,
        experience_id=experience_id,
    )
    return WorkOutcome(view, created=True)


async def _withdraw(session: AsyncSession, row: WorkExperience) -> WorkView:
    await lock_citizen(session, row.citizen_id)
    now = clock.now()
    withdrawn = await session.scalar(
        update(WorkExperience)
        .where(
            WorkExperience.citizen_id == row.citizen_id,
            WorkExperience.id == row.id,
            WorkExperience.withdrawn_at.is_(None),
        )
        .values(withdrawn_at=now)
        .returning(WorkExperience)
        .execution_options(populate_existing=True)
    )
    if withdrawn is not None:
        await append_event(
            session,
            row.citizen_id,
            EventType.WORK_WITHDRAWN,
            {"experienceId": str(row.id)},
            now,
        )
    current = await session.get(WorkExperience, (row.citizen_id, row.id), populate_existing=True)
    assert current is not None
    return (await _work_views(session, [current]))[0]


async def withdraw_work(
    session: AsyncSession, principal: Principal, hmac_key: bytes, experience_id: uuid.UUID
) -> WorkView:
    """The citizen's own entries only; idempotent."""
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    row = await session.get(WorkExperience, (citizen_id, experience_id)) if citizen_id else None
    if row is None or row.organisation_id is not None:
        raise NotFound("no work experience of yours with this id")
    return await _withdraw(session, row)


async def withdraw_employment(
    session: AsyncSession, principal: Principal, experience_id: uuid.UUID
) -> WorkView:
    """An employer withdraws what it recorded, and nothing else; idempotent."""
    organisation_id = require_employer(principal)
    row = await session.scalar(
        select(WorkExperience).where(
            WorkExperience.id == experience_id,
            WorkExperience.organisation_id == organisation_id,
        )
    )
    if row is None:
        raise NotFound("no work record with this id was made by your organisation")
    return await _withdraw(session, row)


# --- reading ----------------------------------------------------------------------------------


async def career_of(
    session: AsyncSession, passport: Passport, *, history: bool = True
) -> CareerView:
    """The career part of a passport just read (and so authorized and logged), as far as the
    read may show it; ``history`` False leaves the work history unread."""
    seen = visibility(passport)
    citizen_id = passport.citizen_id
    if citizen_id is None:
        return CareerView(seen, [], [], [])
    wants: list[WantView] = []
    goals: list[GoalView] = []
    if seen.wants:
        rows = list(
            await session.execute(
                select(
                    CompetenceWant.competence_id, CompetenceWant.stance, CompetenceWant.updated_at
                )
                .where(CompetenceWant.citizen_id == citizen_id, CompetenceWant.stance.is_not(None))
                .order_by(CompetenceWant.updated_at.desc(), CompetenceWant.competence_id)
            )
        )
        if seen.wants_scope is not None:
            rows = [r for r in rows if r.competence_id in seen.wants_scope]
        refs = await competences_by_id(session, [r.competence_id for r in rows]) if rows else {}
        wants = [
            WantView(refs[r.competence_id], Want(r.stance), r.updated_at)
            for r in rows
            if r.competence_id in refs
        ]
        goal_rows = list(
            await session.execute(
                select(CareerGoal.occupation_id, CareerGoal.horizon_year, CareerGoal.updated_at)
                .where(CareerGoal.citizen_id == citizen_id, CareerGoal.active)
                .order_by(CareerGoal.horizon_year.nulls_last(), CareerGoal.occupation_id)
            )
        )
        occupations = (
            await occupations_by_id(session, [r.occupation_id for r in goal_rows])
            if goal_rows
            else {}
        )
        goals = [
            GoalView(occupations[r.occupation_id], r.horizon_year, True, r.updated_at)
            for r in goal_rows
            if r.occupation_id in occupations
        ]
    work = await load_history(session, citizen_id) if seen.history and history else []
    return CareerView(seen, wants, goals, work)


async def load_history(session: AsyncSession, citizen_id: uuid.UUID) -> list[WorkView]:
    """The current entries of a work history, the latest started first."""
    entries = list(
        await session.scalars(
            select(WorkExperience)
            .where(WorkExperience.citizen_id == citizen_id, WorkExperience.withdrawn_at.is_(None))
            .order_by(WorkExperience.started_on.desc(), WorkExperience.id)
        )
    )
    return await _work_views(session, entries) if entries else []


async def export_career(session: AsyncSession, citizen_id: uuid.UUID) -> dict[str, Any]:
    """For the citizen's data export: every stance, goal and entry, withdrawn ones too."""
    wants = list(
        await session.execute(
            select(CompetenceWant.competence_id, CompetenceWant.stance, CompetenceWant.updated_at)
            .where(CompetenceWant.citizen_id == citizen_id)
            .order_by(CompetenceWant.competence_id)
        )
    )
    goals = list(
        await session.scalars(
            select(CareerGoal)
            .where(CareerGoal.citizen_id == citizen_id)
            .order_by(CareerGoal.occupation_id)
        )
    )
    entries = list(
        await session.scalars(
            select(WorkExperience)
            .where(WorkExperience.citizen_id == citizen_id)
            .order_by(WorkExperience.recorded_at, WorkExperience.id)
        )
    )
    competences = await competences_by_id(session, [w.competence_id for w in wants])
    occupations = await occupations_by_id(session, [g.occupation_id for g in goals])
    views = await _work_views(session, entries)

    def concept(ref: CompetenceRef | OccupationRef | None) -> dict[str, Any] | None:
        return None if ref is None else {"uri": ref.uri, "labels": ref.preferred_labels}

    return {
        "wants": [
            {
                "competence": concept(competences.get(w.competence_id)),
                "want": w.stance,
                "updatedAt": w.updated_at.isoformat(),
            }
            for w in wants
        ],
        "careerGoals": [
            {
                "occupation": concept(occupations.get(g.occupation_id)),
                "horizonYear": g.horizon_year,
                "active": g.active,
                "updatedAt": g.updated_at.isoformat(),
            }
            for g in goals
        ],
        "workHistory": [
            {
                "id": str(v.id),
                "occupation": concept(v.occupation),
                "recordedBy": v.recorded_by.value,
                "organisation": None
                if v.organisation is None
                else {"id": str(v.organisation.id), "name": v.organisation.name},
                "employerName": v.employer_name,
                "startedOn": v.started_on.isoformat(),
                "endedOn": v.ended_on.isoformat() if v.ended_on else None,
                "recordedAt": v.recorded_at.isoformat(),
                "withdrawnAt": v.withdrawn_at.isoformat() if v.withdrawn_at else None,
            }
            for v in views
        ],
    }
