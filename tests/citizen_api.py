"""GraphQL documents and small helpers for the citizen's side: grants, reads, log, erasure."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service import clock
from tests.graphql_client import Api

ERRORS = """
  ... on Error { code message }
  ... on ValidationFailed { problems { field message code } }
  ... on Conflict { existingId }
"""
READ_ERRORS = """
  ... on Error { code message }
  ... on ValidationFailed { problems { field message code } }
"""
GRANT_FIELDS = """
  id citizenId granteeKind purpose createdAt expiresAt revokedAt status
  includeWants includeWorkHistory
  organisation { id name kind enterpriseNumber }
  competences { uri }
"""
GRANT = f"""
mutation($input: GrantAccessInput!) {{
  grantAccess(input: $input) {{
    __typename
    ... on AccessGranted {{ created grant {{ {GRANT_FIELDS} }} shareLink {{ token url }} }}
    {ERRORS}
  }}
}}"""
REVOKE_GRANT = f"""
mutation($id: ID!) {{
  revokeAccess(id: $id) {{
    __typename ... on AccessRevoked {{ grant {{ {GRANT_FIELDS} }} }} {ERRORS}
  }}
}}"""
MY_GRANTS = f"query {{ me {{ grants {{ {GRANT_FIELDS} }} }} }}"
PASSPORT_BODY = """
  citizenId basis
  competences { competence { uri } status distinctOrganisations claims { id issuer { name } } }
  selfDeclared { id competence { uri } context acquiredOn declaredAt }
"""
CONSENT_READ = f"""
query($citizen: CitizenRef!, $purpose: String) {{
  passport(citizen: $citizen, purpose: $purpose) {{
    __typename ... on Passport {{ {PASSPORT_BODY} }} {READ_ERRORS}
  }}
}}"""
LEGAL_READ = f"""
query($citizen: CitizenRef!, $purpose: String, $basis: String) {{
  passport(citizen: $citizen, purpose: $purpose, legalBasis: $basis) {{
    __typename ... on Passport {{ {PASSPORT_BODY} }} {READ_ERRORS}
  }}
}}"""
SHARED_READ = f"""
query {{ sharedPassport {{ __typename ... on Passport {{ {PASSPORT_BODY} }} {READ_ERRORS} }} }}"""
MY_PASSPORT = f"query {{ me {{ passport {{ {PASSPORT_BODY} }} }} }}"
ACCESS_LOG = """
query($first: Int, $after: String) {
  me {
    accessLog(first: $first, after: $after) {
      edges {
        cursor
        node {
          id accessedAt principalKind clientId basis purpose operation
          organisation { name kind }
          legalBasis { code reference }
          grants { id purpose }
          competences { uri }
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""
SELF_DECLARE = f"""
mutation($input: SelfDeclareInput!) {{
  selfDeclare(input: $input) {{
    __typename
    ... on SelfDeclared {{ created competence {{ id competence {{ uri }} context acquiredOn }} }}
    {ERRORS}
  }}
}}"""
WITHDRAW = f"""
mutation($id: ID!) {{
  withdrawSelfDeclaration(id: $id) {{
    __typename ... on SelfDeclarationWithdrawn {{ id }} {ERRORS}
  }}
}}"""
ERASE = f"""
mutation {{
  requestErasure {{
    __typename ... on ErasureCompleted {{ erasureId erasedAt counts {{ kind count }} }} {ERRORS}
  }}
}}"""
EXPORT = "query { me { exportData } }"


def travel(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    """Time passes for the service (its clock, not the rows): grants expire as they would."""
    real = clock.now
    monkeypatch.setattr(clock, "now", lambda: real() + delta)


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def grant_input(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "granteeKind": "LINK",
        "purpose": "job application",
        "expiresAt": in_days(30),
        "idempotencyKey": "grant-" + secrets.token_hex(6),
    }
    data.update(overrides)
    return data


async def grant(api: Api, citizen_token: str, **overrides: Any) -> dict[str, Any]:
    body = await api.gql(citizen_token, GRANT, {"input": grant_input(**overrides)})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["grantAccess"]
    return result


async def consent_read(
    api: Api, token: str, citizen: str, purpose: str | None = None
) -> dict[str, Any]:
    body = await api.gql(token, CONSENT_READ, {"citizen": {"insz": citizen}, "purpose": purpose})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["passport"]
    return result


async def shared_read(api: Api, token: str) -> dict[str, Any]:
    response = await api.post(token, SHARED_READ)
    return {"status": response.status_code, **response.json()}


async def access_log(api: Api, citizen_token: str, first: int = 50) -> list[dict[str, Any]]:
    body = await api.gql(citizen_token, ACCESS_LOG, {"first": first})
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["me"]["accessLog"]["edges"]]


def uris(passport: dict[str, Any]) -> set[str]:
    return {c["competence"]["uri"] for c in passport["competences"]}
