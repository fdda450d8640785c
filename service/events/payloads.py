"""What an event records of the row it announces: references and facts, never free text.

One function per kind of row, used both when the event is written and when the chain is
verified, which recomputes the payload from the row and compares: an edited row no longer
matches its event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def _id(value: uuid.UUID | None) -> str | None:
    return str(value) if value else None


def claim_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """For claim.issued and claim.self_declared."""
    return {
        "claimId": str(row["claim_id"]),
        "organisationId": _id(row["organisation_id"]),
        "competenceId": row["competence_id"],
        "assessmentMethod": row["assessment_method"],
        "learningContext": row["learning_context"],
        "proficiency": row["proficiency_level"],
        "acquiredOn": row["acquired_on"].isoformat(),
        "lastUsedOn": row["last_used_on"].isoformat() if row["last_used_on"] else None,
        "validUntil": row["valid_until"].isoformat() if row["valid_until"] else None,
        "supersedes": _id(row["supersedes_claim_id"]),
    }


def grant_payload(
    *,
    grant_id: uuid.UUID,
    grantee_kind: str,
    organisation_id: uuid.UUID | None,
    competence_ids: Sequence[int] | None,
    expires_at: datetime,
    include_wants: bool = False,
    include_work_history: bool = False,
    team_check_id: uuid.UUID | None = None,
    disclosure: str | None = None,
) -> dict[str, Any]:
    """For grant.created; the instant in UTC, however the citizen's app wrote it. The options
    appear only when set, so the events of earlier grants still match their rows; a consent to
    a team check also records the check and how the citizen chose to be shown in it."""
    payload: dict[str, Any] = {
        "grantId": str(grant_id),
        "granteeKind": grantee_kind,
        "organisationId": _id(organisation_id),
        "competenceIds": list(competence_ids) if competence_ids is not None else None,
        "expiresAt": expires_at.astimezone(UTC).isoformat(),
    }
    if include_wants:
        payload["includeWants"] = True
    if include_work_history:
        payload["includeWorkHistory"] = True
    if team_check_id is not None:
        payload.update(teamCheckId=str(team_check_id), disclosure=disclosure)
    return payload


def want_payload(competence_id: int, stance: str | None) -> dict[str, Any]:
    """For career.want_set: the stance now (None: cleared)."""
    return {"competenceId": competence_id, "want": stance}


def goal_payload(occupation_id: int, active: bool, horizon_year: int | None) -> dict[str, Any]:
    """For career.goal_set: the goal now (active false: dropped)."""
    return {"occupationId": occupation_id, "active": active, "horizonYear": horizon_year}


def work_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """For career.work_recorded: never the citizen's own words (the employer's name)."""
    return {
        "experienceId": str(row["id"]),
        "occupationId": row["occupation_id"],
        "organisationId": _id(row["organisation_id"]),
        "startedOn": row["started_on"].isoformat(),
        "endedOn": row["ended_on"].isoformat() if row["ended_on"] else None,
    }


def endorsement_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """For endorsement.created: who endorsed which claim, when; the statement is free text
    and stays out of the chain, as claims' contexts do."""
    return {
        "endorsementId": str(row["endorsement_id"]),
        "claimId": str(row["claim_id"]),
        "organisationId": str(row["organisation_id"]),
    }
