"""Citizens are internal UUIDs; the national number is only ever stored as a keyed hash."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, LargeBinary, SmallInteger, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base


class Citizen(Base):
    __tablename__ = "citizens"

    citizen_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CitizenIdentity(Base):
    """Lookup from HMAC(INSZ) to citizen; keyed by the hash so it distributes on its own."""

    __tablename__ = "citizen_identities"

    insz_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), index=True
    )
    key_version: Mapped[int] = mapped_column(SmallInteger, default=1)


class CitizenSettings(Base):
    """What the citizen chose about how they appear: the name on their exports (a share
    link's holder carries no token that names them)."""

    __tablename__ = "citizen_settings"
    __table_args__ = (
        CheckConstraint(
            "export_name IS NULL OR char_length(export_name) BETWEEN 1 AND 200",
            name="export_name",
        ),
    )

    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), primary_key=True
    )
    export_name: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
