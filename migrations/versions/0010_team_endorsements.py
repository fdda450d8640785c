"""Team competence checks, competence profiles and endorsements.

- ``team_checks``: an organisation invites its staff to a team check; each citizen answers
  with a grant that names it (``access_grants.team_check_id``, and ``disclosure``: named, or
  counted only). Such a grant is read by the team check and nothing else.
- ``competence_profiles``: an organisation's own profiles of ESCO competences (essential or
  optional, with a minimum level), to check its staff against instead of occupations.
- ``claim_endorsements``: an organisation other than the issuer endorses a claim; the endorser
  may revoke it, the citizen may hide it from readers (both status columns). Idempotency by the
  endorser's reference in ``endorsement_refs``, as ``claim_refs`` does for claims.
- ``credential_export_endorsements``: the status position of each EndorsementCredential in an
  export, drawn for that export alone, as ``credential_export_entries`` for claims.

``passport_erase_citizen`` also withdraws the endorsements' status positions and deletes the
endorsements and their references (as 0009's, with those added).

Revision ID: 0010_team_endorsements
Revises: 0009_career
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from service.db.migrate import app_role

revision: str = "0010_team_endorsements"
down_revision: str | None = "0009_career"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRIVILEGES = {
    "team_checks": "SELECT, INSERT, UPDATE (closed_at)",
    # an organisation's catalogue of profiles, not personal data: replaced by saving again
    "competence_profiles": "SELECT, INSERT, UPDATE (name, requirements, updated_at, archived_at)",
    "claim_endorsements": "SELECT, INSERT, UPDATE (revoked_at, revocation_reason, hidden_at)",
    "endorsement_refs": "SELECT, INSERT",
    "credential_export_endorsements": "SELECT, INSERT",
}
WEBHOOK_EVENT_TYPES = (
    "claim.issued",
    "claim.revoked",
    "claim.superseded",
    "grant.created",
    "grant.revoked",
)
NEW_WEBHOOK_EVENT_TYPES = ("endorsement.created", "endorsement.revoked")

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
  n_endorsements bigint; n_endorsement_refs bigint;
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
          SELECT status_list, idx FROM public.credential_export_endorsements
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
  DELETE FROM public.claim_endorsements WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_endorsements = ROW_COUNT;
  DELETE FROM public.endorsement_refs WHERE citizen_id = p_citizen;
  GET DIAGNOSTICS n_endorsement_refs = ROW_COUNT;
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
    'workExperiences', n_work, 'workExperienceRefs', n_work_refs,
    'endorsements', n_endorsements, 'endorsementRefs', n_endorsement_refs);
  UPDATE public.erasures SET counts = result WHERE id = p_erasure;
  RETURN result;
END
$$
"""


def _event_types_check(types: Sequence[str]) -> str:
    return (
        "cardinality(event_types) > 0 AND event_types <@ ARRAY["
        + ", ".join(f"'{t}'" for t in types)
        + "]::text[]"
    )


