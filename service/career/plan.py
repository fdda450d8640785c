"""One action plan for one goal: the gaps for the goal occupation, the warning lights, what the
citizen wants and the learning offers, gathered into ordered steps, each saying why it is there.

The order, and why:

1. RECONSIDER: the goal relies on competences the citizen would rather not use any more. If
   that holds, every later step serves a goal they may not want; talk about it first.
2. MARKET: what imported labour-market signals say of the goal (shortage, rising, shrinking).
3. REFRESH: essential competences verified but not used for long: the shortest way back.
4. VERIFY: essential competences resting on the citizen's own word, a narrower competence or
   the work history (suggested): assessment (e.g. EVC) is quicker than a course.
5. LEARN: the published offers of the greedy cover, those closing gaps the citizen wants to
   develop first, each naming the gaps it closes.
6. FIND_LEARNING: essential gaps no published offer closes.

A plan is a read of the passport (authorized and logged by whoever reads it first); under a
reader's grant it shows wants and work history only if the grant includes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from service.career.check import CareerCheck, career_check
from service.career.lights import MARKET, Light
from service.career.paths import suggested_ids
from service.career.profile import CareerView
from service.career.texts import Text
from service.errors import ValidationFailed
from service.learning.service import OpportunityView
from service.matching.service import ESSENTIAL, Holdings, Requirement
from service.models.enums import PlanStepKind, RequirementStatus, Want
from service.passports.service import Passport
from service.taxonomy.search import CompetenceRef, OccupationRef


@dataclass(frozen=True)
class PlanStep:
    position: int
    kind: PlanStepKind
    text: Text
    competences: list[CompetenceRef]
    opportunity: OpportunityView | None = None
    lights: list[Light] = field(default_factory=list)


@dataclass(frozen=True)
class CareerPlan:
    goal: OccupationRef
    is_goal: bool  # one of the citizen's own goals (as far as the caller may see them)
    horizon_year: int | None
    check: CareerCheck
    suggested: list[CompetenceRef]  # essential competences of the goal the work history suggests
    steps: list[PlanStep]


def _goal(career: CareerView, goal: OccupationRef | None) -> OccupationRef:
    if goal is not None:
        return goal
    if career.goals:  # ordered by horizon: the nearest first
        return career.goals[0].occupation
    raise ValidationFailed.one(
        "goalUri", "name the goal occupation: no career goal is recorded (or shared)", "no_goal"
    )


async def career_plan(
    session: AsyncSession,
    passport: Passport,
    career: CareerView,
    goal: OccupationRef | None,
    *,
    stale_after_years: int,
    language: str,
    region: str | None,
) -> CareerPlan:
    """``goal`` None: the citizen's nearest goal."""
    occupation = _goal(career, goal)
    holdings = Holdings.of(passport)
    held = sorted(holdings.verified.keys() | holdings.declared)
    checked = await career_check(
        session,
        passport,
        career,
        occupation,
        stale_after_years=stale_after_years,
        language=language,
        region=region,
        light_competences=held,  # every held competence in falling demand, not only required
    )
    stances = checked.stances
    essential = [r for r in checked.check.requirements if r.relation == ESSENTIAL]
    suggested = set(suggested_ids(career.history, holdings))
    competence_lights = [light for light in checked.lights if light.occupation is None]

    def lights_on(refs: Sequence[CompetenceRef]) -> list[Light]:
        ids = {ref.id for ref in refs}
        return [x for x in competence_lights if any(c.id in ids for c in x.competences)]

    def refs(found: Sequence[Requirement]) -> list[CompetenceRef]:
        return [r.competence for r in found]

    steps: list[tuple[PlanStepKind, Text, list[CompetenceRef], OpportunityView | None, list[Light]]]
    steps = []
    reluctant = refs([r for r in essential if stances.get(r.competence.id) is Want.RATHER_NOT])
    if reluctant:
        steps.append(
            (
                PlanStepKind.RECONSIDER,
                Text("plan.reconsider", {"count": len(reluctant)}),
                reluctant,
                None,
                lights_on(reluctant),
            )
        )
    for light in checked.lights:
        if light.kind in MARKET:
            steps.append((PlanStepKind.MARKET, light.text, [], None, [light]))
    stale = refs([r for r in essential if r.status is RequirementStatus.STALE])
    if stale:
        date = checked.check.stale_before.isoformat()
        steps.append(
            (
                PlanStepKind.REFRESH,
                Text("plan.refresh", {"count": len(stale), "date": date}),
                stale,
                None,
                lights_on(stale),
            )
        )
    to_verify = refs(
        [
            r
            for r in essential
            if r.status in (RequirementStatus.SELF_DECLARED, RequirementStatus.PARTIAL)
            or (r.status is RequirementStatus.MISSING and r.competence.id in suggested)
        ]
    )
    if to_verify:
        steps.append(
            (
                PlanStepKind.VERIFY,
                Text("plan.verify", {"count": len(to_verify)}),
                to_verify,
                None,
                lights_on(to_verify),
            )
        )
    develop = {c for c, want in stances.items() if want is Want.DEVELOP}
    courses = sorted(
        checked.check.learning_plan,
        key=lambda step: -sum(1 for c in step.closes if c.id in develop),
    )  # stable: the greedy order among equals
    closed: set[int] = set()
    for course in courses:
        wanted = sum(1 for c in course.closes if c.id in develop)
        params = {"count": len(course.closes), "wanted": wanted}
        steps.append(
            (
                PlanStepKind.LEARN,
                Text("plan.learn_wanted" if wanted else "plan.learn", params),
                list(course.closes),
                course.opportunity,
                lights_on(course.closes),
            )
        )
        closed.update(c.id for c in course.closes)
    uncovered = refs(
        [
            r
            for r in essential
            if r.status is RequirementStatus.MISSING
            and r.competence.id not in suggested
            and r.competence.id not in closed
        ]
    )
    if uncovered:
        steps.append(
            (
                PlanStepKind.FIND_LEARNING,
                Text("plan.find_learning", {"count": len(uncovered)}),
                uncovered,
                None,
                lights_on(uncovered),
            )
        )
    goals = {g.occupation.id: g for g in career.goals}
    return CareerPlan(
        goal=occupation,
        is_goal=occupation.id in goals,
        horizon_year=goals[occupation.id].horizon_year if occupation.id in goals else None,
        check=checked,
        suggested=[r.competence for r in essential if r.competence.id in suggested],
        steps=[
            PlanStep(position, kind, text, competences, opportunity, lights)
            for position, (kind, text, competences, opportunity, lights) in enumerate(
                steps, start=1
            )
        ],
    )
