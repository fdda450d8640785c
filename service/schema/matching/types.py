"""The competence check and occupation matches as GraphQL types."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated

import strawberry

from service.matching.service import CompetenceCheck as CheckView
from service.matching.service import Coverage as CoverageView
from service.matching.service import OccupationMatch as MatchView
from service.matching.service import Requirement as RequirementView
from service.models.enums import RequirementStatus as Status
from service.schema.common import Language
from service.schema.enums import RequirementStatus, SkillType
from service.schema.errors import NotFoundType, ValidationFailedType
from service.schema.learning.types import LearningOpportunity, opportunity_type
from service.schema.taxonomy.types import Competence, Labelled, competence_type
from service.taxonomy.search import OccupationRef


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


def requirement_type(view: RequirementView, lang: Language) -> RequirementCheck:
    return RequirementCheck(
        competence=competence_type(view.competence, lang),
        essential=view.relation == "essential",
        status=RequirementStatus(view.status.value),
        light=LIGHTS[view.status],
        last_used_on=view.last_used_on,
        via=[competence_type(ref, lang) for ref in view.via],
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


def check_type(view: CheckView, lang: Language) -> CompetenceCheck:
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
        requirements=[requirement_type(r, lang) for r in view.requirements],
        learning_plan=[
            LearningStep(
                opportunity=opportunity_type(step.opportunity, lang),
                closes=[competence_type(ref, lang) for ref in step.closes],
            )
            for step in view.learning_plan
        ],
    )


@strawberry.type(description="An occupation the passport fits, and why")
class OccupationMatch:
    occupation: OccupationSummary
    essential_held: int
    essential_total: int
    essential_ratio: float
    optional_held: int
    optional_total: int
    optional_ratio: float
    matched: list[Competence] = strawberry.field(description="Essential competences held")
    missing: list[Competence] = strawberry.field(description="Essential competences not held")
    matched_optional: list[Competence]


def match_type(view: MatchView) -> OccupationMatch:
    return OccupationMatch(
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


CompetenceCheckResult = Annotated[
    CompetenceCheck | NotFoundType | ValidationFailedType, strawberry.union("CompetenceCheckResult")
]
OccupationMatchesResult = Annotated[
    OccupationMatches | NotFoundType | ValidationFailedType,
    strawberry.union("OccupationMatchesResult"),
]
