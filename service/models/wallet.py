"""Credential offers to a citizen's wallet (OpenID4VCI) and the hashed secrets that redeem them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    ARRAY,
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


class CredentialOffer(Base):
    """An offer the citizen asked for: redeemable once, within minutes, with the transaction
    code they were shown. ``tx_code_mac`` is HMAC-SHA256(pre-authorized code, tx_code): the
    code itself is not stored, so the row alone cannot be searched for the six digits."""

    __tablename__ = "credential_offers"
    __table_args__ = (CheckConstraint("expires_at > created_at", name="term"),)

    citizen_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("citizens.citizen_id", ondelete="CASCADE"), primary_key=True
    )
    offer_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Null: the whole passport; otherwise only claims about these competences.
    competence_ids: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    language: Mapped[str] = mapped_column(Text)
    tx_code_mac: Mapped[bytes] = mapped_column(LargeBinary)
    tx_code_failures: Mapped[int] = mapped_column(Integer, server_default="0")
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CredentialOfferCode(Base):
    """SHA-256 of a pre-authorized code -> its offer; keyed by the hash, like share links."""

    __tablename__ = "credential_offer_codes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["citizen_id", "offer_id"],
            ["credential_offers.citizen_id", "credential_offers.offer_id"],
            ondelete="CASCADE",
        ),
    )

    code_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(UUID, index=True)
    offer_id: Mapped[uuid.UUID] = mapped_column(UUID)


class WalletAccessToken(Base):
    """SHA-256 of an access token the token endpoint gave a wallet -> its offer."""

    __tablename__ = "wallet_access_tokens"
    __table_args__ = (
        ForeignKeyConstraint(
            ["citizen_id", "offer_id"],
            ["credential_offers.citizen_id", "credential_offers.offer_id"],
            ondelete="CASCADE",
        ),
    )

    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(UUID, index=True)
    offer_id: Mapped[uuid.UUID] = mapped_column(UUID)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WalletNonce(Base):
    """A ``c_nonce`` from the nonce endpoint (SHA-256): a key proof over it is accepted once."""

    __tablename__ = "wallet_nonces"
    __table_args__ = (Index("ix_wallet_nonces_expires_at", "expires_at"),)

    nonce_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
