"""Providers' learning opportunities, and the learning plan that closes a competence gap.

Only education providers and the public employment service publish offers. An offer is
identified by (organisation, externalRef): publishing it again replaces it, so a provider's
nightly feed keeps the catalogue current; withdrawing is a status, nothing is deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.policy import require_issuer
from service.auth.principal import Principal
from service.claims.rules import ConceptUri, WebUrl
from service.errors import NotAuthorized, NotFound, ValidationFailed
from service.models import LearningOpportunity, Organisation
from service.models.enums import (
    LearningMode,
    OpportunityStatus,
    OrganisationKind,
    OrganisationStatus,
)
from service.taxonomy.search import CompetenceRef, competences_by_id, competences_by_uri
from service.validation import Name, validate

PUBLISHERS = frozenset(
    {OrganisationKind.EDUCATION_PROVIDER, OrganisationKind.PUBLIC_EMPLOYMENT_SERVICE}
)
MAX_BATCH = 500
MAX_PLAN = 5
K = TypeVar("K")


class OpportunityInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    external_ref: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
    title: Name
    mode: Annotated[LearningMode, BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)]
    duration_hours: Annotated[int, Field(ge=1, le=10_000, strict=True)] | None = None
    location: Name | None = None
    language: str = Field(pattern=r"^(nl|en|fr|de)$")
    url: WebUrl
    competence_uris: list[ConceptUri] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _located(self) -> OpportunityInput:
        if self.mode is not LearningMode.ONLINE and self.location is None:
            raise ValueError("an in-person or blended offer needs a location")
        return self


@dataclass(frozen=True)
class OpportunityView:
    id: uuid.UUID
    provider_id: uuid.UUID
    provider_name: str
    external_ref: str
    title: str
    mode: LearningMode
    duration_hours: int | None
    location: str | None
    language: str
    url: str
    competences: list[CompetenceRef]
    status: OpportunityStatus
    updated_at: datetime


def require_publisher(principal: Principal) -> uuid.UUID:
    organisation_id = require_issuer(principal)
    if principal.organisation_kind not in PUBLISHERS:
        raise NotAuthorized("only education providers and the public employment service publish")
    return organisation_id


async def _views(
    session: AsyncSession, rows: Sequence[LearningOpportunity]
) -> list[OpportunityView]:
    names: dict[uuid.UUID, str] = {}
    if rows:
        found = await session.execute(
            select(Organisation.id, Organisation.name).where(
                Organisation.id.in_({row.organisation_id for row in rows})
            )
        )
        names = {org_id: name for org_id, name in found}
    refs = await competences_by_id(session, sorted({c for row in rows for c in row.competence_ids}))
    return [
        OpportunityView(
            id=row.id,
            provider_id=row.organisation_id,
            provider_name=names.get(row.organisation_id, ""),
            external_ref=row.external_ref,
            title=row.title,
            mode=LearningMode(row.mode),
            duration_hours=row.duration_hours,
            location=row.location,
            language=row.language,
            url=row.url,
            competences=[refs[c] for c in row.competence_ids if c in refs],
            status=OpportunityStatus(row.status),
            updated_at=row.updated_at,
        )
        for row in rows
    ]


async def _competence_ids(session: AsyncSession, uris: Sequence[str], prefix: str) -> list[int]:
    found = await competences_by_uri(session, uris)
    for i, uri in enumerate(uris):
        if uri not in found or found[uri].concept_type != "skill":
            raise ValidationFailed.one(
                f"{prefix}.competenceUris.{i}",
                "not an ESCO skill or knowledge concept",
                "unknown_competence",
            )
    return sorted({found[uri].id for uri in uris})


async def _upsert(
    session: AsyncSession, organisation_id: uuid.UUID, spec: OpportunityInput, ids: list[int]
) -> LearningOpportunity:
    now = clock.now()
    values = {
        "title": spec.title,
        "mode": spec.mode.value,
        "duration_hours": spec.duration_hours,
        "location": spec.location,
        "language": spec.language,
        "url": str(spec.url),
        "competence_ids": ids,
        "status": OpportunityStatus.ACTIVE.value,
        "updated_at": now,
    }
    statement = insert(LearningOpportunity).values(
        id=uuid.uuid4(),
        organisation_id=organisation_id,
        external_ref=spec.external_ref,
        created_at=now,
        **values,
    )
    row = await session.scalar(
        statement.on_conflict_do_update(
            index_elements=["organisation_id", "external_ref"], set_=values
        ).returning(LearningOpportunity)
    )
    assert row is not None
    return row


async def publish(
    session: AsyncSession, principal: Principal, data: Mapping[str, Any]
) -> OpportunityView:
    organisation_id = require_publisher(principal)
    spec = validate(OpportunityInput, data)
    ids = await _competence_ids(session, spec.competence_uris, "input")
    return (await _views(session, [await _upsert(session, organisation_id, spec, ids)]))[0]


@dataclass(frozen=True)
class RowOutcome:
    index: int
    opportunity: OpportunityView | None
    error: ValidationFailed | None


async def publish_many(
    session: AsyncSession, principal: Principal, rows: Sequence[Mapping[str, Any]]
) -> list[RowOutcome]:
    """A batch with a report per row, like a provider's catalogue feed: every valid row is
    published and every invalid one reported with its field, in one transaction. A partial
    batch is deliberate: each row stands alone (a retry is harmless, rows are keyed by
    externalRef) and one bad offer must not hold back the rest of the catalogue.

    Rows are written in externalRef order, so two uploads touching the same offers take their
    row locks in the same order and never deadlock each other."""
    organisation_id = require_publisher(principal)
    if len(rows) > MAX_BATCH:
        raise ValidationFailed.one("inputs", f"at most {MAX_BATCH} offers at once", "too_many")
    outcomes: dict[int, RowOutcome] = {}
    valid: list[tuple[int, OpportunityInput, list[int]]] = []
    for index, data in enumerate(rows):
        prefix = f"inputs.{index}"
        try:
            spec = validate(OpportunityInput, data, prefix=prefix)
            valid.append(
                (index, spec, await _competence_ids(session, spec.competence_uris, prefix))
            )
        except ValidationFailed as failed:
            outcomes[index] = RowOutcome(index, None, failed)
    for index, spec, ids in sorted(valid, key=lambda item: item[1].external_ref):
        row = await _upsert(session, organisation_id, spec, ids)
        outcomes[index] = RowOutcome(index, (await _views(session, [row]))[0], None)
    return [outcomes[index] for index in sorted(outcomes)]


async def withdraw(
    session: AsyncSession, principal: Principal, opportunity_id: uuid.UUID
) -> OpportunityView:
    organisation_id = require_publisher(principal)
    row = await session.scalar(
        update(LearningOpportunity)
        .where(
            LearningOpportunity.id == opportunity_id,
            LearningOpportunity.organisation_id == organisation_id,
        )
        .values(status=OpportunityStatus.WITHDRAWN.value, updated_at=clock.now())
        .returning(LearningOpportunity)
    )
    if row is None:
        raise NotFound("no offer with this id was published by your organisation")
    return (await _views(session, [row]))[0]


@dataclass(frozen=True)
class Recommendation:
    opportunity: OpportunityView
    closes: list[CompetenceRef]  # the gaps it teaches that no earlier pick already closed


async def learning_plan(
    session: AsyncSession,
    gaps: Sequence[int],
    *,
    language: str,
    limit: int = MAX_PLAN,
    weights: Mapping[int, int] | None = None,
) -> list[Recommendation]:
    """Greedy set cover: pick the offer that closes most remaining gaps, then the next, until
    no offer closes anything more. Ties go to offers in the asked language, then shorter ones.
    With ``weights`` (a team's: how many people lack each competence) the cover is weighted:
    an offer is worth the people-gaps it closes, not the competences."""
    plans = await learning_plans(
        session, {0: gaps}, language=language, limit=limit, weights=weights
    )
    return plans[0]


def _greedy(
    rows: Sequence[LearningOpportunity],
    gaps: Sequence[int],
    language: str,
    limit: int,
    weights: Mapping[int, int] | None = None,
) -> list[tuple[LearningOpportunity, list[int]]]:
    remaining = set(gaps)
    candidates = [r for r in rows if remaining & set(r.competence_ids)]

    def worth(offer: LearningOpportunity) -> int:
        closes = remaining.intersection(offer.competence_ids)
        return sum(weights.get(c, 0) for c in closes) if weights is not None else len(closes)

    picked: list[tuple[LearningOpportunity, list[int]]] = []
    while remaining and candidates and len(picked) < limit:
        best = max(
            candidates,
            key=lambda r: (
                worth(r),
                r.language == language,
                r.duration_hours is not None,  # a known duration before an unknown one,
                -(r.duration_hours or 0),  # then the shorter
                str(r.id),
            ),
        )
        closes = sorted(remaining & set(best.competence_ids))
        if not closes or not worth(best):
            break
        picked.append((best, closes))
        remaining -= set(closes)
        candidates.remove(best)
    return picked


async def learning_plans(
    session: AsyncSession,
    gaps: Mapping[K, Sequence[int]],
    *,
    language: str,
    limit: int = MAX_PLAN,
    weights: Mapping[int, int] | None = None,
) -> dict[K, list[Recommendation]]:
    """``learning_plan`` for several sets of gaps (one per occupation of a list) in three
    statements whatever their number: the offers for all gaps, then each cover in memory."""
    every = sorted({c for ids in gaps.values() for c in ids})
    rows = (
        list(
            await session.scalars(
                select(LearningOpportunity)
                .join(Organisation, Organisation.id == LearningOpportunity.organisation_id)
                .where(
                    LearningOpportunity.status == OpportunityStatus.ACTIVE.value,
                    # a suspended provider cannot withdraw its offers: leave them out
                    Organisation.status == OrganisationStatus.ACTIVE.value,
                    LearningOpportunity.competence_ids.overlap(every),
                )
            )
        )
        if every
        else []
    )
    covers = {key: _greedy(rows, ids, language, limit, weights) for key, ids in gaps.items()}
    chosen = list({row.id: row for picks in covers.values() for row, _ in picks}.values())
    views = {view.id: view for view in await _views(session, chosen)} if chosen else {}
    closed = sorted({c for picks in covers.values() for _, closes in picks for c in closes})
    refs = await competences_by_id(session, closed) if closed else {}
    return {
        key: [
            Recommendation(views[row.id], [refs[c] for c in closes if c in refs])
            for row, closes in picks
        ]
        for key, picks in covers.items()
    }