def upgrade() -> None:
    op.create_table(
        "team_checks",
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("external_ref", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("organisation_id", "external_ref"),
        sa.CheckConstraint("char_length(name) BETWEEN 1 AND 200", name=op.f("ck_team_checks_name")),
    )
    op.create_table(
        "competence_profiles",
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("external_ref", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("requirements", pg.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("organisation_id", "external_ref"),
        sa.CheckConstraint(
            "char_length(name) BETWEEN 1 AND 200", name=op.f("ck_competence_profiles_name")
        ),
        sa.CheckConstraint(
            "jsonb_typeof(requirements) = 'array' AND jsonb_array_length(requirements) > 0",
            name=op.f("ck_competence_profiles_requirements"),
        ),
    )
    op.add_column(
        "access_grants",
        sa.Column("team_check_id", pg.UUID(), sa.ForeignKey("team_checks.id")),
    )
    op.add_column("access_grants", sa.Column("disclosure", sa.Text()))
    op.create_check_constraint(
        op.f("ck_access_grants_disclosure"),
        "access_grants",
        "disclosure IS NULL OR disclosure IN ('named', 'counted')",
    )
    op.create_check_constraint(
        op.f("ck_access_grants_team_check"),
        "access_grants",
        "(team_check_id IS NULL) = (disclosure IS NULL) "
        "AND (team_check_id IS NULL OR grantee_kind = 'organisation')",
    )
    op.create_index(
        "ix_access_grants_team_check_expiry",
        "access_grants",
        ["team_check_id", "expires_at"],
        postgresql_where=sa.text("team_check_id IS NOT NULL"),
    )
    op.create_table(
        "claim_endorsements",
        sa.Column("citizen_id", pg.UUID(), nullable=False),
        sa.Column("endorsement_id", pg.UUID(), nullable=False),
        sa.Column("claim_id", pg.UUID(), nullable=False),
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("client_id", pg.UUID(), sa.ForeignKey("api_clients.id"), nullable=False),
        sa.Column("endorser_role", sa.Text()),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("external_ref", sa.Text(), nullable=False),
        sa.Column("endorsed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revocation_reason", sa.Text()),
        sa.Column("hidden_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("citizen_id", "endorsement_id"),
        sa.ForeignKeyConstraint(
            ["citizen_id", "claim_id"],
            ["claims.citizen_id", "claims.claim_id"],
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "char_length(statement) BETWEEN 3 AND 1000",
            name=op.f("ck_claim_endorsements_statement"),
        ),
        sa.CheckConstraint(
            "(revoked_at IS NULL) = (revocation_reason IS NULL)",
            name=op.f("ck_claim_endorsements_revocation"),
        ),
    )
    op.create_index(
        "ix_claim_endorsements_citizen_claim", "claim_endorsements", ["citizen_id", "claim_id"]
    )
    op.create_index(
        "ix_claim_endorsements_endorsement_id", "claim_endorsements", ["endorsement_id"]
    )
    op.create_index(
        "ix_claim_endorsements_organisation_endorsed",
        "claim_endorsements",
        ["organisation_id", "endorsed_at"],
    )
    op.create_table(
        "endorsement_refs",
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
        sa.Column("endorsement_id", pg.UUID(), nullable=False),
        sa.Column("payload_digest", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_endorsement_refs_citizen_id", "endorsement_refs", ["citizen_id"])
    op.create_table(
        "credential_export_endorsements",
        sa.Column("citizen_id", pg.UUID(), nullable=False),
        sa.Column("export_id", pg.UUID(), nullable=False),
        sa.Column("endorsement_id", pg.UUID(), nullable=False),
        sa.Column("status_list", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("citizen_id", "export_id", "endorsement_id"),
        sa.ForeignKeyConstraint(
            ["citizen_id", "export_id"],
            ["credential_exports.citizen_id", "credential_exports.id"],
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id", "endorsement_id"],
            ["claim_endorsements.citizen_id", "claim_endorsements.endorsement_id"],
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["status_list", "idx"], ["status_list_entries.status_list", "status_list_entries.idx"]
        ),
    )
    op.create_index(
        "ix_credential_export_endorsements_position",
        "credential_export_endorsements",
        ["status_list", "idx"],
    )
    op.drop_constraint(op.f("ck_webhook_subscriptions_event_types"), "webhook_subscriptions")
    op.create_check_constraint(
        op.f("ck_webhook_subscriptions_event_types"),
        "webhook_subscriptions",
        _event_types_check(WEBHOOK_EVENT_TYPES + NEW_WEBHOOK_EVENT_TYPES),
    )
    op.execute(ERASE_FUNCTION)
    role = app_role(op.get_context().config)
    for table, privileges in PRIVILEGES.items():
        op.execute(f"GRANT {privileges} ON TABLE {table} TO {role}")


def downgrade() -> None:
    path = Path(__file__).with_name("0009_career.py")
    spec = importlib.util.spec_from_file_location("_passport_0009", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    op.execute(module.ERASE_FUNCTION)
    # A subscription that asks only for endorsements has nothing left to hear of: refuse
    # rather than guess what its owner wants.
    op.execute(
        """
        DO $$
        BEGIN
          IF EXISTS (SELECT 1 FROM webhook_subscriptions
                     WHERE event_types <@ ARRAY['endorsement.created', 'endorsement.revoked']) THEN
            RAISE EXCEPTION 'webhook subscriptions ask only for endorsement events';
          END IF;
        END
        $$
        """
    )
    op.execute(
        "UPDATE webhook_subscriptions SET event_types = ARRAY(SELECT t FROM unnest(event_types) t "
        "WHERE t NOT IN ('endorsement.created', 'endorsement.revoked'))"
    )
    op.drop_constraint(op.f("ck_webhook_subscriptions_event_types"), "webhook_subscriptions")
    op.create_check_constraint(
        op.f("ck_webhook_subscriptions_event_types"),
        "webhook_subscriptions",
        _event_types_check(WEBHOOK_EVENT_TYPES),
    )
    op.drop_table("credential_export_endorsements")
    op.drop_table("endorsement_refs")
    op.drop_table("claim_endorsements")
    op.drop_index("ix_access_grants_team_check_expiry", "access_grants")
    op.drop_constraint(op.f("ck_access_grants_team_check"), "access_grants")
    op.drop_constraint(op.f("ck_access_grants_disclosure"), "access_grants")
    op.execute("DELETE FROM access_grants WHERE team_check_id IS NOT NULL")  # as schema owner
    op.drop_column("access_grants", "disclosure")
    op.drop_column("access_grants", "team_check_id")
    op.drop_table("competence_profiles")
    op.drop_table("team_checks")
