"""What is left after a citizen's erasure: a receipt, and legal-basis reads kept by law.

Neither table holds the citizen's id or anything else that leads back to them; see
``service.citizens.erasure`` for what is erased and why these rows stay.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base


class Erasure(Base):
    __tablename__ = "erasures"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB)


class RetainedAccessRecord(Base):
    """A read under a legal basis of a passport since erased: who read, why, when; not whose."""

    __tablename__ = "retained_access_records"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    erasure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("erasures.id"), index=True)
    accessed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    principal_kind: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    legal_basis_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("legal_bases.id"))
    purpose: Mapped[str | None] = mapped_column(Text)
    operation: Mapped[str] = mapped_column(Text)
