"""The competence check and occupation matches as GraphQL types."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from service.learning.service import Recommendation
from service.matching.service import CompetenceCheck as CheckView
from service.matching.service import Coverage as CoverageView
from service.matching.service import OccupationMatch as MatchView
from service.matching.service import Requirement as RequirementView
from service.models.enums import RequirementStatus as Status
from service.models.enums import Want as WantView
from service.schema.common import Language
from service.schema.enums import RequirementStatus, SkillType, Want
from service.schema.errors import NotFoundType, ValidationFailedType
from service.schema.learning.types import LearningOpportunity, opportunity_type
from service.schema.taxonomy.types import Competence, Labelled, competence_type
from service.taxonomy.search import OccupationRef

if TYPE_CHECKING:
    from service.schema.career.common import SignalStatus, Standing, WantsNote, WarningLight

# The career part of the answers (wants, lights) is typed in service.schema.career, which
# builds on these types: referred to lazily, so neither module imports the other at start.
CAREER = "service.schema.career.common"


@strawberry.enum(
    description="A warning light: covered, covered with a caveat, a gap, or not shown to you"
)
class Light(Enum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    GREY = "grey"


LIGHTS = {
    Status.HELD: Light.GREEN,
    Status.STALE: Light.AMBER,
    Status.PARTIAL: Light.AMBER,
    Status.SELF_DECLARED: Light.AMBER,
    Status.NOT_SHARED: Light.GREY,
    Status.MISSING: Light.RED,
}


@strawberry.type(description="An ESCO occupation, as the check and the matches name it")
class OccupationSummary(Labelled):
    isco_group: str | None

    @classmethod
    def of(cls, ref: OccupationRef, lang: Language = Language.NL) -> OccupationSummary:
        return cls(
            uri=ref.uri,
            isco_group=ref.isco_group,
            preferred_labels=ref.preferred_labels,
            descriptions=ref.descriptions,
            lang=lang,
        )


@strawberry.type
class RequirementCheck:
    competence: Competence
    essential: bool
    status: RequirementStatus
    light: Light
    last_used_on: dt.date | None = strawberry.field(
        description="Most recent use of the verified competence itself"
    )
    via: list[Competence] = strawberry.field(
        description="PARTIAL (and STALE): the narrower competences verified; SELF_DECLARED: the "
        "narrower ones declared (empty when the competence itself is)"
    )
    want: Want | None = strawberry.field(
        description="What the citizen wants of it, if they said and you may see it"
    )
    strength: bool = strawberry.field(
        description="Verified and not a competence the citizen would rather not use any more"
    )


def requirement_type(
    view: RequirementView, lang: Language, want: WantView | None = None
) -> RequirementCheck:
    """A held competence the citizen would rather not use is amber: never a strength."""
    verified = view.status in (Status.HELD, Status.STALE)
    reluctant = want is WantView.RATHER_NOT
    return RequirementCheck(
        competence=competence_type(view.competence, lang),
        essential=view.relation == "essential",
        status=RequirementStatus(view.status.value),
        light=Light.AMBER if reluctant and verified else LIGHTS[view.status],
        last_used_on=view.last_used_on,
        via=[competence_type(ref, lang) for ref in view.via],
        want=Want(want.value) if want else None,
        strength=verified and not reluctant,
    )


@strawberry.type(description="How many required competences stand how, and the shares covered")
class Coverage:
    total: int
    held: int
    stale: int
    partial: int
    self_declared: int
    not_shared: int = strawberry.field(description="Outside what your grants show")
    missing: int
    current_ratio: float = strawberry.field(description="HELD / total")
    verified_ratio: float = strawberry.field(description="(HELD + STALE) / total")
    with_partial_ratio: float = strawberry.field(description="(HELD + STALE + PARTIAL) / total")


def coverage_type(view: CoverageView) -> Coverage:
    return Coverage(
        total=view.total,
        held=view.count(Status.HELD),
        stale=view.count(Status.STALE),
        partial=view.count(Status.PARTIAL),
        self_declared=view.count(Status.SELF_DECLARED),
        not_shared=view.count(Status.NOT_SHARED),
        missing=view.count(Status.MISSING),
        current_ratio=round(view.current_ratio, 4),
        verified_ratio=round(view.verified_ratio, 4),
        with_partial_ratio=round(view.with_partial_ratio, 4),
    )


@strawberry.type
class SkillTypeCount:
    essential: bool
    skill_type: SkillType | None
    status: RequirementStatus
    count: int


@strawberry.type(description="A learning opportunity and the gaps it closes")
class LearningStep:
    opportunity: LearningOpportunity
    closes: list[Competence] = strawberry.field(
        description="Missing essential competences it teaches that no earlier step closes"
    )


@strawberry.type
class CompetenceCheck:
    occupation: OccupationSummary
    stale_after_years: int
    stale_before: dt.date = strawberry.field(description="Verified but last used before: STALE")
    essential: Coverage
    optional: Coverage
    by_skill_type: list[SkillTypeCount]
    requirements: list[RequirementCheck]
    learning_plan: list[LearningStep] = strawberry.field(
        description="Offers that together close the most essential gaps (greedy set cover)"
    )
    standing: Annotated[Standing, strawberry.lazy(CAREER)] = strawberry.field(
        description="The occupation's score for this citizen: fit and wants, with reasons"
    )
    wants: Annotated[WantsNote, strawberry.lazy(CAREER)]
    lights: list[Annotated[WarningLight, strawberry.lazy(CAREER)]] = strawberry.field(
        description="Warning lights and good signs: the labour market, the twin transition, "
        "stale competences, and held competences in falling or rising demand"
    )
    signals: Annotated[SignalStatus, strawberry.lazy(CAREER)]


def check_type(
    view: CheckView,
    lang: Language,
    *,
    stances: Mapping[int, WantView],
    standing: Standing,
    wants: WantsNote,
    lights: list[WarningLight],
    signals: SignalStatus,
) -> CompetenceCheck:
    """Every concept in it is labelled in ``lang`` unless a label asks for another."""
    return CompetenceCheck(
        occupation=OccupationSummary.of(view.occupation, lang),
        stale_after_years=view.stale_after_years,
        stale_before=view.stale_before,
        essential=coverage_type(view.essential),
        optional=coverage_type(view.optional),
        by_skill_type=[
            SkillTypeCount(
                essential=c.relation == "essential",
                skill_type=SkillType(c.skill_type) if c.skill_type else None,
                status=RequirementStatus(c.status.value),
                count=c.count,
            )
            for c in view.by_skill_type
        ],
        requirements=[
            requirement_type(r, lang, stances.get(r.competence.id)) for r in view.requirements
        ],
        learning_plan=[learning_step(step, lang) for step in view.learning_plan],
        standing=standing,
        wants=wants,
        lights=lights,
        signals=signals,
    )


def learning_step(view: Recommendation, lang: Language = Language.NL) -> LearningStep:
    return LearningStep(
        opportunity=opportunity_type(view.opportunity, lang),
        closes=[competence_type(ref, lang) for ref in view.closes],
    )


@strawberry.type(description="An occupation the passport fits, and why")
class OccupationMatch:
    rank: int = strawberry.field(description="1 for the best; `standing` says why")
    occupation: OccupationSummary
    score: float = strawberry.field(description="What it ranks by: the fit, moved by wants")
    standing: Annotated[Standing, strawberry.lazy(CAREER)]
    essential_held: int
    essential_total: int
    essential_ratio: float
    optional_held: int
    optional_total: int
    optional_ratio: float
    matched: list[Competence] = strawberry.field(
        description="Essential competences held, verified, that the citizen does not mind using"
    )
    missing: list[Competence] = strawberry.field(description="Essential competences not held")
    matched_optional: list[Competence]
    rather_not: list[Competence] = strawberry.field(
        description="Held, but the citizen would rather not use them any more: never a strength"
    )
    lights: list[Annotated[WarningLight, strawberry.lazy(CAREER)]]


def match_type(
    view: MatchView, *, rank: int, standing: Standing, lights: list[WarningLight]
) -> OccupationMatch:
    score = view.standing.score if view.standing else view.essential_ratio
    return OccupationMatch(
        rank=rank,
        score=round(score, 4),
        standing=standing,
        rather_not=[competence_type(ref) for ref in view.rather_not],
        lights=lights,
        occupation=OccupationSummary.of(view.occupation),
        essential_held=view.essential_held,
        essential_total=view.essential_total,
        essential_ratio=round(view.essential_ratio, 4),
        optional_held=view.optional_held,
        optional_total=view.optional_total,
        optional_ratio=round(view.optional_ratio, 4),
        matched=[competence_type(ref) for ref in view.matched],
        missing=[competence_type(ref) for ref in view.missing],
        matched_optional=[competence_type(ref) for ref in view.matched_optional],
    )


@strawberry.type
class OccupationMatches:
    matches: list[OccupationMatch]
    wants: Annotated[WantsNote, strawberry.lazy(CAREER)]
    signals: Annotated[SignalStatus, strawberry.lazy(CAREER)]


CompetenceCheckResult = Annotated[
    CompetenceCheck | NotFoundType | ValidationFailedType, strawberry.union("CompetenceCheckResult")
]
OccupationMatchesResult = Annotated[
    OccupationMatches | NotFoundType | ValidationFailedType,
    strawberry.union("OccupationMatchesResult"),
]
