"""What the citizen wants, the work they did, and the labour-market signals they are set
against.

Wants, goals and work history are the citizen's: per-citizen tables keyed by ``citizen_id``
first, removed with the citizen row on erasure (ON DELETE CASCADE). Signals are reference data
an operator imports, like the taxonomy.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base
from service.models.enums import SignalImportStatus, SignalKind, Want, check_in


class CompetenceWant(Base):
    """The citizen's stance on one competence; null once they cleared it (the application may
    not delete, and the event chain keeps every change)."""

    __tablename__ = "competence_wants"
    __table_args__ = (CheckConstraint(f"stance IS NULL OR {check_in('stance', Want)}", "stance"),)

    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), primary_key=True
    )
    competence_id: Mapped[int] = mapped_column(ForeignKey("competences.id"), primary_key=True)
    stance: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CareerGoal(Base):
    """An occupation the citizen aims for, by a year if they name one; ``active`` false once
    they dropped it."""

    __tablename__ = "career_goals"
    __table_args__ = (
        CheckConstraint(
            "horizon_year IS NULL OR horizon_year BETWEEN 2000 AND 2200", "horizon_year"
        ),
    )

    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), primary_key=True
    )
    occupation_id: Mapped[int] = mapped_column(ForeignKey("occupations.id"), primary_key=True)
    horizon_year: Mapped[int | None] = mapped_column(SmallInteger)
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WorkExperience(Base):
    """An occupation the citizen held. Recorded by the citizen (``organisation_id`` null, an
    employer's name in their own words) or by an employer as a statement about them (the
    organisation is the employer). Never updated but for ``withdrawn_at``, set by whoever
    recorded it."""

    __tablename__ = "work_experiences"
    __table_args__ = (
        CheckConstraint("ended_on IS NULL OR ended_on >= started_on", "ended_after_started"),
        CheckConstraint(
            "(organisation_id IS NULL) = (client_id IS NULL) "
            "AND (organisation_id IS NULL OR employer_name IS NULL)",
            "recorder",
        ),
        UniqueConstraint("citizen_id", "request_key"),
        Index("ix_work_experiences_id", "id"),  # an employer withdraws by id alone
    )

    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    occupation_id: Mapped[int] = mapped_column(ForeignKey("occupations.id"))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_clients.id"))
    employer_name: Mapped[str | None] = mapped_column(Text)
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The citizen's idempotency key ("self:<key>") or the employer's ("org:<id>:<externalRef>").
    request_key: Mapped[str] = mapped_column(Text)
    request_digest: Mapped[bytes] = mapped_column(LargeBinary)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkExperienceRef(Base):
    """An employer's idempotency key across all citizens, as ``claim_refs`` is for claims: a
    retry naming another person is a conflict, not a second record."""

    __tablename__ = "work_experience_refs"

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id"), primary_key=True
    )
    external_ref: Mapped[str] = mapped_column(Text, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), index=True
    )
    experience_id: Mapped[uuid.UUID] = mapped_column(UUID)
    payload_digest: Mapped[bytes] = mapped_column(LargeBinary)


class SignalImport(Base):
    """One import of a signal file. Its signals are current while it is ``complete``; a later
    import naming the same sources replaces them once it is complete itself."""

    __tablename__ = "signal_imports"
    __table_args__ = (
        CheckConstraint(check_in("status", SignalImportStatus), "status"),
        Index("ix_signal_imports_digest", "digest"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    file_name: Mapped[str] = mapped_column(Text)
    digest: Mapped[bytes] = mapped_column(LargeBinary)  # of the accepted rows, normalized
    sources: Mapped[list[str]] = mapped_column(ARRAY(Text))
    status: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB)


class LabourMarketSignal(Base):
    """What one source says of one occupation (by ESCO URI, or all of an ISCO group) or one
    competence, for a region (NUTS code) and a horizon year."""

    __tablename__ = "labour_market_signals"
    __table_args__ = (
        CheckConstraint(check_in("kind", SignalKind), "kind"),
        CheckConstraint("num_nonnulls(occupation_id, competence_id, isco_code) = 1", "one_subject"),
        CheckConstraint("horizon_year BETWEEN 1990 AND 2200", "horizon_year"),
        Index("ix_labour_market_signals_occupation_id", "occupation_id"),
        Index("ix_labour_market_signals_competence_id", "competence_id"),
        Index("ix_labour_market_signals_isco_code", "isco_code"),
        Index("ix_labour_market_signals_import_id", "import_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("signal_imports.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    occupation_id: Mapped[int | None] = mapped_column(ForeignKey("occupations.id"))
    competence_id: Mapped[int | None] = mapped_column(ForeignKey("competences.id"))
    isco_code: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    region: Mapped[str] = mapped_column(Text)
    horizon_year: Mapped[int] = mapped_column(SmallInteger)
    source: Mapped[str] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(Text)
    published_on: Mapped[date] = mapped_column(Date)
