"""The team competence check: an organisation's consenting staff against what it needs.

What it needs is up to ``MAX_OCCUPATIONS`` ESCO occupations (their essential and optional
competences together; essential wins) or one of its own competence profiles (with minimum
levels). Who is checked is the staff that consented to the organisation's open team checks
(all of them, or the ones the staff filter names); nobody else, ever. Per competence the
answer counts how many hold it verified and current, verified but stale, verified below the
asked level, only self-declared, not shared, or not at all; it ranks the team's largest gaps,
lists the named people's own results, and plans training: learning offers picked greedily by
how many people-gaps they close (a weighted set cover), with the named people each helps.

The privacy rule, in ``team_count``: a number that rests on fewer than ``MIN_GROUP`` people
shows as "fewer than 5". Named people's own results are visible, so subtracting them from a
team number would leave the counted-only people's part: that part must itself rest on five or
more of them, or none. So whenever the counted-only people in a number, or in the whole check,
are between one and four, the number is withheld (and only the named people in it, whom the
organisation sees anyway, are given as a lower bound). A competence's numbers add up to known
totals, so ``team_row`` withholds more of them until no withheld one can be worked out from
the rest. The plan is weighed with what the answer may show, never with a withheld number.

Every person's part is a read of their passport under their own grant: each is in their access
log (one statement for all), under their shared lock (one statement), and the claims of all
are aggregated by one statement; the cost does not grow with the number of statements.
"""

from __future__ import annotations

import bisect
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Integer,
    Select,
    and_,
    any_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.policy import require_reader
from service.auth.principal import Principal
from service.citizens.service import share_citizen_locks
from service.claims.views import current
from service.consent.service import TeamConsent, team_consents
from service.db.raw import driver_args, driver_sql
from service.errors import ValidationFailed
from service.learning.service import Recommendation, learning_plan
from service.models import Claim
from service.models.enums import TeamDisclosure
from service.models.enums import TeamRequirementStatus as Status
from service.passports.service import (
    CitizenSelector,
    ConsentRead,
    find_many,
    record_consent_reads,
    selector_key,
)
from service.taxonomy.search import (
    CompetenceRef,
    OccupationRef,
    competences_by_id,
    occupation_by_uri,
)
from service.teams.profiles import ProfileView, profile_in_use
from service.teams.service import TEAM_PURPOSE, TeamCheckView, open_team_checks
from service.validation import validate

MIN_GROUP = 5
MAX_OCCUPATIONS = 5
MAX_STAFF = 5_000  # one statement locks, reads and records them all
MAX_PLAN = 10
LARGEST_GAPS = 10
MAX_IDENTIFY = 1_000
OPERATION = "team_competence_check"
GAPS = frozenset({Status.BELOW_LEVEL, Status.SELF_DECLARED, Status.MISSING})
SHOWN_STATUSES = (
    Status.HELD,
    Status.STALE,
    Status.BELOW_LEVEL,
    Status.SELF_DECLARED,
    Status.NOT_SHARED,
    Status.MISSING,
)


@dataclass(frozen=True)
class TeamCount:
    """How many people; ``count`` None when withheld, ``named`` of them the organisation
    sees by name (``people``), so ``at_least`` is all that may be said of a withheld one."""

    count: int | None
    named: int
    fewer_than_five: bool

    @property
    def at_least(self) -> int:
        return self.count if self.count is not None else self.named


def team_count(named: int, counted: int, counted_group: int) -> TeamCount:
    """The one rule of what a team number may show (see the module's docstring):
    ``counted`` of the ``counted_group`` counted-only people, and ``named`` named ones."""
    total = named + counted
    withheld = 0 < total < MIN_GROUP or (
        counted_group > 0 and (counted_group < MIN_GROUP or 0 < counted < MIN_GROUP)
    )
    return TeamCount(None if withheld else total, named, withheld)


GAP = "gap"  # a competence's row: its six statuses and the gap (below level + declared + missing)
Cell = Status | str
# What the answer also tells of a row, so what a withheld number could be worked out from:
# (a total, its parts). The six statuses add up to everyone in the check, and so do held,
# stale, not shared and the gap (None: a total the answer states); the gap is its three
# statuses.
_SUMS: tuple[tuple[Cell | None, frozenset[Cell]], ...] = (
    (None, frozenset(SHOWN_STATUSES)),
    (None, frozenset({Status.HELD, Status.STALE, Status.NOT_SHARED, GAP})),
    (GAP, frozenset({Status.BELOW_LEVEL, Status.SELF_DECLARED, Status.MISSING})),
)


