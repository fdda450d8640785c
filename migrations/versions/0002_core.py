"""Core: organisations, clients, legal bases, citizens, claims, events, access records.

Revision ID: 0002_core
Revises: 0001_taxonomy
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0002_core"
down_revision: str | None = "0001_taxonomy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORG_KINDS = (
    "education_provider",
    "public_employment_service",
    "employer",
    "volunteer_organisation",
    "recognition_centre",
    "career_guidance",
    "sector_fund",
    "government_service",
)
METHODS = (
    "exam",
    "practical_assessment",
    "workplace_observation",
    "portfolio_review",
    "prior_learning_recognition",
    "peer_feedback",
    "self_assessment",
)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("enterprise_number", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(_in("kind", ORG_KINDS), name=op.f("ck_organisations_kind")),
        sa.CheckConstraint(
            _in("status", ("active", "suspended")), name=op.f("ck_organisations_status")
        ),
        sa.CheckConstraint(
            "enterprise_number ~ '^[01][0-9]{9}$'", name=op.f("ck_organisations_enterprise_number")
        ),
        sa.UniqueConstraint("enterprise_number", name=op.f("uq_organisations_enterprise_number")),
    )
    op.create_table(
        "api_clients",
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("scopes", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            _in("status", ("active", "suspended", "deleted")), name=op.f("ck_api_clients_status")
        ),
        sa.UniqueConstraint("client_id", name=op.f("uq_api_clients_client_id")),
    )
    op.create_index(op.f("ix_api_clients_organisation_id"), "api_clients", ["organisation_id"])
    op.create_table(
        "legal_bases",
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True)),
        sa.Column("granted_by", sa.Text(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.UniqueConstraint("organisation_id", "code", name=op.f("uq_legal_bases_organisation_id")),
    )
    op.create_table(
        "citizens",
        sa.Column("citizen_id", pg.UUID(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
    )
    op.create_table(
        "citizen_identities",
        sa.Column("insz_hash", sa.LargeBinary(), primary_key=True),
        sa.Column(
            "citizen_id",
            pg.UUID(),
            sa.ForeignKey("citizens.citizen_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key_version", sa.SmallInteger(), nullable=False),
    )
    op.create_index(op.f("ix_citizen_identities_citizen_id"), "citizen_identities", ["citizen_id"])
    op.create_table(
        "claims",
        sa.Column(
            "citizen_id",
            pg.UUID(),
            sa.ForeignKey("citizens.citizen_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("claim_id", pg.UUID(), primary_key=True),
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("client_id", pg.UUID(), sa.ForeignKey("api_clients.id"), nullable=False),
        sa.Column("issuer_role", sa.Text()),
        sa.Column("competence_id", sa.Integer(), sa.ForeignKey("competences.id"), nullable=False),
        sa.Column("proficiency_scale", sa.Text()),
        sa.Column("proficiency_level", sa.Text()),
        sa.Column("proficiency_rank", sa.SmallInteger()),
        sa.Column("context", sa.Text()),
        sa.Column("assessment_method", sa.Text(), nullable=False),
        sa.Column("learning_context", sa.Text(), nullable=False),
        sa.Column("evidence", pg.JSONB(), server_default="[]", nullable=False),
        sa.Column("acquired_on", sa.Date(), nullable=False),
        sa.Column("last_used_on", sa.Date()),
        sa.Column("valid_until", sa.Date()),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("external_ref", sa.Text(), nullable=False),
        sa.Column("supersedes_claim_id", pg.UUID()),
        sa.CheckConstraint(
            _in("assessment_method", METHODS), name=op.f("ck_claims_assessment_method")
        ),
        sa.CheckConstraint(
            _in("learning_context", ("formal", "non_formal", "informal")),
            name=op.f("ck_claims_learning_context"),
        ),
        sa.CheckConstraint(
            "proficiency_scale IS NULL OR "
            + _in("proficiency_scale", ("eqf", "cefr", "descriptive")),
            name=op.f("ck_claims_proficiency_scale"),
        ),
        sa.CheckConstraint(
            "last_used_on IS NULL OR last_used_on >= acquired_on", name=op.f("ck_claims_used_after")
        ),
        sa.CheckConstraint(
            "valid_until IS NULL OR valid_until >= acquired_on", name=op.f("ck_claims_valid_after")
        ),
    )
    op.create_index(
        "uq_claims_citizen_supersedes",
        "claims",
        ["citizen_id", "supersedes_claim_id"],
        unique=True,
        postgresql_where=sa.text("supersedes_claim_id IS NOT NULL"),
    )
    op.create_index("ix_claims_citizen_competence", "claims", ["citizen_id", "competence_id"])
    op.create_index("ix_claims_claim_id", "claims", ["claim_id"])
    op.create_index("ix_claims_organisation_recorded", "claims", ["organisation_id", "recorded_at"])
    op.create_table(
        "claim_refs",
        sa.Column(
            "organisation_id", pg.UUID(), sa.ForeignKey("organisations.id"), primary_key=True
        ),
        sa.Column("external_ref", sa.Text(), primary_key=True),
        sa.Column(
            "citizen_id",
            pg.UUID(),
            sa.ForeignKey("citizens.citizen_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("claim_id", pg.UUID(), nullable=False),
        sa.Column("payload_digest", sa.LargeBinary(), nullable=False),
    )
    op.create_index(op.f("ix_claim_refs_citizen_id"), "claim_refs", ["citizen_id"])
    op.create_table(
        "claim_revocations",
        sa.Column("citizen_id", pg.UUID(), primary_key=True),
        sa.Column("claim_id", pg.UUID(), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", pg.UUID(), sa.ForeignKey("api_clients.id"), nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id", "claim_id"],
            ["claims.citizen_id", "claims.claim_id"],
            ondelete="CASCADE",
            name=op.f("fk_claim_revocations_citizen_id_claims"),
        ),
    )
    op.create_table(
        "citizen_events",
        sa.Column(
            "citizen_id",
            pg.UUID(),
            sa.ForeignKey("citizens.citizen_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.BigInteger(), primary_key=True),
        sa.Column("event_id", pg.UUID(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", pg.JSONB(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "access_records",
        sa.Column(
            "citizen_id",
            pg.UUID(),
            sa.ForeignKey("citizens.citizen_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("accessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal_kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text()),
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id")),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("legal_basis_id", pg.UUID(), sa.ForeignKey("legal_bases.id")),
        sa.Column("purpose", sa.Text()),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("competence_ids", pg.ARRAY(sa.Integer()), nullable=False),
        sa.CheckConstraint(
            _in("principal_kind", ("partner", "reader", "citizen", "admin")),
            name=op.f("ck_access_records_principal_kind"),
        ),
        sa.CheckConstraint(
            _in("basis", ("self", "legal_basis", "consent", "issuer")),
            name=op.f("ck_access_records_basis"),
        ),
    )
    op.create_index(
        "ix_access_records_citizen_time", "access_records", ["citizen_id", "accessed_at"]
    )


def downgrade() -> None:
    for table in (
        "access_records",
        "citizen_events",
        "claim_revocations",
        "claim_refs",
        "claims",
        "citizen_identities",
        "citizens",
        "legal_bases",
        "api_clients",
        "organisations",
    ):
        op.drop_table(table)
