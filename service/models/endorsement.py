"""Endorsements: an organisation other than the issuer vouches, in a few words, for a claim.

Insert-only but for what records a status: the endorser's revocation, and the citizen's
choice to hide it from readers. Idempotency has its own table, as for claims, so the
endorser's reference is unique across all citizens while every per-citizen key leads with
``citizen_id``.
"""

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


class ClaimEndorsement(Base):
    __tablename__ = "claim_endorsements"
    __table_args__ = (
        ForeignKeyConstraint(
            ["citizen_id", "claim_id"],
            ["claims.citizen_id", "claims.claim_id"],
            ondelete="CASCADE",
        ),
        CheckConstraint("char_length(statement) BETWEEN 3 AND 1000", name="statement"),
        CheckConstraint("(revoked_at IS NULL) = (revocation_reason IS NULL)", name="revocation"),
        Index("ix_claim_endorsements_citizen_claim", "citizen_id", "claim_id"),
        Index("ix_claim_endorsements_endorsement_id", "endorsement_id"),
        Index("ix_claim_endorsements_organisation_endorsed", "organisation_id", "endorsed_at"),
    )

    citizen_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    endorsement_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    claim_id: Mapped[uuid.UUID] = mapped_column(UUID)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    endorser_role: Mapped[str | None] = mapped_column(Text)
    statement: Mapped[str] = mapped_column(Text)
    external_ref: Mapped[str] = mapped_column(Text)
    endorsed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    hidden_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EndorsementRef(Base):
    """Idempotency: one row per (endorsing organisation, its reference)."""

    __tablename__ = "endorsement_refs"

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id"), primary_key=True
    )
    external_ref: Mapped[str] = mapped_column(Text, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), index=True
    )
    endorsement_id: Mapped[uuid.UUID] = mapped_column(UUID)
    payload_digest: Mapped[bytes] = mapped_column(LargeBinary)


class CredentialExportEndorsement(Base):
    """An EndorsementCredential in an export: its status position, drawn for that export."""

    __tablename__ = "credential_export_endorsements"
    __table_args__ = (
        ForeignKeyConstraint(
            ["citizen_id", "export_id"],
            ["credential_exports.citizen_id", "credential_exports.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["citizen_id", "endorsement_id"],
            ["claim_endorsements.citizen_id", "claim_endorsements.endorsement_id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["status_list", "idx"], ["status_list_entries.status_list", "status_list_entries.idx"]
        ),
        Index("ix_credential_export_endorsements_position", "status_list", "idx"),
    )

    citizen_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    export_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    endorsement_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    status_list: Mapped[int] = mapped_column(Integer)
    idx: Mapped[int] = mapped_column(Integer)
