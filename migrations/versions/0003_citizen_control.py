"""Citizen control: consent grants and share links, self-declared claims, erasure, and the
application role that may append to claims, events and access records but never change them.

Revision ID: 0003_citizen_control
Revises: 0002_core
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from service.db.migrate import app_role

revision: str = "0003_citizen_control"
down_revision: str | None = "0002_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRINCIPAL_KINDS = ("partner", "reader", "citizen", "admin", "link")
BASES = ("self", "legal_basis", "consent", "link")

# What the application role may do, table by table. No DELETE anywhere: erasure goes through
# passport_erase_citizen() below, which removes one whole citizen and nothing else. UPDATE only
# on the named columns. A table missing here is out of the application's reach.
PRIVILEGES: dict[str, str] = {
    # ESCO is loaded by the schema owner (`passport import-esco`), read by the application.
    "competences": "SELECT",
    "competence_labels": "SELECT",
    "competence_broader": "SELECT",
    "competence_collections": "SELECT",
    "isco_groups": "SELECT",
    "occupations": "SELECT",
    "occupation_labels": "SELECT",
    "occupation_competences": "SELECT",
    "taxonomy_imports": "SELECT",
    "alembic_version": "SELECT",  # readiness compares it with the code's head
    "organisations": "SELECT, INSERT, UPDATE (status)",
    "api_clients": "SELECT, INSERT, UPDATE (status)",
    "legal_bases": "SELECT, INSERT, UPDATE (revoked_at)",
    "citizens": "SELECT, INSERT",
    "citizen_identities": "SELECT, INSERT",
    "claims": "SELECT, INSERT",
    "claim_refs": "SELECT, INSERT",
    "claim_revocations": "SELECT, INSERT",
    "citizen_events": "SELECT, INSERT",
    "access_records": "SELECT, INSERT",
    "access_grants": "SELECT, INSERT, UPDATE (revoked_at)",
    "share_links": "SELECT, INSERT",
}

ERASE_FUNCTION = """
CREATE FUNCTION public.passport_erase_citizen(p_citizen uuid, p_erasure uuid, p_at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
-- Nothing resolved through a schema the caller could write to: pg_catalog first and alone,
-- every table named with its schema, every call with arguments of exactly its types.
SET search_path = pg_catalog, pg_temp
AS $$
-- The only way the application can remove rows. What goes and what stays, and why, is
-- explained in service/citizens/erasure.py; keep the two in step.
DECLARE
  n_retained bigint; n_access bigint; n_links bigint; n_grants bigint; n_revocations bigint;
  n_refs bigint; n_claims bigint; n_events bigint; n_identities bigint;
  result jsonb;
BEGIN
  -- The same lock every writer of this citizen takes, exclusively, and every reader shares
  -- (service/citizens/service.py): in-flight reads finish, and are retained, first.
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
    'retainedAccessRecords', n_retained);
  UPDATE public.erasures SET counts = result WHERE id = p_erasure;
  RETURN result;
END
$$
"""
# A revocation, once recorded, is for good: the application may set revoked_at, never change
# or clear it (its UPDATE right on that one column would otherwise let it un-revoke).
ONCE_SET = """
CREATE FUNCTION public.passport_revocation_is_final() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
    RAISE EXCEPTION 'a revocation cannot be changed or withdrawn'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END
