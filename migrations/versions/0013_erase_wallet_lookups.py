"""Erasure removes a wallet's codes and access tokens by the citizen, not through the offers.

``credential_offer_codes`` and ``wallet_access_tokens`` (0008) point at ``credential_offers``
with ON DELETE CASCADE, which on one server takes them with the citizen's row. On Citus they are
sharded by their hashes (service/db/citus.py LAYOUT), so ``passport distribute`` drops those
keys (Citus cannot enforce a key between tables sharded by different columns) and the cascade
no longer reaches them: an erased citizen's code and token hashes were left behind. The
function now deletes them by ``citizen_id`` (each has an index on it), as it does
``share_links`` and ``claim_refs``; on one server that is what the cascade did. The counts it
returns are unchanged.

Revision ID: 0013_erase_wallet_lookups
Revises: 0012_write_path
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0013_erase_wallet_lookups"
down_revision: str | None = "0012_write_path"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
  -- A wallet's pre-authorized codes and access tokens: on one server they go with the
  -- offers (ON DELETE CASCADE from citizens); on Citus they are sharded by their hashes,
  -- their keys to the offers are dropped, and only this finds them.
  DELETE FROM public.credential_offer_codes WHERE citizen_id = p_citizen;
  DELETE FROM public.wallet_access_tokens WHERE citizen_id = p_citizen;
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


def upgrade() -> None:
    op.execute(ERASE_FUNCTION)


def downgrade() -> None:
    path = Path(__file__).with_name("0010_team_endorsements.py")
    spec = importlib.util.spec_from_file_location("_passport_0010", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    op.execute(module.ERASE_FUNCTION)
