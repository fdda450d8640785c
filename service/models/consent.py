"""A citizen's consents: who may read their passport, for what, until when, and how much of it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base
from service.models.enums import GranteeKind, TeamDisclosure, check_in


class AccessGrant(Base):
    __tablename__ = "access_grants"
    __table_args__ = (
        CheckConstraint(check_in("grantee_kind", GranteeKind), name="grantee_kind"),
        CheckConstraint(
            "(grantee_kind = 'organisation') = (organisation_id IS NOT NULL)", name="grantee"
        ),
        CheckConstraint("expires_at > created_at", name="expires_after_created"),
        Index("uq_access_grants_citizen_request", "citizen_id", "request_key", unique=True),
        Index("ix_access_grants_organisation_expiry", "organisation_id", "expires_at"),
        # A team-check consent names its team check and how the citizen is shown in it; it is
        # always to the organisation that runs the check.
        CheckConstraint(
            f"disclosure IS NULL OR {check_in('disclosure', TeamDisclosure)}", name="disclosure"
        ),
        CheckConstraint(
            "(team_check_id IS NULL) = (disclosure IS NULL) "
            "AND (team_check_id IS NULL OR grantee_kind = 'organisation')",
            name="team_check",
        ),
        Index(
            "ix_access_grants_team_check_expiry",
            "team_check_id",
            "expires_at",
            postgresql_where=text("team_check_id IS NOT NULL"),
        ),
    )

    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), primary_key=True
    )
    grant_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    grantee_kind: Mapped[str] = mapped_column(Text)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    purpose: Mapped[str] = mapped_column(Text)
    # Null: the whole passport; otherwise only claims about these competences are shown.
    competence_ids: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    # What the citizen wants (stances, goals) and their work history are private unless the
    # grant says otherwise; within ``competence_ids``, stances only on those competences.
    include_wants: Mapped[bool] = mapped_column(Boolean, server_default="false")
    include_work_history: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The citizen app's idempotency key and a digest of the request, to tell a retry from misuse.
    request_key: Mapped[str] = mapped_column(Text)
    request_digest: Mapped[bytes] = mapped_column(LargeBinary)
    # Set on a consent to a team competence check: only that check reads under it.
    team_check_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("team_checks.id"))
    disclosure: Mapped[str | None] = mapped_column(Text)


class ShareLink(Base):
    """SHA-256 of a share link's secret -> its grant. Keyed by the hash, like citizen identities,
    so the secret itself is never stored and a holder is found in one indexed lookup."""

    __tablename__ = "share_links"
    __table_args__ = (
        ForeignKeyConstraint(
            ["citizen_id", "grant_id"],
            ["access_grants.citizen_id", "access_grants.grant_id"],
            ondelete="CASCADE",
        ),
    )

    secret_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(UUID, index=True)
    grant_id: Mapped[uuid.UUID] = mapped_column(UUID)
