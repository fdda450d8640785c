"""The competence check: a passport against what an occupation asks, and occupations that fit.

Both work on a passport as its reader may see it (``service.passports``: authorized, and
recorded in the citizen's access log), so a reader under a grant for some competences gets a
check of just those. Only active verified claims count as holding a competence; a
self-declaration is reported, never counted as covered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.career.fit import (
    NO_PREFERENCES,
    SCORE_SQL,
    Preferences,
    Standing,
    score_parameters,
    standing,
)
from service.learning.service import Recommendation, learning_plan
from service.models.enums import ClaimStatus, RequirementStatus, Want
from service.passports.service import Passport
from service.taxonomy.search import (
    CompetenceRef,
    OccupationRef,
    competences_by_id,
    occupation_ref,
)

ESSENTIAL, OPTIONAL = "essential", "optional"
# A verified competence counts as covering; among the rest only these are gaps a course closes.
GAPS = frozenset(
    {RequirementStatus.PARTIAL, RequirementStatus.SELF_DECLARED, RequirementStatus.MISSING}
)
MAX_HIERARCHY_DEPTH = 12  # ESCO's skill hierarchy is 10 levels deep at most

# Which of the held competences (or their broader concepts, transitively) are among the
# required ones: held narrower -> required broader.
_NARROWER_THAN = text(
    """
    WITH RECURSIVE up(held, ancestor, depth) AS (
      SELECT b.competence_id, b.broader_id, 1 FROM competence_broader b
      WHERE b.competence_id = ANY(:held)
      UNION
      SELECT up.held, b.broader_id, up.depth + 1 FROM up
      JOIN competence_broader b ON b.competence_id = up.ancestor
      WHERE up.depth < :depth
    )
    SELECT DISTINCT held, ancestor FROM up WHERE ancestor = ANY(:required)
    """
)


@dataclass(frozen=True)
class Requirement:
    competence: CompetenceRef
    relation: str
    status: RequirementStatus
    last_used_on: date | None  # of the verified competence itself, when held or stale
    via: list[CompetenceRef] = field(default_factory=list)  # the narrower ones that match it


@dataclass(frozen=True)
class Coverage:
    counts: Mapping[RequirementStatus, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, status: RequirementStatus) -> int:
        return self.counts.get(status, 0)

    def _ratio(self, *statuses: RequirementStatus) -> float:
        return sum(self.count(s) for s in statuses) / self.total if self.total else 0.0

    @property
    def current_ratio(self) -> float:
        """Verified and used recently."""
        return self._ratio(RequirementStatus.HELD)

    @property
    def verified_ratio(self) -> float:
        """Verified, however long ago it was used."""
        return self._ratio(RequirementStatus.HELD, RequirementStatus.STALE)

    @property
    def with_partial_ratio(self) -> float:
        """Verified, or a narrower competence verified."""
        return self._ratio(
            RequirementStatus.HELD, RequirementStatus.STALE, RequirementStatus.PARTIAL
        )


@dataclass(frozen=True)
class SkillTypeCount:
    relation: str
    skill_type: str | None
    status: RequirementStatus
    count: int


@dataclass(frozen=True)
class CompetenceCheck:
    occupation: OccupationRef
    stale_after_years: int
    stale_before: date
    requirements: list[Requirement]
    essential: Coverage
    optional: Coverage
    by_skill_type: list[SkillTypeCount]
    learning_plan: list[Recommendation]


@dataclass(frozen=True)
class Holdings:
    """What the passport shows: verified competences with their most recent use, self-declared
    ones, and (for a reader under grants for some competences) what it could show at all."""

    verified: dict[int, date]
    declared: frozenset[int]
    scope: frozenset[int] | None = None

    @classmethod
    def of(cls, passport: Passport) -> Holdings:
        return cls(
            verified={
                pc.competence.id: pc.most_recent_use
                for pc in passport.competences
                if pc.status is ClaimStatus.ACTIVE
            },
            declared=frozenset(c.competence.id for c in passport.self_declared),
            scope=passport.scope,
        )


async def _narrower(
    session: AsyncSession, held: Iterable[int], required: Iterable[int]
) -> dict[int, set[int]]:
    """required competence -> the held competences narrower than it."""
    rows = await session.execute(
        _NARROWER_THAN,
        {"held": sorted(held), "required": sorted(required), "depth": MAX_HIERARCHY_DEPTH},
    )
    found: dict[int, set[int]] = {}
    for narrower, broader in rows:
        found.setdefault(broader, set()).add(narrower)
    return found


def _status(
    competence_id: int,
    holdings: Holdings,
    narrower: Mapping[int, set[int]],
    stale_before: date,
) -> tuple[RequirementStatus, set[int]]:
    below = narrower.get(competence_id, set())
    verified_below = below & holdings.verified.keys()
    if competence_id in holdings.verified:
        if holdings.verified[competence_id] >= stale_before:
            return RequirementStatus.HELD, set()
        return RequirementStatus.STALE, verified_below  # with any fresher, narrower evidence
    if verified_below:
        return RequirementStatus.PARTIAL, verified_below
    declared_below = below & holdings.declared
    if competence_id in holdings.declared or declared_below:
        return RequirementStatus.SELF_DECLARED, declared_below
    if holdings.scope is not None and competence_id not in holdings.scope:
        return RequirementStatus.NOT_SHARED, set()
    return RequirementStatus.MISSING, set()


async def competence_check(
    session: AsyncSession,
    passport: Passport,
    occupation: OccupationRef,
    *,
    stale_after_years: int,
    language: str,
) -> CompetenceCheck:
    holdings = Holdings.of(passport)
    required = [(cid, ESSENTIAL) for cid in occupation.essential_ids] + [
        (cid, OPTIONAL) for cid in occupation.optional_ids
    ]
    required_ids = {cid for cid, _ in required}
    held_ids = holdings.verified.keys() | holdings.declared
    narrower = await _narrower(session, held_ids, required_ids) if held_ids else {}
    refs = await competences_by_id(session, sorted(required_ids | held_ids))
    stale_before = clock.add_years(clock.today(), -stale_after_years)
    requirements: list[Requirement] = []
    for competence_id, relation in required:
        if competence_id not in refs:
            continue
        status, via = _status(competence_id, holdings, narrower, stale_before)
        requirements.append(
            Requirement(
                competence=refs[competence_id],
                relation=relation,
                status=status,
                last_used_on=holdings.verified.get(competence_id),
                via=[refs[v] for v in sorted(via) if v in refs],
            )
        )

    def coverage(relation: str) -> Coverage:
        return Coverage(Counter(r.status for r in requirements if r.relation == relation))

    by_type = Counter((r.relation, r.competence.skill_type, r.status) for r in requirements)
    gaps = [r.competence.id for r in requirements if r.relation == ESSENTIAL and r.status in GAPS]
    return CompetenceCheck(
        occupation=occupation,
        stale_after_years=stale_after_years,
        stale_before=stale_before,
        requirements=requirements,
        essential=coverage(ESSENTIAL),
        optional=coverage(OPTIONAL),
        by_skill_type=[
            SkillTypeCount(relation, skill_type, status, n)
            for (relation, skill_type, status), n in sorted(
                by_type.items(), key=lambda item: (item[0][0], item[0][1] or "", item[0][2])
            )
        ],
        learning_plan=await learning_plan(session, gaps, language=language),
    )


@dataclass(frozen=True)
class OccupationMatch:
    occupation: OccupationRef
    essential_held: int
    essential_total: int
    optional_held: int
    optional_total: int
    matched: list[CompetenceRef]  # essential competences held, verified, that they don't mind
    missing: list[CompetenceRef]  # essential competences it does not
    matched_optional: list[CompetenceRef]
    rather_not: list[CompetenceRef] = field(default_factory=list)  # held, would rather not use
    standing: Standing | None = None  # the score it ranks by, and why

    @property
    def essential_ratio(self) -> float:
        return self.essential_held / self.essential_total if self.essential_total else 0.0

    @property
    def optional_ratio(self) -> float:
        return self.optional_held / self.optional_total if self.optional_total else 0.0


# Every occupation sharing a verified competence with the passport, ranked by its score
# (service.career.fit: the share of its essential competences held, verified, moved by what the
# citizen wants; without wants, that share alone), then by that share, then by the share of
# its optional ones. The passport's relations are counted (an index on competence_id), each
# occupation's totals are precomputed by the ESCO import (occupation_requirement_counts), and
# only the winners' lists are read.
_RANKED = text(
    f"""
    WITH held AS (
      SELECT oc.occupation_id,
             count(*) FILTER (WHERE oc.relation = 'essential') AS essential_held,
             count(*) FILTER (WHERE oc.relation = 'optional') AS optional_held
      FROM occupation_competences oc
      WHERE oc.competence_id = ANY(CAST(:held AS int[]))
      GROUP BY oc.occupation_id
    ), wanted AS (  -- a handful of competences: counted apart, so the estimates above hold
      SELECT oc.occupation_id,
             count(*) FILTER (WHERE w.stance = 'use_more') AS use_more,
             count(*) FILTER (WHERE w.stance = 'develop') AS develop,
             count(*) FILTER (WHERE w.stance = 'rather_not' AND oc.relation = 'essential')
               AS rather_not
      FROM occupation_competences oc
      JOIN unnest(CAST(:wanted AS int[]), CAST(:stances AS text[])) AS w(competence_id, stance)
        USING (competence_id)
      GROUP BY oc.occupation_id
    ), hits AS (
      SELECT h.occupation_id, h.essential_held, h.optional_held,
             coalesce(w.use_more, 0) AS use_more, coalesce(w.develop, 0) AS develop,
             coalesce(w.rather_not, 0) AS rather_not
      FROM held h LEFT JOIN wanted w USING (occupation_id)
    ), ranked AS (
      SELECT h.*, t.essential_total, t.optional_total,
             h.essential_held::float8 / t.essential_total AS fit, {SCORE_SQL} AS score,
             h.optional_held::float8 / nullif(t.optional_total, 0) AS optional_fit
      FROM hits h JOIN occupation_requirement_counts t USING (occupation_id)
      WHERE t.essential_total > 0  -- ranked by essential coverage: one that asks none has none
    ), top AS (  -- the winners first: only they are joined and listed
      SELECT * FROM ranked
      ORDER BY score DESC, fit DESC, optional_fit DESC NULLS LAST, essential_held DESC,
               occupation_id
      LIMIT :first
    )
    SELECT o.id, o.uri, o.code, o.isco_group, o.preferred_labels, o.descriptions,
           r.essential_held, r.essential_total, r.optional_held, r.optional_total, r.score,
           array(SELECT oc.competence_id FROM occupation_competences oc
                 WHERE oc.occupation_id = o.id AND oc.relation = 'essential'
                 ORDER BY oc.competence_id) AS essential,
           array(SELECT oc.competence_id FROM occupation_competences oc
                 WHERE oc.occupation_id = o.id AND oc.relation = 'optional'
                 ORDER BY oc.competence_id) AS optional
    FROM top r
    JOIN occupations o ON o.id = r.occupation_id
    ORDER BY r.score DESC, r.fit DESC, r.optional_fit DESC NULLS LAST, r.essential_held DESC,
             o.id
    """  # noqa: S608 - SCORE_SQL is a constant, the values are bound parameters
)


async def occupation_matches(
    session: AsyncSession,
    passport: Passport,
    *,
    first: int,
    preferences: Preferences = NO_PREFERENCES,
) -> list[OccupationMatch]:
    """``preferences``: what the citizen wants, as far as the caller may see it."""
    held = sorted(Holdings.of(passport).verified)
    if not held or first <= 0:
        return []
    mine = set(held)
    wanted = sorted(preferences.stances)
    rows = list(
        await session.execute(
            _RANKED,
            {
                "held": held,
                "wanted": wanted,
                "stances": [preferences.stances[c].value for c in wanted],
                "first": first,
                **score_parameters(preferences),
            },
        )
    )
    listed_ids = sorted({cid for row in rows for cid in (*row.essential, *row.optional)})
    refs = await competences_by_id(session, listed_ids)

    def listed(ids: Sequence[int], holding: bool) -> list[CompetenceRef]:
        return [refs[c] for c in ids if c in refs and (c in mine) is holding]

    matches = []
    for row in rows:
        # Held, but they would rather not use it: never shown as a strength.
        reluctant = set(preferences.with_stance(Want.RATHER_NOT, (*row.essential, *row.optional)))
        matches.append(
            OccupationMatch(
                occupation=occupation_ref(row),
                essential_held=row.essential_held,
                essential_total=row.essential_total,
                optional_held=row.optional_held,
                optional_total=row.optional_total,
                matched=[r for r in listed(row.essential, True) if r.id not in reluctant],
                missing=listed(row.essential, False),
                matched_optional=[r for r in listed(row.optional, True) if r.id not in reluctant],
                rather_not=[
                    r for r in listed((*row.essential, *row.optional), True) if r.id in reluctant
                ],
                standing=standing(row.id, row.essential, row.optional, mine, preferences),
            )
        )
    return matches