def team_row(people: Mapping[Cell, tuple[int, int]], counted_group: int) -> dict[Cell, TeamCount]:
    """A competence's numbers (each cell: named and counted-only people) through
    ``team_count``, then withheld further until none can be worked out from the rest: in each
    of ``_SUMS``, what the shown cells give away about the withheld ones (their sum, or a
    withheld total whose parts are all shown) must rest on no counted-only people or on five or
    more; else the smallest shown cell with counted-only people is withheld too. So nobody
    counted only is singled out by subtracting either."""
    row = {
        cell: team_count(named, counted, counted_group) for cell, (named, counted) in people.items()
    }
    if counted_group < MIN_GROUP:  # nobody counted only: nothing to protect; fewer: all withheld
        return row
    hidden = {cell for cell, number in row.items() if number.count is None}

    def counted(cells: Iterable[Cell]) -> int:
        return sum(people[cell][1] for cell in cells)

    changed = bool(hidden)
    while changed:
        changed = False
        for total, parts in _SUMS:
            hidden_parts = parts & hidden
            if total is not None and total in hidden:
                exposed = counted([total]) if not hidden_parts else 0  # else: no new sum
            else:
                exposed = counted(hidden_parts)
            if 0 < exposed < MIN_GROUP:
                cells = parts | ({total} if total is not None else set())
                shown = sorted(
                    cells - hidden,
                    key=lambda cell: (people[cell][1] == 0, people[cell][1], str(cell)),
                )
                if shown:
                    hidden.add(shown[0])
                    changed = True
    return {
        cell: TeamCount(None, number.named, True) if cell in hidden else number
        for cell, number in row.items()
    }


@dataclass(frozen=True)
class Target:
    competence: CompetenceRef
    essential: bool
    minimum_scale: str | None = None
    minimum_level: str | None = None
    minimum_rank: int | None = None


@dataclass(frozen=True)
class TeamCompetence:
    target: Target
    counts: Mapping[Status, TeamCount]
    gap: TeamCount  # below the level, only self-declared, or missing


class MemberRef(NamedTuple):
    """A named person: by passport id, and by their position in the ``identify`` list when
    the organisation named them there. (A tuple: a plan lists thousands.)"""

    citizen_id: uuid.UUID
    position: int | None


@dataclass(frozen=True)
class Member:
    ref: MemberRef
    team_check_ids: tuple[uuid.UUID, ...]
    statuses: tuple[tuple[Target, Status], ...]  # for every target, in the check's order

    @property
    def gaps(self) -> list[Target]:
        """The essential competences they lack: below the level, only declared, missing."""
        return [t for t, status in self.statuses if t.essential and status in GAPS]


@dataclass(frozen=True)
class PlanStep:
    recommendation: Recommendation
    people_gaps: int  # the gaps it closes across the team, as far as the answer may show
    helps: list[MemberRef]  # the named people with a gap it closes, by passport id


@dataclass(slots=True)
class _Person:
    """One person in the check, with all their consents to it (several add up, like grants).
    Lean: a check holds thousands, and what it allocates sets the garbage collector going."""

    citizen_id: uuid.UUID
    named: bool
    whole: bool
    scope: frozenset[int]  # the chosen competences, when not the whole passport
    grant_ids: tuple[uuid.UUID, ...]
    team_check_ids: tuple[uuid.UUID, ...]

    @classmethod
    def of(cls, consent: TeamConsent) -> _Person:
        return cls(
            consent.citizen_id,
            consent.disclosure is TeamDisclosure.NAMED,
            consent.competence_ids is None,
            consent.competence_ids or frozenset(),
            (consent.grant_id,),
            (consent.team_check_id,),
        )

    def add(self, consent: TeamConsent) -> None:
        self.named |= consent.disclosure is TeamDisclosure.NAMED
        if consent.competence_ids is None:
            self.whole = True
        else:
            self.scope |= consent.competence_ids
        self.grant_ids += (consent.grant_id,)
        if consent.team_check_id not in self.team_check_ids:
            self.team_check_ids += (consent.team_check_id,)

    def shares(self, competence_id: int) -> bool:
        return self.whole or competence_id in self.scope


