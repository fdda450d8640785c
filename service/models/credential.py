"""Exports of signed credentials and the revocation status lists they point to."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base


class CredentialExport(Base):
    """One signed ClrCredential handed to the citizen (as JSON, or inside the PDF)."""

    __tablename__ = "credential_exports"
    __table_args__ = (
        CheckConstraint("basis IN ('self', 'link')", name="basis"),
        CheckConstraint("valid_until > created_at", name="valid_after_created"),
        Index("ix_credential_exports_citizen", "citizen_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    basis: Mapped[str] = mapped_column(Text)
    grant_id: Mapped[uuid.UUID | None] = mapped_column(UUID)  # the share link's, if by link
    key_id: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(Text)
    claim_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID))
    # SHA-256 of the signed JSON as served: whoever holds a copy can show it is this export.
    document_sha256: Mapped[bytes] = mapped_column(LargeBinary)


class StatusList(Base):
    __tablename__ = "status_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StatusListEntry(Base):
    """A position in a status list, for one claim or one export.

    No foreign key to the claim or export: erasing a citizen must not free the position
    (the bit would read "valid" again), so erasure sets ``withdrawn_at`` and forgets whose it
    was, and the bit stays set for good.
    """

    __tablename__ = "status_list_entries"
    __table_args__ = (
        CheckConstraint(
            "withdrawn_at IS NOT NULL OR (citizen_id IS NOT NULL "
            "AND (claim_id IS NULL) <> (export_id IS NULL))",
            name="owner",
        ),
        Index(
            "uq_status_list_entries_claim",
            "citizen_id",
            "claim_id",
            unique=True,
            postgresql_where=text("claim_id IS NOT NULL"),
        ),
        Index(
            "uq_status_list_entries_export",
            "export_id",
            unique=True,
            postgresql_where=text("export_id IS NOT NULL"),
        ),
    )

    status_list: Mapped[int] = mapped_column(ForeignKey("status_lists.id"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    claim_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    export_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    allocated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
