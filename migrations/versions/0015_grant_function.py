"""A citizen's grant in one call: ``passport_record_grant``.

``grantAccess`` (and ``joinTeamCheck``, which makes the same kind of row) sent up to 14
statements: the citizen found or made, the lock, the check for a fresh snapshot, the
idempotency key, the count of active grants, the grant, its event, the share link, and the
reads of what to answer. ``passport_record_grant`` does, under the citizen lock, the steps that
need the rows: the citizen found or made and locked (``passport_citizen_locked``, the first
step of any write for a citizen named by identity; 0012's ``passport_issue_claim`` does the
same inline), the key (seen under the lock, so two requests under one key never both
write; whether the grant it holds is this request's retry the application tells, as when
the read before the call finds it), one active consent per team check, at most
``p_max_active`` active grants, the grant, its events through ``passport_append_event`` and
the share link's hash.

The rules that need no rows stay in the application and arrive as arguments: validation, the
term, the grantee and competences looked up before the call (a retry is answered before they
are checked), the event's canonical JSON and its notice, and the limit itself
(``service.consent.service.MAX_ACTIVE_GRANTS``).

As 0012's functions, both run as the caller (SECURITY INVOKER) and, on Citus, on the
coordinator: they touch identities by their hash and grants by citizen.

Revision ID: 0015_grant_function
Revises: 0014_write_functions
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015_grant_function"
down_revision: str | None = "0014_write_functions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CITIZEN_LOCKED = r"""
CREATE FUNCTION public.passport_citizen_locked(
  p_insz_hash bytea, p_key_version smallint, p_citizen uuid)
RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
-- The citizen a write is for, found or made, under the citizen lock; NULL when they were
-- erased meanwhile. p_insz_hash: the citizen by identity, or NULL when p_citizen is known;
-- with a hash, p_citizen is the fresh id for a citizen with no record yet. As
-- passport_issue_claim: the identity is claimed first and only its winner writes the citizen
-- row; a loser reads the winner's, committed by the time ON CONFLICT gives way.
DECLARE
  v_citizen uuid := p_citizen;
BEGIN
  IF p_insz_hash IS NOT NULL THEN
    LOOP
      SELECT i.citizen_id INTO v_citizen FROM citizen_identities i
       WHERE i.insz_hash = p_insz_hash;
      EXIT WHEN FOUND;
      WITH claimed AS (
        INSERT INTO citizen_identities (insz_hash, citizen_id, key_version)
        VALUES (p_insz_hash, p_citizen, p_key_version)
        ON CONFLICT (insz_hash) DO NOTHING
        RETURNING citizen_identities.citizen_id)
      INSERT INTO citizens (citizen_id) SELECT claimed.citizen_id FROM claimed;
      IF FOUND THEN
        v_citizen := p_citizen;
        EXIT;
      END IF;
    END LOOP;
  END IF;
  -- The citizen lock, keyed as service.citizens.service and passport_erase_citizen key it.
  PERFORM pg_advisory_xact_lock(hashtextextended(v_citizen::text, 0));
  IF NOT EXISTS (SELECT 1 FROM citizens c WHERE c.citizen_id = v_citizen) THEN
    RETURN NULL;
  END IF;
  RETURN v_citizen;
END
$$
"""

RECORD_GRANT = r"""
CREATE FUNCTION public.passport_record_grant(
  p_insz_hash bytea, p_key_version smallint, p_citizen uuid,
  p_grant jsonb, p_events jsonb, p_share_hash bytea, p_max_active integer)
RETURNS TABLE (outcome text, grant_id uuid, citizen_id uuid)
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
-- The citizen as passport_citizen_locked takes them. p_grant: the access_grants row but its
-- citizen (request_digest as '\x' hex). Outcomes: created; taken (the key holds a grant:
-- grant_id is it; whether this is its retry is the application's to tell); joined (an
-- active consent to the same team check: grant_id is it); full (p_max_active grants are
-- active); gone (the citizen was erased meanwhile).
DECLARE
  v_citizen uuid;
  v_key text := p_grant->>'request_key';
  v_team uuid := (p_grant->>'team_check_id')::uuid;
  v_at timestamptz := (p_grant->>'created_at')::timestamptz;
  v_earlier uuid;
  v_event jsonb;
BEGIN
  v_citizen := passport_citizen_locked(p_insz_hash, p_key_version, p_citizen);
  IF v_citizen IS NULL THEN
    RETURN QUERY SELECT 'gone', NULL::uuid, p_citizen;
    RETURN;
  END IF;
  SELECT g.grant_id INTO v_earlier
    FROM access_grants g WHERE g.citizen_id = v_citizen AND g.request_key = v_key;
  IF FOUND THEN
    RETURN QUERY SELECT 'taken', v_earlier, v_citizen;
    RETURN;
  END IF;
  IF v_team IS NOT NULL THEN
    SELECT g.grant_id INTO v_earlier FROM access_grants g
     WHERE g.citizen_id = v_citizen AND g.team_check_id = v_team
       AND g.revoked_at IS NULL AND g.expires_at > v_at;
    IF FOUND THEN
      RETURN QUERY SELECT 'joined', v_earlier, v_citizen;
      RETURN;
    END IF;
  END IF;
  -- Active: not revoked, not yet expired (service.consent.service._active says the same).
  IF (SELECT count(*) FROM access_grants g
       WHERE g.citizen_id = v_citizen AND g.revoked_at IS NULL AND g.expires_at > v_at)
     >= p_max_active THEN
    RETURN QUERY SELECT 'full', NULL::uuid, v_citizen;
    RETURN;
  END IF;
  INSERT INTO access_grants
  SELECT * FROM jsonb_populate_record(NULL::access_grants,
    p_grant || jsonb_build_object('citizen_id', v_citizen));
  FOR v_event IN SELECT * FROM jsonb_array_elements(p_events) LOOP
    PERFORM passport_append_event(v_citizen, v_event);
  END LOOP;
  IF p_share_hash IS NOT NULL THEN
    INSERT INTO share_links (secret_hash, citizen_id, grant_id)
    VALUES (p_share_hash, v_citizen, (p_grant->>'grant_id')::uuid);
  END IF;
  RETURN QUERY SELECT 'created', (p_grant->>'grant_id')::uuid, v_citizen;
END
$$
"""


def upgrade() -> None:
    op.execute(CITIZEN_LOCKED)
    op.execute(RECORD_GRANT)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION public.passport_record_grant"
        "(bytea, smallint, uuid, jsonb, jsonb, bytea, integer)"
    )
    op.execute("DROP FUNCTION public.passport_citizen_locked(bytea, smallint, uuid)")