# --- The check in SQL ----------------------------------------------------------------------
#
# ``staff`` (with each person's index: results name people by it, not by UUID) and the
# targets with their minimum ranks go in as arrays; each person's current claims about the
# targets they share (a whole passport, or chosen competences given as (person, competence)
# pairs) are folded per person and competence, and classified by ``_status``, the one rule of
# how a person stands. Which claim is current is the claims' own rule (``views.current``).
_STAFF = (
    func.unnest(
        bindparam("staff", type_=ARRAY(UUID(as_uuid=True))),
        bindparam("whole", type_=ARRAY(Boolean)),
        bindparam("named", type_=ARRAY(Boolean)),
    )
    .table_valued("citizen_id", "whole", "named", with_ordinality="idx")
    .render_derived(name="staff")
)
_WANTED = (
    func.unnest(
        bindparam("targets", type_=ARRAY(Integer)), bindparam("minimums", type_=ARRAY(Integer))
    )
    .table_valued("competence_id", "minimum")
    .render_derived(name="wanted")
)
_PAIRS = (
    func.unnest(
        bindparam("scoped_citizens", type_=ARRAY(UUID(as_uuid=True))),
        bindparam("scoped_competences", type_=ARRAY(Integer)),
    )
    .table_valued("citizen_id", "competence_id")
    .render_derived(name="scoped")
)
_VERIFIED = Claim.organisation_id.is_not(None)
_FACTS = (
    select(
        _STAFF.c.idx,
        _STAFF.c.named,
        Claim.competence_id,
        func.max(func.coalesce(Claim.last_used_on, Claim.acquired_on))
        .filter(_VERIFIED)
        .label("used"),
        func.max(Claim.proficiency_rank).filter(_VERIFIED).label("rank"),
        func.bool_or(Claim.organisation_id.is_(None)).label("declared"),
    )
    .select_from(_STAFF.join(Claim, Claim.citizen_id == _STAFF.c.citizen_id))
    .where(
        Claim.competence_id == any_(bindparam("targets", type_=ARRAY(Integer))),
        or_(
            _STAFF.c.whole,
            tuple_(Claim.citizen_id, Claim.competence_id).in_(
                select(_PAIRS.c.citizen_id, _PAIRS.c.competence_id)
            ),
        ),
        current(),
    )
    .group_by(_STAFF.c.idx, _STAFF.c.named, Claim.competence_id)
    .cte("facts")
)


def _status(
    used: ColumnElement[Any],
    rank: ColumnElement[Any],
    declared: ColumnElement[Any],
    minimum: ColumnElement[Any],
    stale_before: ColumnElement[Any],
) -> ColumnElement[str]:
    """How a person stands against a competence they share and hold a current claim about:
    verified (at the minimum level, if one is asked: else BELOW_LEVEL) and used since
    ``stale_before`` is HELD, used before STALE; only declared is SELF_DECLARED. Sharing it
    without any current claim is MISSING, not sharing it NOT_SHARED (no row here)."""
    return case(
        (
            used.is_not(None),
            case(
                (
                    and_(minimum.is_not(None), or_(rank.is_(None), rank < minimum)),
                    literal(Status.BELOW_LEVEL.value),
                ),
                (used >= stale_before, literal(Status.HELD.value)),
                else_=literal(Status.STALE.value),
            ),
        ),
        (declared, literal(Status.SELF_DECLARED.value)),
        else_=literal(Status.MISSING.value),
    )


_CLASSIFIED = (
    select(
        _FACTS.c.idx,
        _FACTS.c.named,
        _FACTS.c.competence_id,
        _status(
            _FACTS.c.used,
            _FACTS.c.rank,
            _FACTS.c.declared,
            _WANTED.c.minimum,
            bindparam("stale_before", type_=Date),
        ).label("status"),
    )
    .select_from(_FACTS.join(_WANTED, _WANTED.c.competence_id == _FACTS.c.competence_id))
    .cte("classified")
)
_COVERS = (Status.HELD.value, Status.STALE.value)
# The team: per competence, status and named-or-not, how many, and (held or stale) which
# named people, by index.
_COUNTS = select(
    _CLASSIFIED.c.competence_id,
    _CLASSIFIED.c.status,
    _CLASSIFIED.c.named,
    func.count(),
    func.array_agg(_CLASSIFIED.c.idx).filter(
        and_(_CLASSIFIED.c.named, or_(*(_CLASSIFIED.c.status == s for s in _COVERS)))
    ),
).group_by(_CLASSIFIED.c.competence_id, _CLASSIFIED.c.status, _CLASSIFIED.c.named)
# Named people's own results (the staff arrays then hold just them).
_STATUSES = select(_CLASSIFIED.c.idx, _CLASSIFIED.c.competence_id, _CLASSIFIED.c.status)


