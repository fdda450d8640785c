"""Credential offers to the citizen's wallet (OpenID4VCI), and exports in a second format.

A citizen asks for an offer; a wallet redeems its pre-authorized code (with the transaction
code the citizen was shown) for an access token, fetches a nonce, and asks for credentials
with key proofs over that nonce. Only hashes of the secrets are stored: the pre-authorized
code (``credential_offer_codes``, keyed by its hash, as share links are), the access token
(``wallet_access_tokens``), the nonce (``wallet_nonces``); the transaction code only as an
HMAC keyed by the pre-authorized code, so the table alone cannot be searched for it.

What a wallet receives is an export like any other (``credential_exports``), now with a
``format``: ``ldp_vc`` (the ClrCredential) or ``dc+sd-jwt`` (an SD-JWT VC), and the offer it
was issued under. Revocation, the citizen's list of exports, verification by export id and
erasure thus reach wallet credentials with no new rule.

Offers go with the citizen row (ON DELETE CASCADE), their codes and tokens with the offer;
nonces belong to nobody and ``passport purge-retained`` removes spent and expired ones.

Revision ID: 0008_wallet_offers
Revises: 0007_export_status
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from service.db.migrate import app_role

revision: str = "0008_wallet_offers"
down_revision: str | None = "0007_export_status"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# UPDATE only on the columns that record an offer's or a nonce's state.
PRIVILEGES = {
    "credential_offers": "SELECT, INSERT, UPDATE (tx_code_failures, redeemed_at)",
    "credential_offer_codes": "SELECT, INSERT",
    "wallet_access_tokens": "SELECT, INSERT",
    "wallet_nonces": "SELECT, INSERT, UPDATE (used_at)",
}
FORMATS = "format IN ('ldp_vc', 'dc+sd-jwt')"


def upgrade() -> None:
    op.create_table(
        "credential_offers",
        sa.Column(
            "citizen_id",
            pg.UUID(),
            sa.ForeignKey("citizens.citizen_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("offer_id", pg.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("competence_ids", pg.ARRAY(sa.Integer())),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("tx_code_mac", sa.LargeBinary(), nullable=False),
        sa.Column("tx_code_failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("redeemed_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("citizen_id", "offer_id"),
        sa.CheckConstraint("expires_at > created_at", name=op.f("ck_credential_offers_term")),
    )
    op.create_table(
        "credential_offer_codes",
        sa.Column("code_hash", sa.LargeBinary(), primary_key=True),
        sa.Column("citizen_id", pg.UUID(), nullable=False),
        sa.Column("offer_id", pg.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id", "offer_id"],
            ["credential_offers.citizen_id", "credential_offers.offer_id"],
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_credential_offer_codes_citizen_id", "credential_offer_codes", ["citizen_id"]
    )
    op.create_table(
        "wallet_access_tokens",
        sa.Column("token_hash", sa.LargeBinary(), primary_key=True),
        sa.Column("citizen_id", pg.UUID(), nullable=False),
        sa.Column("offer_id", pg.UUID(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id", "offer_id"],
            ["credential_offers.citizen_id", "credential_offers.offer_id"],
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_wallet_access_tokens_citizen_id", "wallet_access_tokens", ["citizen_id"])
    op.create_table(
        "wallet_nonces",
        sa.Column("nonce_hash", sa.LargeBinary(), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_wallet_nonces_expires_at", "wallet_nonces", ["expires_at"])
    op.add_column(
        "credential_exports",
        sa.Column("format", sa.Text(), nullable=False, server_default="ldp_vc"),
    )
    op.create_check_constraint(op.f("ck_credential_exports_format"), "credential_exports", FORMATS)
    op.add_column("credential_exports", sa.Column("offer_id", pg.UUID()))
    op.create_foreign_key(
        "fk_credential_exports_offer",
        "credential_exports",
        "credential_offers",
        ["citizen_id", "offer_id"],
        ["citizen_id", "offer_id"],
    )
    role = app_role(op.get_context().config)
    for table, privileges in PRIVILEGES.items():
        op.execute(f"GRANT {privileges} ON TABLE {table} TO {role}")


def downgrade() -> None:
    op.drop_constraint("fk_credential_exports_offer", "credential_exports", type_="foreignkey")
    op.drop_column("credential_exports", "offer_id")
    op.drop_constraint("ck_credential_exports_format", "credential_exports", type_="check")
    op.drop_column("credential_exports", "format")
    op.drop_table("wallet_nonces")
    op.drop_table("wallet_access_tokens")
    op.drop_table("credential_offer_codes")
    op.drop_table("credential_offers")
