"""Exports of signed credentials and the revocation status lists they point to."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base


class StatusList(Base):
    """A Bitstring Status List. Verifiers require a list's issuer to be the issuer of the
    credentials it covers: an organisation's list (``organisation_id``) holds the positions
    of the credentials signed under its DID, the service's own (None) the ClrCredentials'."""

    __tablename__ = "status_lists"
    __table_args__ = (Index("ix_status_lists_organisation_id", "organisation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))


class StatusListEntry(Base):
    """A position taken in a status list. Whose it is lives with the citizen's rows (an
    export's own position, or one of its credentials'); erasure removes those and sets
    ``withdrawn_at`` here, so the position is never handed out again and its bit stays set."""

    __tablename__ = "status_list_entries"

    status_list: Mapped[int] = mapped_column(ForeignKey("status_lists.id"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    allocated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CredentialExport(Base):
    """One signed credential handed out: a ClrCredential (``ldp_vc``: as JSON, inside the PDF,
    or to a wallet) or an SD-JWT VC (``dc+sd-jwt``, to a wallet, under ``offer_id``)."""

    __tablename__ = "credential_exports"
    __table_args__ = (
        CheckConstraint("basis IN ('self', 'link')", name="basis"),
        CheckConstraint("valid_until > created_at", name="valid_after_created"),
        CheckConstraint("format IN ('ldp_vc', 'dc+sd-jwt')", name="format"),
        ForeignKeyConstraint(
            ["status_list", "status_idx"],
            ["status_list_entries.status_list", "status_list_entries.idx"],
        ),
        ForeignKeyConstraint(
            ["citizen_id", "offer_id"],
            ["credential_offers.citizen_id", "credential_offers.offer_id"],
            name="fk_credential_exports_offer",
        ),
        # The verification page finds an export by its id alone.
        Index("ix_credential_exports_id", "id"),
        Index("ix_credential_exports_position", "status_list", "status_idx"),
    )

    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    basis: Mapped[str] = mapped_column(Text)
    grant_id: Mapped[uuid.UUID | None] = mapped_column(UUID)  # the share link's, if by link
    key_id: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(Text)
    status_list: Mapped[int] = mapped_column(Integer)
    status_idx: Mapped[int] = mapped_column(Integer)
    # SHA-256 of the signed JSON as served: whoever holds a copy can show it is this export.
    document_sha256: Mapped[bytes] = mapped_column(LargeBinary)
    format: Mapped[str] = mapped_column(Text, server_default="ldp_vc")
    offer_id: Mapped[uuid.UUID | None] = mapped_column(UUID)  # the wallet offer it answered


class CredentialExportEntry(Base):
    """The position of one claim's credential inside one export, drawn for that export only:
    two copies of a claim in two exports cannot be linked by their index."""

    __tablename__ = "credential_export_entries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["citizen_id", "export_id"],
            ["credential_exports.citizen_id", "credential_exports.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["citizen_id", "claim_id"],
            ["claims.citizen_id", "claims.claim_id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["status_list", "idx"], ["status_list_entries.status_list", "status_list_entries.idx"]
        ),
        Index("ix_credential_export_entries_position", "status_list", "idx"),
    )

    citizen_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    export_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    claim_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    status_list: Mapped[int] = mapped_column(Integer)
    idx: Mapped[int] = mapped_column(Integer)


class CredentialExportRevocation(Base):
    """The citizen took an export back: every credential in it reads as revoked."""

    __tablename__ = "credential_export_revocations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["citizen_id", "export_id"],
            ["credential_exports.citizen_id", "credential_exports.id"],
            ondelete="CASCADE",
        ),
    )

    citizen_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    export_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