_compiled = cache(driver_sql)  # each of the check's statements, compiled once


async def _run(
    session: AsyncSession,
    statement: Select[Any],
    staff: Sequence[_Person],
    targets: Sequence[Target],
    stale_before: date,
) -> list[tuple[Any, ...]]:
    """Run one of the check's statements for these people (their index: their position here)."""
    sql = _compiled(statement)
    wanted = {t.competence.id for t in targets}
    pairs = sorted(
        (p.citizen_id, c) for p in staff if not p.whole for c in p.scope.intersection(wanted)
    )
    values = {
        "today": clock.today(),
        "stale_before": stale_before,
        "staff": [p.citizen_id for p in staff],
        "whole": [p.whole for p in staff],
        "named": [p.named for p in staff],
        "targets": [t.competence.id for t in targets],
        "minimums": [t.minimum_rank for t in targets],
        "scoped_citizens": [citizen for citizen, _ in pairs],
        "scoped_competences": [competence for _, competence in pairs],
    }
    connection = await session.connection()
    await connection.exec_driver_sql(_SETTINGS)
    rows = await connection.exec_driver_sql(sql[0], driver_args(sql, values))
    return [tuple(row) for row in rows]


# For this transaction only: planned for these arrays each time (PostgreSQL's generic plan for
# a prepared statement, its choice after five runs, guesses their sizes and runs this two to
# three times slower), and memory enough for its two aggregates over every claim not to spill.
_SETTINGS = (
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('work_mem', '16MB', true)"
)


@dataclass(frozen=True)
class _Tally:
    counts: dict[tuple[int, Status, bool], int]  # (competence, status, named?) -> people
    covered: dict[int, set[int]]  # competence -> named people (by index) holding it


async def _tally(
    session: AsyncSession, staff: Sequence[_Person], targets: Sequence[Target], stale_before: date
) -> _Tally:
    counts: dict[tuple[int, Status, bool], int] = {}
    covered: dict[int, set[int]] = {}
    for competence, status, named, count, held in await _run(
        session, _COUNTS, staff, targets, stale_before
    ):
        counts[competence, Status(status), named] = count
        if held:
            covered.setdefault(competence, set()).update(i - 1 for i in held)  # from 1
    return _Tally(counts, covered)


def _team(
    staff: Sequence[_Person], targets: Sequence[Target], tally: _Tally
) -> tuple[list[TeamCompetence], dict[int, set[int]]]:
    """Per target the counts by status, named and counted-only apart, through ``team_count``;
    and per essential target the named people (by index) with a gap. Whoever shares a target
    without a current claim about it misses it."""
    ids = {t.competence.id for t in targets}
    headcount = Counter(p.named for p in staff)  # named? -> people
    group = headcount[False]
    whole = Counter(p.named for p in staff if p.whole)
    sharing: Counter[tuple[int, bool]] = Counter()  # (target, named?) -> scoped people
    whole_named = {i for i, p in enumerate(staff) if p.named and p.whole}
    named_sharing: dict[int, set[int]] = {}
    for i, person in enumerate(staff):
        if not person.whole:
            for cid in person.scope.intersection(ids):
                sharing[cid, person.named] += 1
                if person.named:
                    named_sharing.setdefault(cid, set()).add(i)
    result: list[TeamCompetence] = []
    gap_sets: dict[int, set[int]] = {}
    for target in targets:
        cid = target.competence.id
        raw: dict[Status, dict[bool, int]] = {status: {} for status in SHOWN_STATUSES}
        for named in (True, False):
            shared = whole[named] + sharing[cid, named]
            held = 0
            for status in (Status.HELD, Status.STALE, Status.BELOW_LEVEL, Status.SELF_DECLARED):
                raw[status][named] = tally.counts.get((cid, status, named), 0)
                held += raw[status][named]
            raw[Status.MISSING][named] = shared - held
            raw[Status.NOT_SHARED][named] = headcount[named] - shared
        people: dict[Cell, tuple[int, int]] = {
            s: (raw[s][True], raw[s][False]) for s in SHOWN_STATUSES
        }
        people[GAP] = (sum(raw[s][True] for s in GAPS), sum(raw[s][False] for s in GAPS))
        numbers = team_row(people, group)
        gap = numbers.pop(GAP)
        result.append(TeamCompetence(target, {Status(s): n for s, n in numbers.items()}, gap))
        if target.essential:
            sharing_named = whole_named | named_sharing.get(cid, set())
            gap_sets[cid] = sharing_named - tally.covered.get(cid, set())
    return result, gap_sets


