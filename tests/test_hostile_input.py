"""Inputs found by probing a running service: each once gave an unmasked or INTERNAL error."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.claims import service as claims_service
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
    for variables, field in (
        ({"purpose": f"care{NUL}er"}, "purpose"),
        ({"basis": f"GUID{NUL}ANCE"}, "legalBasis"),
    ):
        answer = await read(api, reader.token, citizen, **variables)
        assert answer["__typename"] == "ValidationFailed", answer
        assert answer["message"].startswith(f"{field}: "), answer  # the argument's own name


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
    assert body["data"] == {"competence": None, "occupation": None}
    assert "errors" not in body
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


TRIPLE = f"""
mutation($a: IssueClaimInput!, $b: IssueClaimInput!, $c: IssueClaimInput!) {{
  a: issueClaim(input: $a) {{ __typename {ERRORS} }}
  b: issueClaim(input: $b) {{ __typename {ERRORS} }}
  c: issueClaim(input: $c) {{ __typename {ERRORS} }}
}}"""


async def test_batches_naming_citizens_in_any_order_do_not_deadlock(
    api: Api, school: Partner
) -> None:
    """Each mutation commits (and so unlocks its citizen) before the next one starts."""
    citizens = [factories.insz() for _ in range(3)]

    async def send(order: list[str]) -> dict[str, Any]:
        variables = {name: factories.claim_input(c) for name, c in zip("abc", order, strict=True)}
        return await api.gql(school.token, TRIPLE, variables)

    orders = [random.sample(citizens, 3) for _ in range(12)]
    started = time.monotonic()
    for body in await asyncio.gather(*(send(order) for order in orders)):
        assert "errors" not in body, body
        assert {r["__typename"] for r in body["data"].values()} == {"ClaimIssued"}
    assert time.monotonic() - started < 10  # a deadlock alone costs a second to detect


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
    await issue(api, school, factories.claim_input(citizen))
    token = api.citizen(citizen)
    own = await read(api, token, citizen)
    assert own["__typename"] == "Passport"
    by_id = "query($id: ID!) { passport(citizen: {id: $id}) { ... on Passport { citizenId } } }"
    body = await api.gql(token, by_id, {"id": own["citizenId"]})
    assert body["data"]["passport"] == {"citizenId": own["citizenId"]}
    other = factories.insz()
    await issue(api, school, factories.claim_input(other))
    assert (await read(api, token, other))["__typename"] == "NotFound"


@pytest.mark.parametrize(
    "literal", ['"2020-02-30"', '"+002020-01-01"', '" 2020-01-01"', '"20200101"', "true", "[1]"]
)
async def test_bad_date_literals_in_the_query_text(api: Api, literal: str) -> None:
    query = f"{{ me {{ passport(filter: {{usedSince: {literal}}}) {{ citizenId }} }} }}"
    body = await api.gql(api.citizen(factories.insz()), query)
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION", error
    assert "2020" not in error["message"]


async def test_text_keeps_what_people_write(api: Api, school: Partner) -> None:
    """Windows line ends become newlines; accents, other scripts and emoji joiners stay."""
    context = "Opleiding\r\nlasser \u2013 niveau 2\r\nعربي, 日本語, 👩\u200d🔧"
    result = await issue(api, school, factories.claim_input(factories.insz(), context=context))
    assert result["claim"]["context"] == context.replace("\r\n", "\n")


async def test_reasons_must_say_something(api: Api, school: Partner) -> None:
    claim = (await issue(api, school, factories.claim_input(factories.insz())))["claim"]
    for reason in ("\u0301\u0301\u0301", "...", "\u200b\u200b\u200b"):
        body = await api.gql(
            school.token, REVOKE, {"input": {"claimId": claim["id"], "reason": reason}}
        )
        assert body["data"]["revokeClaim"]["__typename"] == "ValidationFailed", reason


async def test_page_sizes(api: Api, school: Partner) -> None:
    await issue(api, school, factories.claim_input(factories.insz()))
    page = "edges { cursor } pageInfo { hasNextPage }"
    query = f"query($n: Int!) {{ competences(first: $n) {{ {page} }} "
    query += f"issuedClaims(first: $n) {{ {page} }} }}"
    empty = (await api.gql(school.token, query, {"n": 0}))["data"]
    for connection in empty.values():
        assert connection == {"edges": [], "pageInfo": {"hasNextPage": True}}
    huge = (await api.gql(school.token, query, {"n": 2**31 - 1}))["data"]
    assert len(huge["competences"]["edges"]) == 100
    for n in (-1, -(2**31)):
        body = await api.gql(school.token, query, {"n": n})
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["problems"][0]["field"] == "first"


async def test_text_people_type_is_kept_and_hidden_text_is_not(api: Api, school: Partner) -> None:
    kept = [
        "Jan\u00adssens",  # soft hyphen from a PDF
        "\u200f\u0645\u0631\u062d\u0628\u0627\u200f",  # direction marks an RTL keyboard adds
        "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England flag
        "new emoji \U0001fae8",  # unassigned in older Unicode databases
    ]
    for context in kept:
        result = await issue(api, school, factories.claim_input(factories.insz(), context=context))
        assert result["__typename"] == "ClaimIssued", context
        assert result["claim"]["context"] == context
    refused: list[tuple[dict[str, Any], str]] = [
        ({"issuerRole": "\u3164\u3164"}, "input.issuerRole"),  # Hangul fillers render as nothing
        ({"context": "hidden \U000e0041\U000e0042"}, "input.context"),  # tags outside a flag
        ({"context": "non\ufffecharacter"}, "input.context"),
        (
            {"evidence": [{"kind": "OTHER", "title": "t", "url": "https://exa\tmple.org/a"}]},
            "input.evidence.0.url",
        ),
    ]
    for override, field in refused:
        result = await issue(api, school, factories.claim_input(factories.insz(), **override))
        assert [p["field"] for p in result["problems"]] == [field], override


async def test_database_lost_after_a_committed_mutation_keeps_its_answer(
    api: Api, school: Partner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first mutation is committed; a 503 would tell the client nothing happened. The answer
    names the failed mutation (results are non-null, so GraphQL nulls the whole data)."""
    claim = (await issue(api, school, factories.claim_input(factories.insz())))["claim"]

    async def connection_lost(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionResetError())

    monkeypatch.setattr(claims_service, "revoke_claim", connection_lost)
    query = f"""
    mutation($a: IssueClaimInput!, $b: RevokeClaimInput!) {{
      a: issueClaim(input: $a) {{ __typename }}
      b: revokeClaim(input: $b) {{ __typename {ERRORS} }}
    }}"""
    data = factories.claim_input(factories.insz())
    response = await api.post(
        school.token, query, {"a": data, "b": {"claimId": claim["id"], "reason": "mistake"}}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["errors"][0]["path"] == ["b"]
    assert (await issue(api, school, data))["created"] is False  # it really was committed