$$
"""


def _app_role() -> str:
    return app_role(op.get_context().config)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _create_role(role: str) -> None:
    # Roles belong to the whole server: another database (or a concurrent test run) may have
    # made it already. A schema owner without CREATEROLE needs it made beforehand.
    op.execute(
        f"""
        DO $$
        BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE {role} NOLOGIN;
          END IF;
        EXCEPTION
          WHEN duplicate_object OR unique_violation THEN NULL;
          WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'create the role % first (see docs/deployment.md)', '{role}';
        END
        $$
        """
    )


def _no_create_in_public(role: str) -> None:
    """Nobody but the owner creates objects in public (PostgreSQL 15's default; older servers,
    and clusters upgraded from them, let everyone), so nothing can shadow what the schema's
    functions call. A schema owner without the right to change it leaves it as it is."""
    op.execute(
        f"""
        DO $$
        BEGIN
          REVOKE CREATE ON SCHEMA public FROM PUBLIC;
          REVOKE CREATE ON SCHEMA public FROM {role};
        EXCEPTION WHEN insufficient_privilege THEN
          RAISE WARNING 'could not revoke CREATE on schema public: do it as its owner';
        END
        $$
        """
    )


def upgrade() -> None:
    op.alter_column("claims", "organisation_id", nullable=True)
    op.alter_column("claims", "client_id", nullable=True)
    op.create_check_constraint(
        op.f("ck_claims_issuer"),
        "claims",
        "(organisation_id IS NULL) = (assessment_method = 'self_assessment') "
        "AND (client_id IS NULL) = (organisation_id IS NULL)",
    )
    op.alter_column("claim_revocations", "client_id", nullable=True)

    op.add_column(
        "access_records",
        sa.Column("grant_ids", pg.ARRAY(pg.UUID()), server_default="{}", nullable=False),
    )
    op.drop_constraint(op.f("ck_access_records_principal_kind"), "access_records")
    op.create_check_constraint(
        op.f("ck_access_records_principal_kind"),
        "access_records",
        _in("principal_kind", PRINCIPAL_KINDS),
    )
    op.drop_constraint(op.f("ck_access_records_basis"), "access_records")
    op.create_check_constraint(
        op.f("ck_access_records_basis"), "access_records", _in("basis", BASES)
    )

    op.create_table(
        "access_grants",
        sa.Column(
            "citizen_id",
            pg.UUID(),
            sa.ForeignKey("citizens.citizen_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("grant_id", pg.UUID(), primary_key=True),
        sa.Column("grantee_kind", sa.Text(), nullable=False),
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id")),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("competence_ids", pg.ARRAY(sa.Integer())),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("request_key", sa.Text(), nullable=False),
        sa.Column("request_digest", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            _in("grantee_kind", ("organisation", "link")),
            name=op.f("ck_access_grants_grantee_kind"),
        ),
        sa.CheckConstraint(
            "(grantee_kind = 'organisation') = (organisation_id IS NOT NULL)",
            name=op.f("ck_access_grants_grantee"),
        ),
        sa.CheckConstraint(
            "expires_at > created_at", name=op.f("ck_access_grants_expires_after_created")
        ),
    )
    op.create_index(
        "uq_access_grants_citizen_request",
        "access_grants",
        ["citizen_id", "request_key"],
        unique=True,
    )
    op.create_index(
        "ix_access_grants_organisation_expiry", "access_grants", ["organisation_id", "expires_at"]
    )
    op.create_table(
        "share_links",
        sa.Column("secret_hash", sa.LargeBinary(), primary_key=True),
        sa.Column("citizen_id", pg.UUID(), nullable=False),
        sa.Column("grant_id", pg.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id", "grant_id"],
            ["access_grants.citizen_id", "access_grants.grant_id"],
            ondelete="CASCADE",
            name=op.f("fk_share_links_citizen_id_access_grants"),
        ),
    )
    op.create_index(op.f("ix_share_links_citizen_id"), "share_links", ["citizen_id"])
    op.create_table(
        "erasures",
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", pg.JSONB(), nullable=False),
    )
    op.create_table(
        "retained_access_records",
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("erasure_id", pg.UUID(), sa.ForeignKey("erasures.id"), nullable=False),
        sa.Column("accessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal_kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text()),
        sa.Column("organisation_id", pg.UUID(), sa.ForeignKey("organisations.id")),
        sa.Column("legal_basis_id", pg.UUID(), sa.ForeignKey("legal_bases.id")),
        sa.Column("purpose", sa.Text()),
        sa.Column("operation", sa.Text(), nullable=False),
    )
    op.create_index(
        op.f("ix_retained_access_records_erasure_id"), "retained_access_records", ["erasure_id"]
    )

    op.execute(ERASE_FUNCTION)
    op.execute(ONCE_SET)
    for table in ("access_grants", "legal_bases"):
        op.execute(
            f"CREATE TRIGGER {table}_revocation_is_final BEFORE UPDATE OF revoked_at ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION public.passport_revocation_is_final()"
        )
    role = _app_role()
    _create_role(role)
    for table, privileges in PRIVILEGES.items():
        op.execute(f"GRANT {privileges} ON TABLE {table} TO {role}")
    erase = "public.passport_erase_citizen(uuid, uuid, timestamptz)"
    op.execute(f"REVOKE ALL ON FUNCTION {erase} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {erase} TO {role}")
    _no_create_in_public(role)


def downgrade() -> None:
    # Consent and self-declarations are in the citizens' hash chains: removing them would
    # break every chain that has them. Refuse rather than leave chains that no longer verify.
    used = op.get_bind().scalar(
        sa.text(
            "SELECT count(*) FROM citizen_events WHERE event_type IN "
            "('grant.created', 'grant.revoked', 'claim.self_declared', 'claim.withdrawn')"
        )
    )
    if used:
        raise RuntimeError(
            f"{used} events of consent or self-declaration exist; downgrading past "
            "0003_citizen_control would break their citizens' hash chains"
        )
    role = _app_role()
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
    op.execute("DROP FUNCTION public.passport_erase_citizen(uuid, uuid, timestamptz)")
    for table in ("access_grants", "legal_bases"):
        op.execute(f"DROP TRIGGER {table}_revocation_is_final ON {table}")
    op.execute("DROP FUNCTION public.passport_revocation_is_final()")
    for table in ("retained_access_records", "erasures", "share_links", "access_grants"):
        op.drop_table(table)
    op.execute("DELETE FROM access_records WHERE basis = 'link' OR principal_kind = 'link'")
    op.drop_constraint(op.f("ck_access_records_principal_kind"), "access_records")
    op.create_check_constraint(
        op.f("ck_access_records_principal_kind"),
        "access_records",
        _in("principal_kind", PRINCIPAL_KINDS[:-1]),
    )
    op.drop_constraint(op.f("ck_access_records_basis"), "access_records")
    op.create_check_constraint(
        op.f("ck_access_records_basis"), "access_records", _in("basis", BASES[:-1])
    )
    op.drop_column("access_records", "grant_ids")
    op.alter_column("claim_revocations", "client_id", nullable=False)
    op.drop_constraint(op.f("ck_claims_issuer"), "claims")
    op.alter_column("claims", "client_id", nullable=False)
    op.alter_column("claims", "organisation_id", nullable=False)
