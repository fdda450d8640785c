"""Learning opportunities as GraphQL types."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from service.learning.service import OpportunityView, RowOutcome
from service.schema.common import Language
from service.schema.enums import LearningMode, OpportunityStatus
from service.schema.errors import (
    ErrorResult,
    ValidationFailedType,
    error_result,
)
from service.schema.taxonomy.types import Competence, competence_type


@strawberry.type(description="A course or programme and the ESCO competences it teaches")
class LearningOpportunity:
    id: strawberry.ID
    provider_id: strawberry.ID
    provider_name: str
    external_ref: str
    title: str
    mode: LearningMode
    duration_hours: int | None
    location: str | None
    language: str
    url: str
    competences: list[Competence]
    status: OpportunityStatus
    updated_at: dt.datetime


def opportunity_type(view: OpportunityView, lang: Language = Language.NL) -> LearningOpportunity:
    return LearningOpportunity(
        id=strawberry.ID(str(view.id)),
        provider_id=strawberry.ID(str(view.provider_id)),
        provider_name=view.provider_name,
        external_ref=view.external_ref,
        title=view.title,
        mode=LearningMode(view.mode.value),
        duration_hours=view.duration_hours,
        location=view.location,
        language=view.language,
        url=view.url,
        competences=[competence_type(ref, lang) for ref in view.competences],
        status=OpportunityStatus(view.status.value),
        updated_at=view.updated_at,
    )


@strawberry.input
class LearningOpportunityInput:
    external_ref: str = strawberry.field(
        description="Your own reference; publishing it again replaces the offer"
    )
    title: str
    mode: LearningMode
    language: str = strawberry.field(description="nl, en, fr or de")
    url: str
    competence_uris: list[str] = strawberry.field(description="ESCO competences it teaches")
    duration_hours: int | None = None
    location: str | None = strawberry.field(
        default=None, description="Required unless the mode is ONLINE"
    )


@strawberry.type
class OpportunityPublished:
    opportunity: LearningOpportunity


@strawberry.type(description="One row of a batch: published, or refused with the field at fault")
class OpportunityRow:
    index: int
    opportunity: LearningOpportunity | None
    error: ValidationFailedType | None


def opportunity_row(outcome: RowOutcome) -> OpportunityRow:
    error = error_result(outcome.error) if outcome.error else None
    assert error is None or isinstance(error, ValidationFailedType)
    return OpportunityRow(
        index=outcome.index,
        opportunity=opportunity_type(outcome.opportunity) if outcome.opportunity else None,
        error=error,
    )


@strawberry.type
class OpportunitiesPublished:
    rows: list[OpportunityRow]
    published: int
    refused: int


PublishResult = Annotated[OpportunityPublished | ErrorResult, strawberry.union("PublishResult")]
PublishManyResult = Annotated[
    OpportunitiesPublished | ErrorResult, strawberry.union("PublishManyResult")
]
WithdrawOpportunityResult = Annotated[
    OpportunityPublished | ErrorResult, strawberry.union("WithdrawOpportunityResult")
]
