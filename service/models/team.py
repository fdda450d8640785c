"""An organisation's team competence checks and its own competence profiles.

Reference data of the organisation, not personal data: a team check is the invitation its
staff answer with a grant (``access_grants.team_check_id``); a profile is the set of ESCO
competences, with minimum levels, that the organisation checks its staff against.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base


class TeamCheck(Base):
    __tablename__ = "team_checks"
    __table_args__ = (
        UniqueConstraint("organisation_id", "external_ref"),
        CheckConstraint("char_length(name) BETWEEN 1 AND 200", name="name"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    external_ref: Mapped[str] = mapped_column(Text)  # the organisation's key for retries
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CompetenceProfile(Base):
    """Saving the same ``external_ref`` again replaces the profile; archiving is a status."""

    __tablename__ = "competence_profiles"
    __table_args__ = (
        UniqueConstraint("organisation_id", "external_ref"),
        CheckConstraint("char_length(name) BETWEEN 1 AND 200", name="name"),
        CheckConstraint(
            "jsonb_typeof(requirements) = 'array' AND jsonb_array_length(requirements) > 0",
            name="requirements",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    external_ref: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    # [{"competenceId", "essential", "scale", "level", "rank"}], scale/level/rank null
    # when no minimum level is asked.
    requirements: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
