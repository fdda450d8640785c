"""Webhook subscriptions, the delivery outbox, and idempotent bulk uploads.

Revision ID: 0006_events_and_bulk
Revises: 0005_credentials
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from service.db.migrate import app_role

revision: str = "0006_events_and_bulk"
down_revision: str | None = "0005_credentials"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_TYPES = (
    "claim.issued",
    "claim.revoked",
    "claim.superseded",
    "grant.created",
    "grant.revoked",
)
STATUSES = ("pending", "delivered", "failed")

# The dispatcher records each attempt; what was sent, to whom and about what never changes.
PRIVILEGES = {
    "webhook_subscriptions": "SELECT, INSERT, UPDATE (disabled_at)",
    "webhook_deliveries": "SELECT, INSERT, UPDATE (status, attempts, next_attempt_at, "
    "last_attempt_at, last_response_status, last_error, delivered_at)",
    "bulk_uploads": "SELECT, INSERT",
}


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", pg.UUID(), sa.ForeignKey("api_clients.id"), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "cardinality(event_types) > 0 AND event_types <@ ARRAY["
            + ", ".join(f"'{t}'" for t in EVENT_TYPES)
            + "]::text[]",
            name=op.f("ck_webhook_subscriptions_event_types"),
        ),
    )
    op.create_index(
        "ix_webhook_subscriptions_organisation_id", "webhook_subscriptions", ["organisation_id"]
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("citizen_id", pg.UUID(), primary_key=True),
        sa.Column(
            "subscription_id",
            pg.UUID(),
            sa.ForeignKey("webhook_subscriptions.id"),
            primary_key=True,
        ),
        sa.Column("seq", sa.BigInteger(), primary_key=True),
        sa.Column("event_id", pg.UUID(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_response_status", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.ForeignKeyConstraint(
            ["citizen_id", "seq"],
            ["citizen_events.citizen_id", "citizen_events.seq"],
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            f"status IN ({', '.join(repr(s) for s in STATUSES)})",
            name=op.f("ck_webhook_deliveries_status"),
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_subscription_created",
        "webhook_deliveries",
        ["subscription_id", "created_at"],
    )
    op.create_table(
        "bulk_uploads",
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("body_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("report_gzip", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_id", "idempotency_key"),
    )
    role = app_role(op.get_context().config)
    for table, privileges in PRIVILEGES.items():
        op.execute(f"GRANT {privileges} ON TABLE {table} TO {role}")


def downgrade() -> None:
    for table in ("bulk_uploads", "webhook_deliveries", "webhook_subscriptions"):
        op.drop_table(table)
