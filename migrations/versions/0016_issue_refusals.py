"""``passport_issue_claim_or_refuse``: ``passport_issue_claim_for`` refusing by raising, so a
refusal leaves nothing behind.

``issueClaim`` now sends its call outside any transaction when the call is the mutation's
whole unit of work (``service.db.raw.driver``, ``alone``): BEGIN and COMMIT around one
statement are two round trips that add nothing. That is sound only if the statement undoes
its own work when it refuses. 0014's function did not: a request whose ref was taken
(``conflict``) answered after 0012's function had made the record of a citizen new to the
service, and only the caller's rollback removed it.

The new function is 0014's with one step before it answers: any outcome but ``created`` and
``retry`` (``conflict``, ``gone``, ``superseded``, ``revoked``) raises SQLSTATE ``PP001``
(``ISSUE_REFUSED`` in service/claims/service.py) with the outcome as its message and the
claim's id as its detail. A raised error ends the statement, and everything it wrote with it,
in a transaction or outside one; the application answers from the error as it answered from
the row. The text is 0014's, read from that migration, so no rule of it is written twice.

0014's function stays as it was: the release before this one calls it, and keeps running
against this schema while a rollout replaces it (docs/deployment.md). A later release drops it.

Revision ID: 0016_issue_refusals
Revises: 0015_grant_function
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0016_issue_refusals"
down_revision: str | None = "0015_grant_function"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ANSWER = "  RETURN QUERY SELECT v_result.outcome, v_result.claim_id, v_result.citizen_id;\n"
_REFUSE = """  -- A refusal ends the statement: what it wrote (a citizen new to the service) goes too.
  IF v_result.outcome NOT IN ('created', 'retry') THEN
    RAISE EXCEPTION USING ERRCODE = 'PP001', MESSAGE = v_result.outcome,
      DETAIL = coalesce(v_result.claim_id::text, '');
  END IF;
"""
_ORIGINAL: str = _migration("0014_write_functions").ISSUE_CLAIM_FOR
assert _ORIGINAL.count(_ANSWER) == 1, "0014's function no longer ends as this one expects"
_NAME = "passport_issue_claim_for("
assert _ORIGINAL.count(_NAME) == 1, "0014's function is no longer named as this one expects"


def upgrade() -> None:
    refusing = _ORIGINAL.replace(_NAME, "passport_issue_claim_or_refuse(")
    op.execute(refusing.replace(_ANSWER, _REFUSE + _ANSWER))


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION public.passport_issue_claim_or_refuse"
        "(bytea, smallint, uuid, jsonb, text, text, jsonb)"
    )
