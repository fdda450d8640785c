"""Learning opportunities that providers register, for the competence check's learning plan.

Revision ID: 0004_learning
Revises: 0003_citizen_control
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from service.db.migrate import app_role

revision: str = "0004_learning"
down_revision: str | None = "0003_citizen_control"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A provider's feed replaces its offers: the application may update them, never delete them
# (withdrawing is a status).
PRIVILEGES = (
    "SELECT, INSERT, UPDATE (title, mode, duration_hours, location, language, url, "
    "competence_ids, status, updated_at)"
)


def _app_role() -> str:
    return app_role(op.get_context().config)


def upgrade() -> None:
    op.create_table(
        "learning_opportunities",
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("external_ref", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("duration_hours", sa.Integer()),
        sa.Column("location", sa.Text()),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("competence_ids", pg.ARRAY(sa.Integer()), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "organisation_id",
            "external_ref",
            name=op.f("uq_learning_opportunities_organisation_id"),
        ),
        sa.CheckConstraint(
            "mode IN ('in_person', 'online', 'blended')",
            name=op.f("ck_learning_opportunities_mode"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'withdrawn')", name=op.f("ck_learning_opportunities_status")
        ),
        sa.CheckConstraint(
            "language IN ('nl', 'en', 'fr', 'de')", name=op.f("ck_learning_opportunities_language")
        ),
        sa.CheckConstraint(
            "cardinality(competence_ids) BETWEEN 1 AND 200",
            name=op.f("ck_learning_opportunities_competences"),
        ),
        sa.CheckConstraint(
            "mode = 'online' OR location IS NOT NULL",
            name=op.f("ck_learning_opportunities_located"),
        ),
    )
    op.create_index(
        "ix_learning_opportunities_competences",
        "learning_opportunities",
        ["competence_ids"],
        postgresql_using="gin",
    )
    op.execute(f"GRANT {PRIVILEGES} ON TABLE learning_opportunities TO {_app_role()}")
    # How many competences each occupation asks for, so ranking all occupations against a
    # passport reads 3,000 rows here instead of counting 124,000 relations every time.
    # Refreshed by every ESCO import, in its transaction.
    op.execute(
        """
        CREATE MATERIALIZED VIEW occupation_requirement_counts AS
        SELECT occupation_id,
               count(*) FILTER (WHERE relation = 'essential') AS essential_total,
               count(*) FILTER (WHERE relation = 'optional') AS optional_total
        FROM occupation_competences GROUP BY occupation_id
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_occupation_requirement_counts_occupation "
        "ON occupation_requirement_counts (occupation_id)"
    )
    op.execute(f"GRANT SELECT ON occupation_requirement_counts TO {_app_role()}")


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW occupation_requirement_counts")
    op.drop_table("learning_opportunities")
