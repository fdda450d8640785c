"""What the citizen wants, the work they did, and labour-market signals.

- ``competence_wants`` and ``career_goals``: the citizen's stances on competences and the
  occupations they aim for. The citizen changes them (UPDATE on the stance, the goal's horizon
  and whether it is still active); every change is also an event in their hash chain.
- ``work_experiences``: occupations held, recorded by the citizen or by an employer as a
  statement about them; only ``withdrawn_at`` ever changes. ``work_experience_refs`` holds an
  employer's idempotency keys across citizens, as ``claim_refs`` does for claims.
- ``access_grants`` gains ``include_wants`` and ``include_work_history`` (default false): both
  stay private unless a grant includes them.
- ``signal_imports`` and ``labour_market_signals``: reference data an operator imports with
  ``passport import-signals``; the application only reads them.

Erasure: every per-citizen table here references ``citizens`` ON DELETE CASCADE, so
``passport_erase_citizen`` removes them with the citizen row; its definition is unchanged.

Revision ID: 0009_career
Revises: 0008_wallet_offers
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from service.db.migrate import app_role

revision: str = "0009_career"
down_revision: str | None = "0008_wallet_offers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRIVILEGES = {
    "competence_wants": "SELECT, INSERT, UPDATE (stance, updated_at)",
    "career_goals": "SELECT, INSERT, UPDATE (horizon_year, active, updated_at)",
    "work_experiences": "SELECT, INSERT, UPDATE (withdrawn_at)",
    "work_experience_refs": "SELECT, INSERT",
    "signal_imports": "SELECT",
    "labour_market_signals": "SELECT",
}
# As in 0007_export_status, and the career tables deleted by citizen too: cascades would
# remove them, but the receipt counts them, and on Citus the lookup's foreign key is dropped.
ERASE_FUNCTION = """
CREATE OR REPLACE FUNCTION public.passport_erase_citizen(
  p_citizen uuid, p_erasure uuid, p_at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
-- The only way the application can remove rows. What goes and what stays, and why, is
-- explained in service/citizens/erasure.py; keep the two in step.
DECLARE
  n_retained bigint; n_access bigint; n_links bigint; n_grants bigint; n_revocations bigint;
  n_refs bigint; n_claims bigint; n_events bigint; n_identities bigint; n_exports bigint;
  n_positions bigint; n_wants bigint; n_goals bigint; n_work bigint; n_work_refs bigint;
  result jsonb;
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtextextended(p_citizen::text, 0::bigint));
  IF NOT EXISTS (SELECT 1 FROM public.citizens WHERE citizen_id = p_citizen) THEN
    RETURN NULL;
  END IF;
  INSERT INTO public.erasures (id, erased_at, counts) VALUES (p_erasure, p_at, '{}');
  INSERT INTO public.retained_access_records
    (id, erasure_id, accessed_at, principal_kind, subject, organisation_id, legal_basis_id,
     purpose, operation)
  SELECT pg_catalog.gen_random_uuid(), p_erasure, accessed_at, principal_kind, subject,
         organisation_id, legal_basis_id, purpose, operation
  FROM public.access_records WHERE citizen_id = p_citizen AND basis = 'legal_basis';
  GET DIAGNOSTICS n_retained = ROW_COUNT;
  DELETE FROM public.access_records WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_access = ROW_COUNT;
  UPDATE public.status_list_entries e SET withdrawn_at = p_at
    FROM (SELECT status_list, idx FROM public.credential_export_entries
           WHERE citizen_id = p_citizen
          UNION
          SELECT status_list, status_idx FROM public.credential_exports
           WHERE citizen_id = p_citizen) p
   WHERE e.status_list = p.status_list AND e.idx = p.idx AND e.withdrawn_at IS NULL;
  GET DIAGNOSTICS n_positions = ROW_COUNT;
  DELETE FROM public.credential_exports WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_exports = ROW_COUNT;
  DELETE FROM public.share_links WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_links = ROW_COUNT;
  DELETE FROM public.access_grants WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_grants = ROW_COUNT;
  DELETE FROM public.claim_revocations WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_revocations = ROW_COUNT;
  DELETE FROM public.claim_refs WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_refs = ROW_COUNT;
  DELETE FROM public.competence_wants WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_wants = ROW_COUNT;
  DELETE FROM public.career_goals WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_goals = ROW_COUNT;
  DELETE FROM public.work_experience_refs WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_work_refs = ROW_COUNT;
  DELETE FROM public.work_experiences WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_work = ROW_COUNT;
  DELETE FROM public.claims WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_claims = ROW_COUNT;
  DELETE FROM public.citizen_events WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_events = ROW_COUNT;
  DELETE FROM public.citizen_identities WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_identities = ROW_COUNT;
  DELETE FROM public.citizens WHERE citizen_id = p_citizen;
  result := pg_catalog.jsonb_build_object(
    'claims', n_claims, 'revocations', n_revocations, 'claimRefs', n_refs,
    'events', n_events, 'grants', n_grants, 'shareLinks', n_links,
    'accessRecords', n_access, 'identities', n_identities,
    'retainedAccessRecords', n_retained, 'credentialExports', n_exports,
    'statusPositionsWithdrawn', n_positions, 'wants', n_wants, 'careerGoals', n_goals,
    'workExperiences', n_work, 'workExperienceRefs', n_work_refs);
  UPDATE public.erasures SET counts = result WHERE id = p_erasure;
  RETURN result;
