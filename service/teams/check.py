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
organisation sees anyway, are given as a lower bound). The plan is weighed with what the
answer may show, never with a withheld number.

Every person's part is a read of their passport under their own grant: each is in their access
log (one statement for all), under their shared lock (one statement), and the claims of all
are aggregated by one statement; the cost does not grow with the number of statements.
"""

from __future__ import annotations

import bisect
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Integer, and_, any_, bindparam, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.policy import require_reader
from service.auth.principal import Principal
from service.citizens.service import share_citizen_locks
from service.claims.views import claims_select
from service.consent.service import TeamConsent, team_consents
from service.errors import ValidationFailed
from service.learning.service import Recommendation, learning_plan
from service.models import Claim
from service.models.enums import ClaimStatus, TeamDisclosure
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


@dataclass(frozen=True)
class MemberRef:
    """A named person: by passport id, and by their position in the ``identify`` list when
    the organisation named them there."""

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
    helps: list[MemberRef]  # the named people with a gap it closes


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
    named_ids: list[uuid.UUID]  # every named person, by passport id
    member: Callable[[uuid.UUID], Member]  # one named person's own result

    def people(self, first: int, after: str | None) -> tuple[list[Member], bool]:
        """A page of the named people's own results, by passport id, after ``after``."""
        start = bisect.bisect_right([str(c) for c in self.named_ids], after) if after else 0
        page = self.named_ids[start : start + first]
        return [self.member(c) for c in page], start + first < len(self.named_ids)


@dataclass
class _Person:
    citizen_id: uuid.UUID
    named: bool = False
    whole: bool = False
    scope: set[int] = field(default_factory=set)
    grant_ids: list[uuid.UUID] = field(default_factory=list)
    team_check_ids: set[uuid.UUID] = field(default_factory=set)

    def add(self, consent: TeamConsent) -> None:
        """Several consents of one person (to several team checks) add up, like grants."""
        self.named |= consent.disclosure is TeamDisclosure.NAMED
        if consent.competence_ids is None:
            self.whole = True
        else:
            self.scope |= consent.competence_ids
        self.grant_ids.append(consent.grant_id)
        self.team_check_ids.add(consent.team_check_id)

    def shares(self, competence_id: int) -> bool:
        return self.whole or competence_id in self.scope


@dataclass(frozen=True)
class _Fact:
    """What a person's current claims say of one competence."""

    used: date | None  # most recent use among the verified claims; None: none verified
    rank: int | None  # highest level among the verified claims
    declared: bool  # a current self-declaration


def status_of(fact: _Fact | None, target: Target, stale_before: date) -> Status:
    """One person against one competence that they share with the check."""
    if fact is not None and fact.used is not None:
        minimum = target.minimum_rank
        if minimum is not None and (fact.rank is None or fact.rank < minimum):
            return Status.BELOW_LEVEL
        return Status.HELD if fact.used >= stale_before else Status.STALE
    if fact is not None and fact.declared:
        return Status.SELF_DECLARED
    return Status.MISSING


# The current claims of many people about the targets, each person's narrowed to what they
# share: whole passports in ``whole``, chosen competences as (person, competence) pairs.
# Which claim is current is the claims' own rule (``claims_select``'s status).
_PAIRS = (
    func.unnest(
        bindparam("scoped_citizens", type_=ARRAY(UUID(as_uuid=True))),
        bindparam("scoped_competences", type_=ARRAY(Integer)),
    )
    .table_valued("citizen_id", "competence_id")
    .render_derived(name="scoped")
)
_CLAIMS = claims_select(
    Claim.competence_id == any_(bindparam("targets", type_=ARRAY(Integer))),
    or_(
        Claim.citizen_id == any_(bindparam("whole", type_=ARRAY(UUID(as_uuid=True)))),
        tuple_(Claim.citizen_id, Claim.competence_id).in_(
            select(_PAIRS.c.citizen_id, _PAIRS.c.competence_id)
        ),
    ),
).subquery()
_CURRENT = _CLAIMS.c.status == ClaimStatus.ACTIVE.value
_VERIFIED = and_(_CURRENT, _CLAIMS.c.organisation_id.is_not(None))
_FACTS = (
    select(
        _CLAIMS.c.citizen_id,
        _CLAIMS.c.competence_id,
        func.max(func.coalesce(_CLAIMS.c.last_used_on, _CLAIMS.c.acquired_on))
        .filter(_VERIFIED)
        .label("used"),
        func.max(_CLAIMS.c.proficiency_rank).filter(_VERIFIED).label("rank"),
        func.bool_or(_CLAIMS.c.organisation_id.is_(None)).label("declared"),
    )
    .where(_CURRENT)
    .group_by(_CLAIMS.c.citizen_id, _CLAIMS.c.competence_id)
)


