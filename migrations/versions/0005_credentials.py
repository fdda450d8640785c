"""Signed credential exports, BitstringStatusList positions, and erasure that reaches both.

Revision ID: 0005_credentials
Revises: 0004_learning
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from service.db.migrate import app_role

revision: str = "0005_credentials"
down_revision: str | None = "0004_learning"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRINCIPAL_KINDS = ("partner", "reader", "citizen", "admin", "link", "verifier")
BASES = ("self", "legal_basis", "consent", "link", "export")

# Exports and positions are written once; nothing here is updated or deleted by the
# application (erasure goes through passport_erase_citizen).
PRIVILEGES = {
    "credential_exports": "SELECT, INSERT",
    "status_lists": "SELECT, INSERT",
    "status_list_entries": "SELECT, INSERT",
    "claim_status_positions": "SELECT, INSERT",
}

# As in 0003_citizen_control, plus exports and status positions: an erased citizen's
# positions stay allocated and set ("withdrawn"), with nothing left that says whose they were,
# so every credential exported before the erasure reads as revoked. The UPDATE is the only
# one: the application itself has no UPDATE right on status_list_entries.
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
  n_positions bigint;
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
    FROM public.claim_status_positions p
   WHERE p.citizen_id = p_citizen AND e.status_list = p.status_list AND e.idx = p.idx;
  GET DIAGNOSTICS n_positions = ROW_COUNT;
  UPDATE public.status_list_entries e SET withdrawn_at = p_at
    FROM public.credential_exports x
   WHERE x.citizen_id = p_citizen AND e.status_list = x.status_list AND e.idx = x.status_idx;
  GET DIAGNOSTICS n_exports = ROW_COUNT;
  n_positions := n_positions + n_exports;
  DELETE FROM public.claim_status_positions WHERE citizen_id = p_citizen;
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
    'statusPositionsWithdrawn', n_positions);
  UPDATE public.erasures SET counts = result WHERE id = p_erasure;
  RETURN result;
END
$$
"""


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _access_checks(kinds: Sequence[str], bases: Sequence[str]) -> None:
    for name, column, values in (
        ("ck_access_records_principal_kind", "principal_kind", kinds),
        ("ck_access_records_basis", "basis", bases),
    ):
        op.drop_constraint(op.f(name), "access_records")
        op.create_check_constraint(op.f(name), "access_records", _in(column, values))


def upgrade() -> None:
    op.create_table(
        "status_lists",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("size >= 131072 AND size % 8 = 0", name=op.f("ck_status_lists_size")),
    )
    op.create_table(
        "status_list_entries",
        sa.Column("status_list", sa.Integer(), sa.ForeignKey("status_lists.id"), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("status_list", "idx"),
        sa.CheckConstraint("idx >= 0", name=op.f("ck_status_list_entries_idx")),
    )
    op.create_table(
        "claim_status_positions",
        sa.Column("citizen_id", pg.UUID(), nullable=False),
        sa.Column("claim_id", pg.UUID(), nullable=False),
        sa.Column("status_list", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("citizen_id", "claim_id"),
        sa.ForeignKeyConstraint(
            ["citizen_id", "claim_id"],
            ["claims.citizen_id", "claims.claim_id"],
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["status_list", "idx"], ["status_list_entries.status_list", "status_list_entries.idx"]
        ),
    )
    op.create_index(
        "ix_claim_status_positions_position", "claim_status_positions", ["status_list", "idx"]
    )
    op.create_table(
        "credential_exports",
        sa.Column(
            "citizen_id",
            pg.UUID(),
            sa.ForeignKey("citizens.citizen_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("id", pg.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("grant_id", pg.UUID()),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("claim_ids", pg.ARRAY(pg.UUID()), nullable=False),
        sa.Column("status_list", sa.Integer(), nullable=False),
        sa.Column("status_idx", sa.Integer(), nullable=False),
        sa.Column("document_sha256", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("citizen_id", "id"),
        sa.ForeignKeyConstraint(
            ["status_list", "status_idx"],
            ["status_list_entries.status_list", "status_list_entries.idx"],
        ),
        sa.CheckConstraint("basis IN ('self', 'link')", name=op.f("ck_credential_exports_basis")),
        sa.CheckConstraint(
            "valid_until > created_at", name=op.f("ck_credential_exports_valid_after_created")
        ),
    )
    op.create_index("ix_credential_exports_id", "credential_exports", ["id"])
    _access_checks(PRINCIPAL_KINDS, BASES)
    op.execute(ERASE_FUNCTION)
    role = app_role(op.get_context().config)
    for table, privileges in PRIVILEGES.items():
        op.execute(f"GRANT {privileges} ON TABLE {table} TO {role}")


def downgrade() -> None:
    # Restore 0003's erasure function (it knows nothing of these tables).
    path = Path(__file__).with_name("0003_citizen_control.py")
    spec = importlib.util.spec_from_file_location("_passport_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    op.execute(module.ERASE_FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    op.execute("DELETE FROM access_records WHERE basis = 'export' OR principal_kind = 'verifier'")
    _access_checks(PRINCIPAL_KINDS[:-1], BASES[:-1])
    for table in (
        "credential_exports",
        "claim_status_positions",
        "status_list_entries",
        "status_lists",
    ):
        op.drop_table(table)
