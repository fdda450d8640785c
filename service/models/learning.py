"""Learning opportunities: a provider's courses and programmes, with the ESCO competences each
teaches. Catalogue data, not personal data: a small table keyed by organisation."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base
from service.models.enums import LearningMode, OpportunityStatus, check_in


class LearningOpportunity(Base):
    __tablename__ = "learning_opportunities"
    __table_args__ = (
        UniqueConstraint("organisation_id", "external_ref"),
        CheckConstraint(check_in("mode", LearningMode), name="mode"),
        CheckConstraint(check_in("status", OpportunityStatus), name="status"),
        CheckConstraint("language IN ('nl', 'en', 'fr', 'de')", name="language"),
        CheckConstraint("cardinality(competence_ids) BETWEEN 1 AND 200", name="competences"),
        CheckConstraint("mode = 'online' OR location IS NOT NULL", name="located"),
        Index(
            "ix_learning_opportunities_competences",
            "competence_ids",
            postgresql_using="gin",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    external_ref: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(Text)
    duration_hours: Mapped[int | None] = mapped_column(Integer)
    location: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    competence_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    status: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