async def _facts(
    session: AsyncSession, people: Mapping[uuid.UUID, _Person], targets: Sequence[int]
) -> dict[tuple[uuid.UUID, int], _Fact]:
    wanted = set(targets)
    pairs = sorted(
        (person.citizen_id, c)
        for person in people.values()
        if not person.whole
        for c in person.scope & wanted
    )
    rows = await session.execute(
        _FACTS,
        {
            "today": clock.today(),
            "targets": sorted(wanted),
            "whole": sorted(p.citizen_id for p in people.values() if p.whole),
            "scoped_citizens": [citizen for citizen, _ in pairs],
            "scoped_competences": [competence for _, competence in pairs],
        },
    )
    return {
        (citizen, competence): _Fact(used, rank, bool(declared))
        for citizen, competence, used, rank, declared in rows
    }


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
    people: dict[uuid.UUID, _Person] = {}
    for consent in await team_consents(session, organisation_id, [t.id for t in teams]):
        people.setdefault(consent.citizen_id, _Person(consent.citizen_id)).add(consent)
    if len(people) > MAX_STAFF:
        raise ValidationFailed.one(
            "teamChecks", f"more than {MAX_STAFF} people: check fewer at once", "too_many"
        )
    target_ids = [t.competence.id for t in targets]
    facts: dict[tuple[uuid.UUID, int], _Fact] = {}
    if people:
        # As ``read_passports``: an erasure waits for this read, or this read for it.
        await share_citizen_locks(session, set(people))
        facts = await _facts(session, people, target_ids)
        reads = [
            ConsentRead(
                person.citizen_id,
                person.grant_ids,
                target_ids if person.whole else sorted(person.scope.intersection(target_ids)),
            )
            for person in people.values()
        ]
        recorded = await record_consent_reads(
            session,
            principal,
            reads,
            read_at=clock.now(),
            operation=OPERATION,
            purpose=TEAM_PURPOSE,
        )
        people = {c: p for c, p in people.items() if c in recorded}  # erased meanwhile: gone
    stale_before = clock.add_years(clock.today(), -stale_after_years)
    competences, gap_sets = _tally(people, targets, facts, stale_before)

    def ref(citizen_id: uuid.UUID) -> MemberRef:
        return MemberRef(citizen_id, positions.get(citizen_id))

    def member(citizen_id: uuid.UUID) -> Member:
        person = people[citizen_id]
        return Member(
            ref(citizen_id),
            tuple(sorted(person.team_check_ids)),
            tuple(
                (
                    target,
                    status_of(facts.get((citizen_id, target.competence.id)), target, stale_before)
                    if person.shares(target.competence.id)
                    else Status.NOT_SHARED,
                )
                for target in targets
            ),
        )

    named = sorted((c for c, p in people.items() if p.named), key=str)
    weights = {
        c.target.competence.id: c.gap.at_least
        for c in competences
        if c.target.essential and c.gap.at_least > 0
    }
    recommendations = await learning_plan(
        session, sorted(weights), language=language, limit=plan_size, weights=weights
    )
    plan = [
        PlanStep(
            step,
            sum(weights.get(c.id, 0) for c in step.closes),
            [ref(c) for c in sorted(set().union(*(gap_sets[c.id] for c in step.closes)), key=str)],
        )
        for step in recommendations
    ]
    largest = sorted(
        (c for c in competences if c.gap.at_least > 0),
        key=lambda c: (-c.gap.at_least, not c.target.essential, c.target.competence.uri),
    )
    identified = sorted((c for c in named if c in positions), key=positions.__getitem__)
    return TeamCheckResult(
        team_checks=teams,
        consented=len(people),
        named=len(named),
        counted=len(people) - len(named),
        occupations=occupations,
        profile=profile,
        stale_before=stale_before,
        competences=competences,
        largest_gaps=largest[:LARGEST_GAPS],
        plan=plan,
        identified=[member(c) for c in identified],
        named_ids=named,
        member=member,
    )


def _tally(
    people: Mapping[uuid.UUID, _Person],
    targets: Sequence[Target],
    facts: Mapping[tuple[uuid.UUID, int], _Fact],
    stale_before: date,
) -> tuple[list[TeamCompetence], dict[int, set[uuid.UUID]]]:
    """Per target the counts by status (named and counted-only apart, then through
    ``team_count``), and per essential target the named people with a gap. Linear in people
    and facts, not in people x targets: whoever shares a target and has no fact of it misses
    it."""
    by_id = {t.competence.id: t for t in targets}
    headcount = Counter(p.named for p in people.values())  # named? -> people
    group = headcount[False]
    whole = Counter(p.named for p in people.values() if p.whole)
    sharing: Counter[tuple[int, bool]] = Counter()  # (target, named?) -> scoped people
    whole_named = {c for c, p in people.items() if p.named and p.whole}
    named_sharing: dict[int, set[uuid.UUID]] = {}
    for person in people.values():
        if person.whole:
            continue
        for cid in person.scope.intersection(by_id):
            sharing[cid, person.named] += 1
            if person.named:
                named_sharing.setdefault(cid, set()).add(person.citizen_id)
    found: Counter[tuple[int, Status, bool]] = Counter()
    covered: dict[int, set[uuid.UUID]] = {}  # named people holding it, current or stale
    for (citizen, cid), fact in facts.items():
        whose, target = people.get(citizen), by_id.get(cid)
        if whose is None or target is None:
            continue
        status = status_of(fact, target, stale_before)
        found[cid, status, whose.named] += 1
        if whose.named and status not in GAPS:
            covered.setdefault(cid, set()).add(citizen)
    result: list[TeamCompetence] = []
    gap_sets: dict[int, set[uuid.UUID]] = {}
    for target in targets:
        cid = target.competence.id
        raw: dict[Status, dict[bool, int]] = {status: {} for status in SHOWN_STATUSES}
        for named in (True, False):
            shared = whole[named] + sharing[cid, named]
            facts_here = 0
            for status in (Status.HELD, Status.STALE, Status.BELOW_LEVEL, Status.SELF_DECLARED):
                raw[status][named] = found[cid, status, named]
                facts_here += raw[status][named]
            raw[Status.MISSING][named] = shared - facts_here
            raw[Status.NOT_SHARED][named] = headcount[named] - shared
        counts = {s: team_count(raw[s][True], raw[s][False], group) for s in SHOWN_STATUSES}
        gap = team_count(sum(raw[s][True] for s in GAPS), sum(raw[s][False] for s in GAPS), group)
        result.append(TeamCompetence(target, counts, gap))
        if target.essential:
            gap_sets[cid] = (whole_named | named_sharing.get(cid, set())) - covered.get(cid, set())
    return result, gap_sets