END
$$
"""
WANTS = "'use_more', 'develop', 'rather_not'"
SIGNAL_KINDS = "'shortage', 'rising_demand', 'falling_demand'"


def _citizen() -> sa.Column[object]:
    return sa.Column(
        "citizen_id",
        pg.UUID(),
        sa.ForeignKey("citizens.citizen_id", ondelete="CASCADE"),
        primary_key=True,
    )


def upgrade() -> None:
    op.add_column(
        "access_grants",
        sa.Column("include_wants", sa.Boolean(), nullable=False, server_default="false"),
    )
    op.add_column(
        "access_grants",
        sa.Column("include_work_history", sa.Boolean(), nullable=False, server_default="false"),
    )
    op.create_table(
        "competence_wants",
        _citizen(),
        sa.Column("competence_id", sa.Integer(), sa.ForeignKey("competences.id"), primary_key=True),
        sa.Column("stance", sa.Text()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            f"stance IS NULL OR stance IN ({WANTS})", name=op.f("ck_competence_wants_stance")
        ),
    )
    op.create_table(
        "career_goals",
        _citizen(),
        sa.Column("occupation_id", sa.Integer(), sa.ForeignKey("occupations.id"), primary_key=True),
        sa.Column("horizon_year", sa.SmallInteger()),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "horizon_year IS NULL OR horizon_year BETWEEN 2000 AND 2200",
            name=op.f("ck_career_goals_horizon_year"),
        ),
    )
    op.create_table(
        "work_experiences",
        _citizen(),
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("occupation_id", sa.Integer(), sa.ForeignKey("occupations.id"), nullable=False),
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id")),
        sa.Column("client_id", pg.UUID(), sa.ForeignKey("api_clients.id")),
        sa.Column("employer_name", sa.Text()),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date()),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_key", sa.Text(), nullable=False),
        sa.Column("request_digest", sa.LargeBinary(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint(
            "citizen_id", "request_key", name=op.f("uq_work_experiences_citizen_id")
        ),
        sa.CheckConstraint(
            "ended_on IS NULL OR ended_on >= started_on",
            name=op.f("ck_work_experiences_ended_after_started"),
        ),
        sa.CheckConstraint(
            "(organisation_id IS NULL) = (client_id IS NULL) "
            "AND (organisation_id IS NULL OR employer_name IS NULL)",
            name=op.f("ck_work_experiences_recorder"),
        ),
    )
    op.create_index("ix_work_experiences_id", "work_experiences", ["id"])
    op.create_table(
        "work_experience_refs",
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
        sa.Column("experience_id", pg.UUID(), nullable=False),
        sa.Column("payload_digest", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_work_experience_refs_citizen_id", "work_experience_refs", ["citizen_id"])
    op.create_table(
        "signal_imports",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("sources", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", pg.JSONB(), nullable=False),
        sa.CheckConstraint(
            "status IN ('complete', 'replaced')", name=op.f("ck_signal_imports_status")
        ),
    )
    op.create_index("ix_signal_imports_digest", "signal_imports", ["digest"])
    op.create_table(
        "labour_market_signals",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "import_id",
            sa.BigInteger(),
            sa.ForeignKey("signal_imports.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("occupation_id", sa.Integer(), sa.ForeignKey("occupations.id")),
        sa.Column("competence_id", sa.Integer(), sa.ForeignKey("competences.id")),
        sa.Column("isco_code", sa.Text()),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("horizon_year", sa.SmallInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_url", sa.Text()),
        sa.Column("published_on", sa.Date(), nullable=False),
        sa.CheckConstraint(f"kind IN ({SIGNAL_KINDS})", name=op.f("ck_labour_market_signals_kind")),
        sa.CheckConstraint(
            "num_nonnulls(occupation_id, competence_id, isco_code) = 1",
            name=op.f("ck_labour_market_signals_one_subject"),
        ),
        sa.CheckConstraint(
            "horizon_year BETWEEN 1990 AND 2200",
            name=op.f("ck_labour_market_signals_horizon_year"),
        ),
    )
    for column in ("occupation_id", "competence_id", "isco_code", "import_id"):
        op.create_index(f"ix_labour_market_signals_{column}", "labour_market_signals", [column])
    op.execute(ERASE_FUNCTION)
    role = app_role(op.get_context().config)
    for table, privileges in PRIVILEGES.items():
        op.execute(f"GRANT {privileges} ON TABLE {table} TO {role}")


def downgrade() -> None:
    path = Path(__file__).with_name("0007_export_status.py")
    spec = importlib.util.spec_from_file_location("_passport_0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    op.execute(module.ERASE_FUNCTION)
    op.drop_table("labour_market_signals")
    op.drop_table("signal_imports")
    op.drop_table("work_experience_refs")
    op.drop_table("work_experiences")
    op.drop_table("career_goals")
    op.drop_table("competence_wants")
    op.drop_column("access_grants", "include_work_history")
    op.drop_column("access_grants", "include_wants")
