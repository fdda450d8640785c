"""Claims and their lifecycle: insert-only rows; status is derived, never updated in place."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base
from service.models.enums import AssessmentMethod, LearningContext, ProficiencyScale, check_in


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint(check_in("assessment_method", AssessmentMethod), name="assessment_method"),
        CheckConstraint(check_in("learning_context", LearningContext), name="learning_context"),
        CheckConstraint(
            f"proficiency_scale IS NULL OR {check_in('proficiency_scale', ProficiencyScale)}",
            name="proficiency_scale",
        ),
        CheckConstraint("last_used_on IS NULL OR last_used_on >= acquired_on", name="used_after"),
        CheckConstraint("valid_until IS NULL OR valid_until >= acquired_on", name="valid_after"),
        # A claim has an issuer exactly when it is not the citizen's own declaration.
        CheckConstraint(
            "(organisation_id IS NULL) = (assessment_method = 'self_assessment') "
            "AND (client_id IS NULL) = (organisation_id IS NULL)",
            name="issuer",
        ),
        Index(
            "uq_claims_citizen_supersedes",
            "citizen_id",
            "supersedes_claim_id",
            unique=True,
            postgresql_where=text("supersedes_claim_id IS NOT NULL"),
        ),
        Index("ix_claims_citizen_competence", "citizen_id", "competence_id"),
        Index("ix_claims_claim_id", "claim_id"),
        Index("ix_claims_organisation_recorded", "organisation_id", "recorded_at"),
    )

    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), primary_key=True
    )
    claim_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    # Both null on a self-declared competence: the citizen vouches for it, nobody else.
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_clients.id"))
    issuer_role: Mapped[str | None] = mapped_column(Text)
    competence_id: Mapped[int] = mapped_column(Integer, ForeignKey("competences.id"))
    proficiency_scale: Mapped[str | None] = mapped_column(Text)
    proficiency_level: Mapped[str | None] = mapped_column(Text)
    # Position on the scale scaled to 0..1000, so levels on different scales compare.
    proficiency_rank: Mapped[int | None] = mapped_column(SmallInteger)
    context: Mapped[str | None] = mapped_column(Text)
    assessment_method: Mapped[str] = mapped_column(Text)
    learning_context: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    acquired_on: Mapped[date] = mapped_column(Date)
    last_used_on: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    external_ref: Mapped[str] = mapped_column(Text)
    supersedes_claim_id: Mapped[uuid.UUID | None] = mapped_column(UUID)


class ClaimRef(Base):
    """Idempotency: one row per (organisation, external_ref) across all citizens."""

    __tablename__ = "claim_refs"

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id"), primary_key=True
    )
    external_ref: Mapped[str] = mapped_column(Text, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), index=True
    )
    claim_id: Mapped[uuid.UUID] = mapped_column(UUID)
    payload_digest: Mapped[bytes] = mapped_column(LargeBinary)


class ClaimRevocation(Base):
    __tablename__ = "claim_revocations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["citizen_id", "claim_id"],
            ["claims.citizen_id", "claims.claim_id"],
            ondelete="CASCADE",
        ),
    )

    citizen_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    claim_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Null when the citizen withdrew their own declaration.
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_clients.id"))
