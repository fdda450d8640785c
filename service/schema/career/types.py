"""What the citizen wants, their work history, career paths and the plan, as GraphQL types."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated

import strawberry

from service.career import paths as paths_domain
from service.career import plan as plan_domain
from service.career import profile
from service.career.check import CareerCheck, CareerMatches
from service.career.texts import Text
from service.schema.career.common import (
    SignalStatus,
    Standing,
    WantsNote,
    WarningLight,
    light_type,
    localized_text,
    signal_status_type,
    standing_type,
    wants_type,
)
from service.schema.citizens.types import SelfDeclared
from service.schema.common import Language
from service.schema.consent.types import OrganisationRef
from service.schema.enums import HolderKind, PlanStepKind, Want
from service.schema.errors import ErrorResult, NotFoundType, ValidationFailedType
from service.schema.learning.types import LearningOpportunity, opportunity_type
from service.schema.matching.types import (
    CompetenceCheck,
    Coverage,
    LearningStep,
    OccupationMatches,
    OccupationSummary,
    RequirementCheck,
    check_type,
    coverage_type,
    learning_step,
    match_type,
    requirement_type,
)
from service.schema.taxonomy.types import Competence, LocalizedText, competence_type
from service.taxonomy.search import CompetenceRef

# --- the profile ------------------------------------------------------------------------------


@strawberry.type(name="CompetenceWant", description="What the citizen wants of a competence")
class CompetenceWantType:
    competence: Competence
    want: Want
    updated_at: dt.datetime


@strawberry.type(description="An occupation the citizen aims for")
class CareerGoal:
    occupation: OccupationSummary
    horizon_year: int | None = strawberry.field(description="By when, if they said")
    active: bool = strawberry.field(description="False once dropped")
    updated_at: dt.datetime


def goal_type(view: profile.GoalView) -> CareerGoal:
    return CareerGoal(
        occupation=OccupationSummary.of(view.occupation),
        horizon_year=view.horizon_year,
        active=view.active,
        updated_at=view.updated_at,
    )


@strawberry.type(name="WorkExperience", description="An occupation the citizen held")
class WorkExperienceType:
    id: strawberry.ID
    occupation: OccupationSummary
    recorded_by: HolderKind = strawberry.field(
        description="CITIZEN: their own entry; ORGANISATION: the employer's statement"
    )
    organisation: OrganisationRef | None = strawberry.field(
        description="The employer that recorded it"
    )
    employer: str | None = strawberry.field(
        description="The recording employer's name, or the citizen's own words for theirs"
    )
    started_on: dt.date
    ended_on: dt.date | None = strawberry.field(description="Null while ongoing")
    recorded_at: dt.datetime
    withdrawn_at: dt.datetime | None


def work_type(view: profile.WorkView) -> WorkExperienceType:
    return WorkExperienceType(
        id=strawberry.ID(str(view.id)),
        occupation=OccupationSummary.of(view.occupation),
        recorded_by=HolderKind(view.recorded_by.value),
        organisation=OrganisationRef.of(view.organisation) if view.organisation else None,
        employer=view.employer,
        started_on=view.started_on,
        ended_on=view.ended_on,
        recorded_at=view.recorded_at,
        withdrawn_at=view.withdrawn_at,
    )


@strawberry.type(description="A competence the work history suggests; accept it to declare it")
class SuggestedCompetence:
    competence: Competence
    from_occupations: list[OccupationSummary] = strawberry.field(
        description="The occupations held that ask for it, essential"
    )
    since: dt.date = strawberry.field(description="When the first of them began")
    until: dt.date | None = strawberry.field(description="When the last ended; null: ongoing")
    text: strawberry.Private[Text]

    @strawberry.field
    def reason(self, lang: Language = Language.NL) -> LocalizedText:
        return localized_text(self.text, lang)


def suggestion_type(view: paths_domain.Suggestion) -> SuggestedCompetence:
    return SuggestedCompetence(
        competence=competence_type(view.competence),
        from_occupations=[OccupationSummary.of(o) for o in view.occupations],
        since=view.since,
        until=view.until,
        text=view.text,
    )


@strawberry.type(
    description="What the citizen wants and the work they did, as far as you may see it"
)
class CareerProfile:
    wants_shown: bool = strawberry.field(
        description="False: no grant of yours includes wants (a legal basis never does)"
    )
    work_history_shown: bool = strawberry.field(
        description="False: no grant of yours includes the work history"
    )
    wants: list[CompetenceWantType]
    goals: list[CareerGoal]
    work_history: list[WorkExperienceType]
    suggested_competences: list[SuggestedCompetence] = strawberry.field(
        description="Essential competences of the occupations held, not in the passport yet"
    )


def profile_type(
    view: profile.CareerView, suggestions: list[paths_domain.Suggestion]
) -> CareerProfile:
    return CareerProfile(
        wants_shown=view.visibility.wants,
        work_history_shown=view.visibility.history,
        wants=[
            CompetenceWantType(
                competence=competence_type(w.competence),
                want=Want(w.want.value),
                updated_at=w.updated_at,
            )
            for w in view.wants
        ],
        goals=[goal_type(g) for g in view.goals],
        work_history=[work_type(w) for w in view.history],
        suggested_competences=[suggestion_type(s) for s in suggestions],
    )


# --- career paths -----------------------------------------------------------------------------


@strawberry.type(description="An occupation the work history leads to, and what it takes")
class CareerPath:
    rank: int
    occupation: OccupationSummary
    score: float = strawberry.field(
        description="The weighted share of its essential competences already there (weights)"
    )
    essential_total: int
    verified: int = strawberry.field(description="Essential competences held, verified")
    self_declared: int = strawberry.field(description="... held by the citizen's own word")
    suggested: list[Competence] = strawberry.field(
        description="Essential competences the work history suggests"
    )
    strengths: list[Competence] = strawberry.field(
        description="Essential competences held that the citizen does not mind using"
    )
    rather_not: list[Competence] = strawberry.field(
        description="Held, but the citizen would rather not use them: never a strength"
    )
    missing: list[Competence]
    not_shared: int = strawberry.field(description="Essential ones outside what you may see")
    transferable: list[Competence] = strawberry.field(
        description="Essential here and in an occupation held: what makes it reachable"
    )
    is_goal: bool
    learning_plan: list[LearningStep] = strawberry.field(
        description="Offers that together close the most missing ones (greedy set cover)"
    )
    lights: list[WarningLight]
    text: strawberry.Private[Text]

    @strawberry.field
    def reason(self, lang: Language = Language.NL) -> LocalizedText:
        return localized_text(self.text, lang)


@strawberry.type(description="How much each kind of holding counts towards a path's score")
class PathWeights:
    verified: float
    self_declared: float
    suggested: float
    text: strawberry.Private[Text]

    @strawberry.field
    def note(self, lang: Language = Language.NL) -> LocalizedText:
        return localized_text(self.text, lang)


@strawberry.type
class CareerPaths:
    work_history_shown: bool
    from_occupations: list[OccupationSummary] = strawberry.field(
        description="The occupations held that the paths start from"
    )
    weights: PathWeights
    paths: list[CareerPath]
    signals: SignalStatus
    text: strawberry.Private[Text]

    @strawberry.field
    def note(self, lang: Language = Language.NL) -> LocalizedText:
        return localized_text(self.text, lang)


def paths_type(view: paths_domain.CareerPaths, lang: Language) -> CareerPaths:
    weights = paths_domain.WEIGHTS
    return CareerPaths(
        work_history_shown=view.history_shown,
        from_occupations=[OccupationSummary.of(o, lang) for o in view.held],
        weights=PathWeights(
            verified=weights[paths_domain.VERIFIED],
            self_declared=weights[paths_domain.DECLARED],
            suggested=weights[paths_domain.SUGGESTED],
            text=view.weights_text,
        ),
        paths=[
            CareerPath(
                rank=p.rank,
                occupation=OccupationSummary.of(p.occupation, lang),
                score=round(p.score, 4),
                essential_total=p.essential_total,
                verified=p.verified,
                self_declared=p.declared,
                suggested=[competence_type(c, lang) for c in p.suggested],
                strengths=[competence_type(c, lang) for c in p.strengths],
                rather_not=[competence_type(c, lang) for c in p.rather_not],
                missing=[competence_type(c, lang) for c in p.missing],
                not_shared=p.not_shared,
                transferable=[competence_type(c, lang) for c in p.transferable],
                is_goal=p.is_goal,
                learning_plan=[learning_step(step, lang) for step in p.learning_plan],
                lights=[light_type(x) for x in p.lights],
                text=p.text,
            )
            for p in view.paths
        ],
        signals=signal_status_type(view.signals),
        text=view.text,
    )


# --- the plan ---------------------------------------------------------------------------------


@strawberry.type(description="One step of a career plan, and why it is there")
class PlanStep:
    position: int
    kind: PlanStepKind
    competences: list[Competence]
    opportunity: LearningOpportunity | None = strawberry.field(description="LEARN: the offer")
    lights: list[WarningLight] = strawberry.field(
        description="Lights on this step's competences (or, MARKET, on the goal)"
    )
    text: strawberry.Private[Text]

    @strawberry.field
    def why(self, lang: Language = Language.NL) -> LocalizedText:
        return localized_text(self.text, lang)


@strawberry.type(description="One ordered plan towards a goal occupation")
class CareerPlan:
    goal: OccupationSummary
    is_goal: bool = strawberry.field(description="One of the citizen's own career goals")
    horizon_year: int | None
    wants: WantsNote
    standing: Standing
    essential: Coverage
    optional: Coverage
    requirements: list[RequirementCheck]
    suggested_competences: list[Competence] = strawberry.field(
        description="Essential competences of the goal that the work history suggests"
    )
    steps: list[PlanStep]
    lights: list[WarningLight]
    signals: SignalStatus


def plan_type(view: plan_domain.CareerPlan, lang: Language) -> CareerPlan:
    checked = view.check
    refs: Mapping[int, CompetenceRef] = {
        r.competence.id: r.competence for r in checked.check.requirements
    }
    return CareerPlan(
        goal=OccupationSummary.of(view.goal, lang),
        is_goal=view.is_goal,
        horizon_year=view.horizon_year,
        wants=wants_type(checked.wants),
        standing=standing_type(checked.standing, refs),
        essential=coverage_type(checked.check.essential),
        optional=coverage_type(checked.check.optional),
        requirements=[
            requirement_type(r, lang, checked.stances.get(r.competence.id))
            for r in checked.check.requirements
        ],
        suggested_competences=[competence_type(c, lang) for c in view.suggested],
        steps=[
            PlanStep(
                position=step.position,
                kind=PlanStepKind(step.kind.value),
                competences=[competence_type(c, lang) for c in step.competences],
                opportunity=opportunity_type(step.opportunity) if step.opportunity else None,
                lights=[light_type(x) for x in step.lights],
                text=step.text,
            )
            for step in view.steps
        ],
        lights=[light_type(x) for x in checked.lights],
        signals=signal_status_type(checked.signals),
    )


# --- mutations' inputs and results -----------------------------------------------------------


@strawberry.input
class SetCompetenceWantInput:
    competence_uri: str = strawberry.field(description="Any ESCO skill or knowledge concept")
    want: Want | None = strawberry.field(description="Null clears what you said of it")


@strawberry.type
class CompetenceWantSet:
    competence: Competence
    want: Want | None
    changed: bool = strawberry.field(description="False: it already stood so")


@strawberry.input
class SetCareerGoalInput:
    occupation_uri: str = strawberry.field(description="An ESCO occupation")
    horizon_year: int | None = strawberry.field(
        default=None, description="By when, from this year up to 50 years ahead"
    )


@strawberry.type
class CareerGoalSet:
    goal: CareerGoal
    changed: bool


@strawberry.input
class RecordWorkExperienceInput:
    occupation_uri: str = strawberry.field(description="The ESCO occupation held")
    employer_name: str | None = strawberry.field(default=None, description="In your words")
    started_on: dt.date
    ended_on: dt.date | None = strawberry.field(default=None, description="Omit while ongoing")
    idempotency_key: str = strawberry.field(
        description="Your own unique key for this request: a retry with it returns the entry"
    )


@strawberry.input
class RecordEmploymentInput:
    insz: str
    occupation_uri: str = strawberry.field(description="The ESCO occupation held")
    started_on: dt.date
    ended_on: dt.date | None = strawberry.field(default=None, description="Omit while ongoing")
    external_ref: str = strawberry.field(
        description="Your own reference: a retry with it returns the same record"
    )


@strawberry.type
class WorkExperienceRecorded:
    experience: WorkExperienceType
    created: bool = strawberry.field(description="False: a retry returned the first record")


@strawberry.type
class WorkExperienceWithdrawn:
    experience: WorkExperienceType


@strawberry.input
class AcceptSuggestedCompetencesInput:
    competence_uris: list[str] = strawberry.field(
        description="Suggested competences to declare as your own (never as verified)"
    )
    language: Language = strawberry.field(
        default=Language.NL, description="The language of the context written with them"
    )


@strawberry.type
class SuggestionsAccepted:
    declared: list[SelfDeclared]


CareerProfileResult = Annotated[
    CareerProfile | NotFoundType | ValidationFailedType, strawberry.union("CareerProfileResult")
]
CareerPathsResult = Annotated[
    CareerPaths | NotFoundType | ValidationFailedType, strawberry.union("CareerPathsResult")
]
CareerPlanResult = Annotated[
    CareerPlan | NotFoundType | ValidationFailedType, strawberry.union("CareerPlanResult")
]
SetCompetenceWantResult = Annotated[
    CompetenceWantSet | ErrorResult, strawberry.union("SetCompetenceWantResult")
]
CareerGoalResult = Annotated[CareerGoalSet | ErrorResult, strawberry.union("CareerGoalResult")]
RecordWorkResult = Annotated[
    WorkExperienceRecorded | ErrorResult, strawberry.union("RecordWorkResult")
]
WithdrawWorkResult = Annotated[
    WorkExperienceWithdrawn | ErrorResult, strawberry.union("WithdrawWorkResult")
]
AcceptSuggestionsResult = Annotated[
    SuggestionsAccepted | ErrorResult, strawberry.union("AcceptSuggestionsResult")
]


# --- the check and the matches, with their career part ---------------------------------------


def career_check_type(view: CareerCheck, lang: Language) -> CompetenceCheck:
    refs = {r.competence.id: r.competence for r in view.check.requirements}
    return check_type(
        view.check,
        lang,
        stances=view.stances,
        standing=standing_type(view.standing, refs),
        wants=wants_type(view.wants),
        lights=[light_type(x) for x in view.lights],
        signals=signal_status_type(view.signals),
    )


def career_matches_type(view: CareerMatches) -> OccupationMatches:
    matches = []
    for rank, found in enumerate(view.matches, start=1):
        match = found.match
        assert match.standing is not None  # career_matches always ranks with a standing
        matches.append(
            match_type(
                match,
                rank=rank,
                standing=standing_type(match.standing, view.refs),
                lights=[light_type(x) for x in found.lights],
            )
        )
    return OccupationMatches(
        matches=matches, wants=wants_type(view.wants), signals=signal_status_type(view.signals)
    )
