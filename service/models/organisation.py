"""Partners that vouch for competences, their API clients and their legal bases to read."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, CheckConstraint, DateTime, ForeignKey, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base
from service.models.enums import ClientStatus, OrganisationKind, OrganisationStatus, check_in


class Organisation(Base):
    """Small reference table: replicated to every node if the schema is distributed."""

    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint(check_in("kind", OrganisationKind), name="kind"),
        CheckConstraint(check_in("status", OrganisationStatus), name="status"),
        CheckConstraint("enterprise_number ~ '^[01][0-9]{9}$'", name="enterprise_number"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    enterprise_number: Mapped[str] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(Text, default=OrganisationStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiClient(Base):
    """A partner system known to the identity provider by ``client_id``."""

    __tablename__ = "api_clients"
    __table_args__ = (CheckConstraint(check_in("status", ClientStatus), name="status"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(Text, unique=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    status: Mapped[str] = mapped_column(Text, default=ClientStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LegalBasis(Base):
    """An admin-granted statutory ground for an organisation to read passports without consent."""

    __tablename__ = "legal_bases"
    __table_args__ = (UniqueConstraint("organisation_id", "code"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    code: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(Text)  # the legal text it rests on
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    granted_by: Mapped[str] = mapped_column(Text)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
