"""An organisation's own competence profiles: what it checks its staff against when no ESCO
occupation says it well (a role of its own, a function mix, tomorrow's needs).

A profile is a name and up to ``MAX_PROFILE`` ESCO skills, each essential or optional and
optionally with a minimum level (on the EQF, CEFR or descriptive scale; levels on different
scales compare by their position, as everywhere in the passport). Saving the same
``externalRef`` again replaces the profile, so an HR system can keep its profiles in step;
archiving is a status, nothing is deleted. Profiles belong to their organisation: nobody else
sees or uses them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.policy import require_reader
from service.auth.principal import Principal
from service.claims.rules import ConceptUri, Proficiency
from service.errors import NotFound, ValidationFailed
from service.models import CompetenceProfile
from service.taxonomy.search import CompetenceRef, competences_by_id, competences_by_uri
from service.validation import Name, validate

MAX_PROFILE = 300


class ProfileCompetenceInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    competence_uri: ConceptUri
    essential: bool = True
    minimum_level: Proficiency | None = None


class ProfileInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    external_ref: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
    name: Name
    competences: list[ProfileCompetenceInput] = Field(min_length=1, max_length=MAX_PROFILE)

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        uris = [c.competence_uri for c in self.competences]
        if len(set(uris)) != len(uris):
            raise ValueError("name each competence once")
        return self


@dataclass(frozen=True)
class ProfileRequirement:
    competence: CompetenceRef
    essential: bool
    minimum_scale: str | None
    minimum_level: str | None
    minimum_rank: int | None  # 0..1000, comparable across scales


@dataclass(frozen=True)
class ProfileView:
    id: uuid.UUID
    external_ref: str
    name: str
    requirements: list[ProfileRequirement]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


async def _views(session: AsyncSession, rows: list[CompetenceProfile]) -> list[ProfileView]:
    wanted = sorted({item["competenceId"] for row in rows for item in row.requirements})
    refs = await competences_by_id(session, wanted) if wanted else {}
    return [
        ProfileView(
            id=row.id,
            external_ref=row.external_ref,
            name=row.name,
            requirements=[
                ProfileRequirement(
                    competence=refs[item["competenceId"]],
                    essential=item["essential"],
                    minimum_scale=item["scale"],
                    minimum_level=item["level"],
                    minimum_rank=item["rank"],
                )
                for item in row.requirements
                if item["competenceId"] in refs
            ],
            created_at=row.created_at,
            updated_at=row.updated_at,
            archived_at=row.archived_at,
        )
        for row in rows
    ]


async def save_profile(
    session: AsyncSession, principal: Principal, data: Mapping[str, Any]
) -> ProfileView:
    """Create, or replace (and bring back from the archive) the profile under this ref."""
    organisation_id = require_reader(principal)
    spec = validate(ProfileInput, data)
    found = await competences_by_uri(session, [c.competence_uri for c in spec.competences])
    requirements = []
    for i, item in enumerate(spec.competences):
        ref = found.get(item.competence_uri)
        if ref is None or ref.concept_type != "skill":
            raise ValidationFailed.one(
                f"input.competences.{i}.competenceUri",
                "not an ESCO skill or knowledge concept",
                "unknown_competence",
            )
        level = item.minimum_level
        requirements.append(
            {
                "competenceId": ref.id,
                "essential": item.essential,
                "scale": level.scale.value if level else None,
                "level": level.level if level else None,
                "rank": level.rank if level else None,
            }
        )
    now = clock.now()
    values = {"name": spec.name, "requirements": requirements, "updated_at": now}
    statement = insert(CompetenceProfile).values(
        id=uuid.uuid4(),
        organisation_id=organisation_id,
        external_ref=spec.external_ref,
        created_at=now,
        archived_at=None,
        **values,
    )
    row = await session.scalar(
        statement.on_conflict_do_update(
            index_elements=["organisation_id", "external_ref"], set_={**values, "archived_at": None}
        ).returning(CompetenceProfile)
    )
    assert row is not None
    return (await _views(session, [row]))[0]


async def archive_profile(
    session: AsyncSession, principal: Principal, profile_id: uuid.UUID
) -> ProfileView:
    """Idempotent; saving it again brings it back."""
    organisation_id = require_reader(principal)
    await session.execute(
        update(CompetenceProfile)
        .where(
            CompetenceProfile.id == profile_id,
            CompetenceProfile.organisation_id == organisation_id,
            CompetenceProfile.archived_at.is_(None),
        )
        .values(archived_at=clock.now())
    )
    row = await session.scalar(
        select(CompetenceProfile).where(
            CompetenceProfile.id == profile_id,
            CompetenceProfile.organisation_id == organisation_id,
        )
    )
    if row is None:
        raise NotFound("no competence profile with this id of your organisation")
    return (await _views(session, [row]))[0]


async def profiles_of(session: AsyncSession, principal: Principal) -> list[ProfileView]:
    """The organisation's profiles in use, by name."""
    organisation_id = require_reader(principal)
    rows = await session.scalars(
        select(CompetenceProfile)
        .where(
            CompetenceProfile.organisation_id == organisation_id,
            CompetenceProfile.archived_at.is_(None),
        )
        .order_by(CompetenceProfile.name, CompetenceProfile.id)
    )
    return await _views(session, list(rows))


async def profile_in_use(
    session: AsyncSession, organisation_id: uuid.UUID, profile_id: uuid.UUID
) -> ProfileView | None:
    """The organisation's own profile, unless archived; anyone else's does not exist."""
    row = await session.scalar(
        select(CompetenceProfile).where(
            CompetenceProfile.id == profile_id,
            CompetenceProfile.organisation_id == organisation_id,
            CompetenceProfile.archived_at.is_(None),
        )
    )
    return None if row is None else (await _views(session, [row]))[0]