@dataclass(frozen=True)
class TeamCheckResult:
    team_checks: list[TeamCheckView]
    consented: int
    named: int
    counted: int
    occupations: list[OccupationRef]
    profile: ProfileView | None
    stale_before: date
    competences: list[TeamCompetence]
    largest_gaps: list[TeamCompetence]
    plan: list[PlanStep]
    identified: list[Member]  # the named among ``identify``, in its order
    targets: list[Target]
    named_people: list[_Person]  # by passport id
    positions: Mapping[uuid.UUID, int]

    async def people(
        self, session: AsyncSession, first: int, after: str | None
    ) -> tuple[list[Member], bool]:
        """A page of the named people's own results, by passport id, after ``after``: read
        with the check (in its access records), in one more statement."""
        ids = [str(p.citizen_id) for p in self.named_people]
        start = bisect.bisect_right(ids, after) if after else 0
        page = self.named_people[start : start + first]
        members = await _members(session, page, self.targets, self.stale_before, self.positions)
        return members, start + first < len(ids)


async def _members(
    session: AsyncSession,
    people: Sequence[_Person],
    targets: Sequence[Target],
    stale_before: date,
    positions: Mapping[uuid.UUID, int],
) -> list[Member]:
    """Named people's own results: every target's status, in the check's order."""
    if not people:
        return []
    found: dict[tuple[int, int], Status] = {
        (idx - 1, competence): Status(status)
        for idx, competence, status in await _run(session, _STATUSES, people, targets, stale_before)
    }
    return [
        Member(
            MemberRef(person.citizen_id, positions.get(person.citizen_id)),
            tuple(sorted(person.team_check_ids)),
            tuple(
                (
                    target,
                    found.get((i, target.competence.id), Status.MISSING)
                    if person.shares(target.competence.id)
                    else Status.NOT_SHARED,
                )
                for target in targets
            ),
        )
        for i, person in enumerate(people)
    ]


async def _targets(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    occupation_uris: Sequence[str] | None,
    profile_id: uuid.UUID | None,
) -> tuple[list[Target], list[OccupationRef], ProfileView | None]:
    """What the team is checked against, essential competences first."""
    if (occupation_uris is None) == (profile_id is None):
        raise ValidationFailed.one(
            "occupationUris", "give either occupations or a profile", "one_of"
        )
    if profile_id is not None:
        profile = await profile_in_use(session, organisation_id, profile_id)
        if profile is None:
            raise ValidationFailed.one(
                "profileId", "no competence profile of your organisation", "unknown_profile"
            )
        targets = [
            Target(r.competence, r.essential, r.minimum_scale, r.minimum_level, r.minimum_rank)
            for r in profile.requirements
        ]
        return sorted(targets, key=lambda t: not t.essential), [], profile
    assert occupation_uris is not None
    if not 1 <= len(occupation_uris) <= MAX_OCCUPATIONS:
        raise ValidationFailed.one(
            "occupationUris", f"give 1 to {MAX_OCCUPATIONS} occupations", "too_many"
        )
    occupations: dict[int, OccupationRef] = {}
    for i, uri in enumerate(occupation_uris):
        found = await occupation_by_uri(session, uri)
        if found is None:
            raise ValidationFailed.one(
                f"occupationUris.{i}", "not an ESCO occupation", "unknown_occupation"
            )
        occupations.setdefault(found.id, found)
    essential: dict[int, bool] = {}
    for occupation in occupations.values():
        essential.update(dict.fromkeys(occupation.essential_ids, True))
        for cid in occupation.optional_ids:
            essential.setdefault(cid, False)
    refs = await competences_by_id(session, sorted(essential))
    targets = [Target(refs[cid], essential[cid]) for cid in essential if cid in refs]
    targets.sort(key=lambda t: (not t.essential, t.competence.uri))
    return targets, list(occupations.values()), None


async def _identified(
    session: AsyncSession, hmac_key: bytes, identify: Sequence[Mapping[str, Any]]
) -> dict[uuid.UUID, int]:
    """citizen -> position in the ``identify`` list (the first, if named twice)."""
    if len(identify) > MAX_IDENTIFY:
        raise ValidationFailed.one("identify", f"at most {MAX_IDENTIFY} people", "too_many")
    selectors = [
        validate(CitizenSelector, item, prefix=f"identify.{i}") for i, item in enumerate(identify)
    ]
    found = await find_many(session, hmac_key, selectors) if selectors else {}
    positions: dict[uuid.UUID, int] = {}
    for i, selector in enumerate(selectors):
        citizen = found.get(selector_key(selector))
        if citizen is not None:
            positions.setdefault(citizen, i)
    return positions


