"""Every read of a passport, kept for the citizen to see."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, CheckConstraint, DateTime, ForeignKey, Index, Integer, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base
from service.models.enums import AccessBasis, PrincipalKind, check_in


class AccessRecord(Base):
    __tablename__ = "access_records"
    __table_args__ = (
        CheckConstraint(check_in("principal_kind", PrincipalKind), name="principal_kind"),
        CheckConstraint(check_in("basis", AccessBasis), name="basis"),
        Index("ix_access_records_citizen_time", "citizen_id", "accessed_at"),
    )

    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    accessed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    principal_kind: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)  # client_id of a partner system
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    basis: Mapped[str] = mapped_column(Text)
    legal_basis_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("legal_bases.id"))
    # The citizen's grants a consent read relied on (all of the reader's that were active).
    grant_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID), server_default="{}")
    purpose: Mapped[str | None] = mapped_column(Text)
    operation: Mapped[str] = mapped_column(Text)
    competence_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer))
