"""The write path in one statement: appending to a citizen's chain and issuing a claim.

``passport_append_event`` is the one place the chain is appended to (every writer calls it):
the head, the next ``seq``, the link hash, the event row and its webhook deliveries. The
event's canonical JSON is made by the application (RFC 8785 is a rule of the application,
``service/events/chain.py``); only the parts the database decides, the citizen's id and the
sequence number, are spliced in here. ``passport_issue_claim`` issues (or supersedes) a claim
with everything that goes with it: the citizen found or created, the citizen lock, the
idempotency key, the claim and its events. The rules that stay in Python (validation, the
digest of a request, the event payloads) arrive as arguments; the rules here are the ones that
need the rows (the chain head, a retry under a taken key, a claim already superseded).

Both run as the caller (SECURITY INVOKER): the application's role needs no new right.

Revision ID: 0012_write_path
Revises: 0010_team_endorsements
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_write_path"
down_revision: str | None = "0010_team_endorsements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_EVENT = r"""
CREATE FUNCTION public.passport_append_event(p_citizen uuid, p_event jsonb)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
-- p_event: {id, type, at, payload, middle, tail, audience, body_head, body_tail}; a body
-- without a tail names no passport (the citizen's id goes between head and tail). The hash is
-- SHA-256 over the previous hash and '{"citizenId":"' || citizen || middle || seq || tail,
-- which is the event's RFC 8785 form (service/events/chain.py makes middle and tail). The
-- caller holds the citizen lock, so seq has no gap or fork.
DECLARE
  v_seq bigint;
  v_prev bytea;
  v_hash bytea;
BEGIN
  SELECT seq, hash INTO v_seq, v_prev FROM citizen_events
   WHERE citizen_id = p_citizen ORDER BY seq DESC LIMIT 1;
  v_seq := coalesce(v_seq, 0) + 1;
  v_prev := coalesce(v_prev, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
  v_hash := sha256(v_prev || convert_to(
    '{"citizenId":"' || p_citizen::text || (p_event->>'middle') || v_seq::text
      || (p_event->>'tail'), 'UTF8'));
  INSERT INTO citizen_events
    (citizen_id, seq, event_id, event_type, occurred_at, payload, prev_hash, hash)
  VALUES (p_citizen, v_seq, (p_event->>'id')::uuid, p_event->>'type',
          (p_event->>'at')::timestamptz, p_event->'payload', v_prev, v_hash);
  IF p_event->>'audience' IS NOT NULL THEN
    INSERT INTO webhook_deliveries
      (subscription_id, citizen_id, seq, event_id, event_type, body, created_at,
       next_attempt_at)
    SELECT s.id, p_citizen, v_seq, (p_event->>'id')::uuid, p_event->>'type',
           CASE WHEN p_event ? 'body_tail'
                THEN (p_event->>'body_head') || p_citizen::text || (p_event->>'body_tail')
                ELSE p_event->>'body_head' END,
           (p_event->>'at')::timestamptz, (p_event->>'at')::timestamptz
      FROM webhook_subscriptions s
     WHERE s.organisation_id = (p_event->>'audience')::uuid AND s.disabled_at IS NULL
       AND p_event->>'type' = ANY (s.event_types);
  END IF;
  RETURN v_seq;
END
$$
"""

ISSUE_CLAIM = r"""
CREATE FUNCTION public.passport_issue_claim(
  p_insz_hash bytea, p_key_version smallint, p_citizen uuid,
  p_claim jsonb, p_digest bytea, p_events jsonb)
RETURNS TABLE (outcome text, claim_id uuid, citizen_id uuid)
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
-- p_citizen: the citizen; with p_insz_hash, one the caller found no record of and names by a
-- fresh id, created here (a request that loses that race answers 'raced' and the winner's
-- id, and the caller runs again for it). p_claim: the claims row but its citizen; p_events:
-- its events, in order. Outcomes: created, retry (the same request under its key: claim_id
-- is the earlier claim), conflict (the key holds another claim), superseded, revoked, gone
-- (the citizen was erased meanwhile), raced.
DECLARE
  v_citizen uuid := p_citizen;
  v_claim uuid := (p_claim->>'claim_id')::uuid;
  v_org uuid := (p_claim->>'organisation_id')::uuid;
  v_ref text := p_claim->>'external_ref';
  v_old uuid := (p_claim->>'supersedes_claim_id')::uuid;
  v_earlier uuid;
  v_earlier_digest bytea;
  v_event jsonb;
BEGIN
  IF p_insz_hash IS NOT NULL THEN
    -- As service.citizens.service.get_or_create_citizen: the identity is claimed first, and
    -- only its winner writes the citizen row.
    WITH claimed AS (
      INSERT INTO citizen_identities (insz_hash, citizen_id, key_version)
      VALUES (p_insz_hash, p_citizen, p_key_version)
      ON CONFLICT (insz_hash) DO NOTHING
      RETURNING citizen_identities.citizen_id)
    INSERT INTO citizens (citizen_id) SELECT claimed.citizen_id FROM claimed;
    IF NOT FOUND THEN
      RETURN QUERY SELECT 'raced', NULL::uuid, i.citizen_id FROM citizen_identities i
                    WHERE i.insz_hash = p_insz_hash;
      RETURN;
    END IF;
  END IF;
  -- The citizen lock, keyed as service.citizens.service and passport_erase_citizen key it.
  PERFORM pg_advisory_xact_lock(hashtextextended(v_citizen::text, 0));
  IF NOT EXISTS (SELECT 1 FROM citizens c WHERE c.citizen_id = v_citizen) THEN
    RETURN QUERY SELECT 'gone', NULL::uuid, v_citizen;
    RETURN;
  END IF;
  INSERT INTO claim_refs (organisation_id, external_ref, citizen_id, claim_id, payload_digest)
  VALUES (v_org, v_ref, v_citizen, v_claim, p_digest)
  ON CONFLICT (organisation_id, external_ref) DO NOTHING;
  IF NOT FOUND THEN
    SELECT r.claim_id, r.payload_digest INTO v_earlier, v_earlier_digest
      FROM claim_refs r WHERE r.organisation_id = v_org AND r.external_ref = v_ref;
    RETURN QUERY SELECT CASE WHEN v_earlier_digest = p_digest THEN 'retry' ELSE 'conflict' END,
                        v_earlier, v_citizen;
    RETURN;
  END IF;
  IF v_old IS NOT NULL THEN
    IF EXISTS (SELECT 1 FROM claims c
                WHERE c.citizen_id = v_citizen AND c.supersedes_claim_id = v_old) THEN
      RETURN QUERY SELECT 'superseded', v_old, v_citizen;
      RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM claim_revocations r
                WHERE r.citizen_id = v_citizen AND r.claim_id = v_old) THEN
      RETURN QUERY SELECT 'revoked', v_old, v_citizen;
      RETURN;
    END IF;
  END IF;
  INSERT INTO claims
  SELECT * FROM jsonb_populate_record(NULL::claims,
    p_claim || jsonb_build_object('citizen_id', v_citizen));
  FOR v_event IN SELECT * FROM jsonb_array_elements(p_events) LOOP
    PERFORM passport_append_event(v_citizen, v_event);
  END LOOP;
  RETURN QUERY SELECT 'created', v_claim, v_citizen;
END
$$
"""


def upgrade() -> None:
    op.execute(APPEND_EVENT)
    op.execute(ISSUE_CLAIM)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION public.passport_issue_claim(bytea, smallint, uuid, jsonb, bytea, jsonb)"
    )
    op.execute("DROP FUNCTION public.passport_append_event(uuid, jsonb)")
