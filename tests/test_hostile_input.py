"""Inputs found by probing a running service: each once gave an unmasked or INTERNAL error."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.models import AccessRecord
from service.taxonomy import search
from tests import factories
from tests.conftest import grant_basis, make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import ERRORS, ISSUE, REVOKE, issue, table_counts
from tests.test_passport_api import read

NUL = "\x00"


async def test_revoke_reason_must_be_plain_text(api: Api, school: Partner) -> None:
    claim = (await issue(api, school, factories.claim_input(factories.insz())))["claim"]
    for reason in (f"bad{NUL}reason", "\x1b[31mred"):
        body = await api.gql(
            school.token, REVOKE, {"input": {"claimId": claim["id"], "reason": reason}}
        )
        result = body["data"]["revokeClaim"]
        assert result["__typename"] == "ValidationFailed"
        assert result["problems"][0]["field"] == "input.reason"


async def test_read_purpose_and_basis_must_be_plain_text(
    api: Api, school: Partner, reader: Partner
) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    for variables in ({"purpose": f"care{NUL}er"}, {"basis": f"GUID{NUL}ANCE"}):
        answer = await read(api, reader.token, citizen, **variables)
        assert answer["__typename"] == "ValidationFailed", answer


TAXONOMY = """
query($search: String, $uri: String!) {
  competences(search: $search, first: 1) { edges { node { uri } } }
  competence(uri: $uri) { uri }
  occupation(uri: $uri) { uri }
}"""


async def test_taxonomy_lookups_with_control_characters(api: Api, school: Partner) -> None:
    body = await api.gql(school.token, TAXONOMY, {"search": "py" + NUL, "uri": "http://x" + NUL})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "VALIDATION_FAILED"
    assert error["extensions"]["problems"][0]["field"] == "search"
    query = "query($uri: String!) { competence(uri: $uri) { uri } occupation(uri: $uri) { uri } }"
    body = await api.gql(school.token, query, {"uri": "http://x" + NUL})
    assert body == {"data": {"competence": None, "occupation": None}}
    body = await api.gql(
        school.token, TAXONOMY, {"search": "x" * (search.MAX_SEARCH_LENGTH + 1), "uri": "u"}
    )
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"


ISSUED = "query($after: String) { issuedClaims(first: 2, after: $after) { edges { cursor } } }"


@pytest.mark.parametrize(
    "stamp",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-23:59", "2024-01-01T00:00:00", "x"],
)
async def test_cursor_with_any_timestamp_is_a_typed_error(
    api: Api, school: Partner, stamp: str
) -> None:
    cursor = base64.urlsafe_b64encode(f"{stamp}|{'0' * 8}-0000-0000-0000-{'0' * 12}".encode())
    body = await api.gql(school.token, ISSUED, {"after": cursor.decode().rstrip("=")})
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"


GRANT = f"""
mutation($input: GrantLegalBasisInput!) {{
  grantLegalBasis(input: $input) {{ __typename {ERRORS} }}
}}"""


@pytest.mark.parametrize(
    "valid_until",
    ["2000-01-01T00:00:00+00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"],
)
async def test_legal_basis_must_end_in_a_sensible_future(
    api: Api, reader: Partner, valid_until: str
) -> None:
    data = {
        "organisationId": str(reader.organisation_id),
        "code": "CHECK" + factories.ref()[:8],
        "reference": "Decree on guidance, art. 5",
        "validUntil": valid_until,
    }
    body = await api.gql(api.admin(), GRANT, {"input": data})
    assert body["data"]["grantLegalBasis"]["__typename"] == "ValidationFailed"


async def test_several_operations_need_an_operation_name(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    before = await table_counts(engine)
    data = factories.claim_input(factories.insz())
    document = ISSUE.replace("mutation(", "mutation M(", 1) + " query Q { __typename }"
    body = await api.gql(school.token, document, {"input": data})
    assert body["data"] is None
    assert "operation name" in body["errors"][0]["message"]
    assert await table_counts(engine) == before
    response = await api.http.post(
        "/graphql",
        json={"query": document, "variables": {"input": data}, "operationName": "Q"},
        headers={"Authorization": f"Bearer {school.token}"},
    )
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_content_type_must_be_json_exactly(api: Api, school: Partner) -> None:
    for content_type in ("application/jsonx", "text/plain; application/json"):
        response = await api.http.post(
            "/graphql",
            content=b'{"query": "{ __typename }"}',
            headers={"Authorization": f"Bearer {school.token}", "content-type": content_type},
        )
        assert response.status_code == 415
    response = await api.http.post(
        "/graphql",
        content=b'{"query": "{ __typename }"}',
        headers={
            "Authorization": f"Bearer {school.token}",
            "content-type": "Application/JSON; charset=utf-8",
        },
    )
    assert response.status_code == 200


PAIR = f"""
mutation($a: IssueClaimInput!, $b: IssueClaimInput!) {{
  a: issueClaim(input: $a) {{ __typename {ERRORS} }}
  b: issueClaim(input: $b) {{ __typename {ERRORS} }}
}}"""


async def test_requests_that_deadlock_are_retried(api: Api, school: Partner) -> None:
    """Two batches naming the same citizens in opposite orders lock them in opposite orders."""
    for _ in range(4):
        x, y = factories.insz(), factories.insz()

        async def send(first: str, second: str) -> dict[str, Any]:
            variables = {"a": factories.claim_input(first), "b": factories.claim_input(second)}
            return await api.gql(school.token, PAIR, variables)

        answers = await asyncio.gather(send(x, y), send(y, x))
        for body in answers:
            assert "errors" not in body, body
            assert body["data"]["a"]["__typename"] == "ClaimIssued"
            assert body["data"]["b"]["__typename"] == "ClaimIssued"


async def test_unexpected_errors_are_masked_and_nothing_is_returned(
    api: Api, school: Partner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("internal detail 85073003328")

    monkeypatch.setattr(search, "occupation_by_uri", broken)
    query = '{ competences(first: 1) { edges { cursor } } occupation(uri: "http://x") { uri } }'
    body = await api.gql(school.token, query)
    assert body["data"] is None  # the request was rolled back: nothing it resolved is shown
    assert body["errors"] == [
        {
            "message": "Unexpected error.",
            "locations": [{"line": 1, "column": 46}],
            "path": ["occupation"],
            "extensions": {"code": "INTERNAL"},
        }
    ]


async def test_reads_by_a_client_with_both_scopes_are_logged_as_reads(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    both = await make_partner(
        api, kind="PUBLIC_EMPLOYMENT_SERVICE", scopes=("CLAIMS_WRITE", "PASSPORTS_READ")
    )
    await grant_basis(api, both)
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    assert (await read(api, both.token, citizen))["__typename"] == "Passport"
    async with engine.connect() as conn:
        kind = await conn.scalar(
            select(AccessRecord.principal_kind)
            .where(AccessRecord.subject == both.client_id)
            .order_by(AccessRecord.accessed_at.desc())
            .limit(1)
        )
    assert kind == "reader"


async def test_a_citizen_names_only_themselves(api: Api, school: Partner) -> None:
    citizen = factories.insz()
    claim = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    token = api.citizen(citizen)
    own = await read(api, token, citizen)
    assert own["__typename"] == "Passport"
    by_id = "query($id: ID!) { passport(citizen: {id: $id}) { ... on Passport { citizenId } } }"
    body = await api.gql(token, by_id, {"id": own["citizenId"]})
    assert body["data"]["passport"] == {"citizenId": own["citizenId"]}
    other = factories.insz()
    await issue(api, school, factories.claim_input(other))
    assert (await read(api, token, other))["__typename"] == "NotFound"
    assert claim["status"] == "ACTIVE"
