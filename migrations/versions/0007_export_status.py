"""Status positions per export, and exports the citizen can revoke.

Until now a claim kept one status-list position across all its exports, so two recruiters
holding copies of one claim could link them by the index, and an export's own position never
changed. Now every export draws fresh random positions, one for the ClrCredential and one per
credential in it (``credential_export_entries``); a citizen can revoke an export
(``credential_export_revocations``, insert-only like claim revocations). A position's bit is
set when its claim is revoked, its export is revoked, or its citizen was erased.

Standard verifiers bind a status list to the credential's issuer (the list's issuer must be
the credential's), so each vouching organisation's credentials draw positions from lists of
that organisation's own (``status_lists.organisation_id``); the service's lists hold the
ClrCredentials' positions.

The citizen may also set the name their exports show (``citizen_settings``): a share link's
holder has no token that names the citizen.

The positions of exports made before this revision are carried over (they stay shared
between those old exports, as they were signed) and ``claim_status_positions`` goes.

Revision ID: 0007_export_status
Revises: 0006_events_and_bulk
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from service.db.migrate import app_role

revision: str = "0007_export_status"
down_revision: str | None = "0006_events_and_bulk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRIVILEGES = {
    "credential_export_entries": "SELECT, INSERT",
    "credential_export_revocations": "SELECT, INSERT",
    "citizen_settings": "SELECT, INSERT, UPDATE (export_name, updated_at)",
}

# As in 0005_credentials, with the positions of each export's credentials in place of the
# claims' shared ones.
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


def upgrade() -> None:
    op.add_column(
        "status_lists",
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id")),
    )
    op.create_index("ix_status_lists_organisation_id", "status_lists", ["organisation_id", "id"])
    op.create_table(
        "credential_export_entries",
        sa.Column("citizen_id", pg.UUID(), nullable=False),
        sa.Column("export_id", pg.UUID(), nullable=False),
        sa.Column("claim_id", pg.UUID(), nullable=False),
        sa.Column("status_list", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("citizen_id", "export_id", "claim_id"),
        sa.ForeignKeyConstraint(
            ["citizen_id", "export_id"],
            ["credential_exports.citizen_id", "credential_exports.id"],
            ondelete="CASCADE",
        ),
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
        "ix_credential_export_entries_position",
        "credential_export_entries",
        ["status_list", "idx"],
    )
    op.create_table(
        "credential_export_revocations",
        sa.Column("citizen_id", pg.UUID(), nullable=False),
        sa.Column("export_id", pg.UUID(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("citizen_id", "export_id"),
        sa.ForeignKeyConstraint(
            ["citizen_id", "export_id"],
            ["credential_exports.citizen_id", "credential_exports.id"],
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_credential_exports_position", "credential_exports", ["status_list", "status_idx"]
    )
    # Erasure removes it with the citizen row (the function deletes citizens; this cascades).
    op.create_table(
        "citizen_settings",
        sa.Column(
            "citizen_id",
            pg.UUID(),
            sa.ForeignKey("citizens.citizen_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("export_name", sa.Text()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "export_name IS NULL OR char_length(export_name) BETWEEN 1 AND 200",
            name=op.f("ck_citizen_settings_export_name"),
        ),
    )
    op.execute(
        """
        INSERT INTO credential_export_entries (citizen_id, export_id, claim_id, status_list, idx)
        SELECT x.citizen_id, x.id, p.claim_id, p.status_list, p.idx
        FROM credential_exports x
        CROSS JOIN LATERAL unnest(x.claim_ids) AS c(claim_id)
        JOIN claim_status_positions p
          ON p.citizen_id = x.citizen_id AND p.claim_id = c.claim_id
        """
    )
    op.drop_column("credential_exports", "claim_ids")
    op.drop_table("claim_status_positions")
    op.execute(ERASE_FUNCTION)
    role = app_role(op.get_context().config)
    for table, privileges in PRIVILEGES.items():
        op.execute(f"GRANT {privileges} ON TABLE {table} TO {role}")


def downgrade() -> None:
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
    op.add_column(
        "credential_exports",
        sa.Column("claim_ids", pg.ARRAY(pg.UUID()), nullable=False, server_default="{}"),
    )
    op.alter_column("credential_exports", "claim_ids", server_default=None)
    op.execute(
        """
        UPDATE credential_exports x SET claim_ids = e.ids
        FROM (SELECT citizen_id, export_id, array_agg(claim_id) AS ids
              FROM credential_export_entries GROUP BY citizen_id, export_id) e
        WHERE e.citizen_id = x.citizen_id AND e.export_id = x.id
        """
    )
    # One position per claim, as before: the newest export's.
    op.execute(
        """
        INSERT INTO claim_status_positions (citizen_id, claim_id, status_list, idx)
        SELECT DISTINCT ON (e.citizen_id, e.claim_id) e.citizen_id, e.claim_id,
               e.status_list, e.idx
        FROM credential_export_entries e
        JOIN credential_exports x ON x.citizen_id = e.citizen_id AND x.id = e.export_id
        ORDER BY e.citizen_id, e.claim_id, x.created_at DESC
        """
    )
    role = app_role(op.get_context().config)
    op.execute(f"GRANT SELECT, INSERT ON TABLE claim_status_positions TO {role}")
    op.drop_table("citizen_settings")
    op.drop_index("ix_credential_exports_position", "credential_exports")
    op.drop_table("credential_export_revocations")
    op.drop_table("credential_export_entries")
    op.drop_index("ix_status_lists_organisation_id", "status_lists")
    op.drop_column("status_lists", "organisation_id")
    path = Path(__file__).with_name("0005_credentials.py")
    spec = importlib.util.spec_from_file_location("_passport_0005", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    op.execute(module.ERASE_FUNCTION)
