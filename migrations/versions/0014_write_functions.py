"""The remaining round trips of the claim writes folded into one call each.

``passport_issue_claim_for`` is ``passport_issue_claim`` (0012) with the citizen found here
too: the caller names the citizen by the keyed hash of their national number, and the
digest that tells a faithful retry from a conflict, which names the citizen, is made here
from the canonical JSON around the citizen's id (``service.claims.service.digest_parts``)
as the chain's hash is. A request that loses the race to create the citizen's record runs
again for the winner's inside the call. Everything else is 0012's function, called as it is:
no rule of it is repeated here.

``passport_revoke_claim`` is a revocation with its event: the citizen lock, the revocation
(a second one is no change), the refusal of a superseded claim and the event, whose payload
and notice the application made (service/claims/service.py, from the claim it read). It
refuses after taking the lock so a supersession in flight is seen.

Both run as the caller (SECURITY INVOKER), as 0012's do. On Citus they run on the
coordinator like 0012's: they touch tables of several distribution keys (identities by
their hash, refs by organisation, claims by citizen), so they are not distributed functions.

Revision ID: 0014_write_functions
Revises: 0013_erase_wallet_lookups
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014_write_functions"
down_revision: str | None = "0013_erase_wallet_lookups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ISSUE_CLAIM_FOR = r"""
CREATE FUNCTION public.passport_issue_claim_for(
  p_insz_hash bytea, p_key_version smallint, p_citizen uuid,
  p_claim jsonb, p_digest_head text, p_digest_tail text, p_events jsonb)
RETURNS TABLE (outcome text, claim_id uuid, citizen_id uuid)
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
-- p_insz_hash: the citizen by identity, or NULL when p_citizen is known (a supersession);
-- with a hash, p_citizen is the fresh id for a citizen with no record yet. The digest is
-- SHA-256 of p_digest_head || citizen || p_digest_tail. Outcomes as passport_issue_claim's,
-- but never 'raced'.
DECLARE
  v_citizen uuid := p_citizen;
  v_create bytea;
  v_result record;
BEGIN
  IF p_insz_hash IS NOT NULL THEN
    SELECT i.citizen_id INTO v_citizen FROM citizen_identities i
     WHERE i.insz_hash = p_insz_hash;
    IF NOT FOUND THEN
      v_citizen := p_citizen;
      v_create := p_insz_hash;
    END IF;
  END IF;
  LOOP
    SELECT * INTO v_result FROM passport_issue_claim(
      v_create, p_key_version, v_citizen, p_claim,
      sha256(convert_to(p_digest_head || v_citizen::text || p_digest_tail, 'UTF8')),
      p_events) AS r;
    EXIT WHEN v_result.outcome <> 'raced';
    v_citizen := v_result.citizen_id;  -- another request created the record: use it
    v_create := NULL;
  END LOOP;
  RETURN QUERY SELECT v_result.outcome, v_result.claim_id, v_result.citizen_id;
END
$$
"""

REVOKE_CLAIM = r"""
CREATE FUNCTION public.passport_revoke_claim(
  p_citizen uuid, p_claim uuid, p_reason text, p_at timestamptz, p_client uuid,
  p_event jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Outcomes: revoked, unchanged (it was revoked before), superseded (refused: revoke the
-- newer claim), gone (the citizen was erased meanwhile).
BEGIN
  -- The citizen lock, keyed as service.citizens.service and passport_erase_citizen key it.
  PERFORM pg_advisory_xact_lock(hashtextextended(p_citizen::text, 0));
  IF NOT EXISTS (SELECT 1 FROM citizens c WHERE c.citizen_id = p_citizen) THEN
    RETURN 'gone';
  END IF;
  IF EXISTS (SELECT 1 FROM claim_revocations r
              WHERE r.citizen_id = p_citizen AND r.claim_id = p_claim) THEN
    RETURN 'unchanged';
  END IF;
  IF EXISTS (SELECT 1 FROM claims c
              WHERE c.citizen_id = p_citizen AND c.supersedes_claim_id = p_claim) THEN
    RETURN 'superseded';
  END IF;
  INSERT INTO claim_revocations (citizen_id, claim_id, reason, revoked_at, client_id)
  VALUES (p_citizen, p_claim, p_reason, p_at, p_client);
  PERFORM passport_append_event(p_citizen, p_event);
  RETURN 'revoked';
END
$$
"""


def upgrade() -> None:
    op.execute(ISSUE_CLAIM_FOR)
    op.execute(REVOKE_CLAIM)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION public.passport_revoke_claim(uuid, uuid, text, timestamptz, uuid, jsonb)"
    )
    op.execute(
        "DROP FUNCTION public.passport_issue_claim_for"
        "(bytea, smallint, uuid, jsonb, text, text, jsonb)"
    )