async def team_competence_check(
    session: AsyncSession,
    principal: Principal,
    hmac_key: bytes,
    *,
    occupation_uris: Sequence[str] | None,
    profile_id: uuid.UUID | None,
    team_check_ids: Sequence[uuid.UUID] | None,
    identify: Sequence[Mapping[str, Any]],
    stale_after_years: int,
    language: str,
    plan_size: int,
) -> TeamCheckResult:
    organisation_id = require_reader(principal)
    if not 1 <= plan_size <= MAX_PLAN:
        raise ValidationFailed.one("planSize", f"must be between 1 and {MAX_PLAN}", "invalid")
    targets, occupations, profile = await _targets(
        session, organisation_id, occupation_uris, profile_id
    )
    wanted = None if team_check_ids is None else sorted(set(team_check_ids))
    teams = await open_team_checks(session, organisation_id, wanted)
    if wanted is not None and len(teams) != len(wanted):
        raise ValidationFailed.one(
            "teamChecks", "name only open team checks of your organisation", "unknown_team_check"
        )
    positions = await _identified(session, hmac_key, identify)
    by_citizen: dict[uuid.UUID, _Person] = {}
    for consent in await team_consents(session, organisation_id, [t.id for t in teams]):
        known = by_citizen.get(consent.citizen_id)
        if known is None:
            by_citizen[consent.citizen_id] = _Person.of(consent)
        else:
            known.add(consent)
    if len(by_citizen) > MAX_STAFF:
        raise ValidationFailed.one(
            "teamChecks", f"more than {MAX_STAFF} people: check fewer at once", "too_many"
        )
    staff = list(by_citizen.values())
    target_ids = [t.competence.id for t in targets]
    stale_before = clock.add_years(clock.today(), -stale_after_years)
    if staff:
        # As ``read_passports``: an erasure waits for this read, or this read for it; and
        # whoever was erased while this read waited is not read at all.
        await share_citizen_locks(session, set(by_citizen))
        recorded = await record_consent_reads(
            session,
            principal,
            [
                ConsentRead(
                    p.citizen_id,
                    p.grant_ids,
                    None if p.whole else sorted(p.scope.intersection(target_ids)),
                )
                for p in staff
            ],
            read_at=clock.now(),
            operation=OPERATION,
            purpose=TEAM_PURPOSE,
            looked_at=sorted(target_ids),
        )
        staff = [p for p in staff if p.citizen_id in recorded]
    tally = await _tally(session, staff, targets, stale_before) if staff else _Tally({}, {})
    competences, gap_sets = _team(staff, targets, tally)
    named = sorted(
        (i for i, p in enumerate(staff) if p.named), key=lambda i: str(staff[i].citizen_id)
    )
    weights = {
        c.target.competence.id: c.gap.at_least
        for c in competences
        if c.target.essential and c.gap.at_least > 0
    }
    recommendations = await learning_plan(
        session, sorted(weights), language=language, limit=plan_size, weights=weights
    )
    named_refs = [
        (i, MemberRef(staff[i].citizen_id, positions.get(staff[i].citizen_id))) for i in named
    ]
    plan = []
    for step in recommendations:
        helped = set().union(*(gap_sets[c.id] for c in step.closes))
        refs = [ref for i, ref in named_refs if i in helped]
        plan.append(PlanStep(step, sum(weights.get(c.id, 0) for c in step.closes), refs))
    largest = sorted(
        (c for c in competences if c.gap.at_least > 0),
        key=lambda c: (-c.gap.at_least, not c.target.essential, c.target.competence.uri),
    )
    named_people = [staff[i] for i in named]
    identified = sorted(
        (p for p in named_people if p.citizen_id in positions),
        key=lambda p: positions[p.citizen_id],
    )
    return TeamCheckResult(
        team_checks=teams,
        consented=len(staff),
        named=len(named),
        counted=len(staff) - len(named),
        occupations=occupations,
        profile=profile,
        stale_before=stale_before,
        competences=competences,
        largest_gaps=largest[:LARGEST_GAPS],
        plan=plan,
        identified=await _members(session, identified, targets, stale_before, positions),
        targets=targets,
        named_people=named_people,
        positions=positions,
    )
