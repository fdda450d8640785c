"""How superseded and expired claims read, the issuer's `claim(id)`, and the cost of `me`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests import factories
from tests.conftest import StatementCounter
from tests.graphql_client import Api, Partner
from tests.test_claims_api import CLAIM_FIELDS, SUPERSEDE, issue, table_counts
from tests.test_passport_api import ME, read


def newer(citizen: str, **overrides: Any) -> dict[str, Any]:
    """Input of a superseding claim: no citizen or competence, those come from the old claim."""
    data = factories.claim_input(citizen, **overrides)
    return {k: v for k, v in data.items() if k not in ("insz", "competenceUri")}


async def test_superseded_and_expired_claims_in_the_passport(
    api: Api, school: Partner, employer: Partner, reader: Partner
) -> None:
    citizen = factories.insz()
    await issue(
        api,
        school,
        factories.claim_input(citizen, factories.PYTHON, validUntil="2021-01-01", lastUsedOn=None),
    )
    old = (await issue(api, employer, factories.claim_input(citizen, factories.SQL)))["claim"]
    body = await api.gql(
        employer.token,
        SUPERSEDE,
        {
            "input": {
                **newer(citizen, proficiency={"scale": "EQF", "level": "3"}),
                "claimId": old["id"],
            }
        },
    )
    assert body["data"]["supersedeClaim"]["__typename"] == "ClaimSuperseded"

    passport = await read(api, reader.token, citizen)
    by_uri = {pc["competence"]["uri"]: pc for pc in passport["competences"]}
    sql = by_uri[factories.SQL]
    assert sql["status"] == "ACTIVE"
    assert [c["status"] for c in sql["claims"]] == ["ACTIVE", "SUPERSEDED"]  # current first
    # Only current claims count: the superseded EQF 5 no longer sets the level.
    assert sql["highestLevel"] == {"scale": "EQF", "level": "3", "rank": 375}
    assert sql["distinctOrganisations"] == 1
    python = by_uri[factories.PYTHON]
    assert python["status"] == "EXPIRED"
    assert python["distinctOrganisations"] == 0
    assert [c["status"] for c in python["claims"]] == ["EXPIRED"]
    assert [pc["competence"]["uri"] for pc in passport["competences"]] == [
        factories.SQL,
        factories.PYTHON,
    ]  # active first
    expired_only = await read(api, reader.token, citizen, filter={"statuses": ["EXPIRED"]})
    assert [pc["competence"]["uri"] for pc in expired_only["competences"]] == [factories.PYTHON]


CLAIM = f"""
query($id: ID!) {{
  claim(id: $id) {{ __typename ... on Claim {{ {CLAIM_FIELDS} }} ... on Error {{ code message }} }}
}}"""


async def test_claim_by_id_is_for_its_issuer_only(
    api: Api, school: Partner, employer: Partner, reader: Partner
) -> None:
    citizen = factories.insz()
    data = factories.claim_input(citizen)
    claim = (await issue(api, school, data))["claim"]
    own = (await api.gql(school.token, CLAIM, {"id": claim["id"]}))["data"]["claim"]
    assert own["__typename"] == "Claim"
    assert own["id"] == claim["id"]
    assert own["externalRef"] == data["externalRef"]
    not_found = {"__typename": "NotFound", "code": "NOT_FOUND"}
    for token, claim_id in (
        (employer.token, claim["id"]),  # another organisation's claim
        (reader.token, claim["id"]),  # readers read passports, not claims
        (api.citizen(citizen), claim["id"]),  # the citizen reads their passport instead
        (school.token, "00000000-0000-0000-0000-000000000000"),
        (school.token, "not-a-uuid"),
    ):
        answer = (await api.gql(token, CLAIM, {"id": claim_id}))["data"]["claim"]
        assert {k: answer[k] for k in not_found} == not_found, answer


async def test_bad_supersede_input_is_typed_and_writes_nothing(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen = factories.insz()
    old = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"acquiredOn": "1850-01-01", "lastUsedOn": None}, "input.acquiredOn"),
        ({"validUntil": "2019-01-01"}, "input.validUntil"),
        ({"context": "x\x00"}, "input.context"),
        ({"externalRef": "has space"}, "input.externalRef"),
    ]
    before = await table_counts(engine)
    for override, field in cases:
        body = await api.gql(
            school.token, SUPERSEDE, {"input": {**newer(citizen, **override), "claimId": old["id"]}}
        )
        result = body["data"]["supersedeClaim"]
        assert result["__typename"] == "ValidationFailed", (override, result)
        assert [p["field"] for p in result["problems"]] == [field]
    assert await table_counts(engine) == before


async def test_bad_passport_filters(api: Api, school: Partner, reader: Partner) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    for flt in ({"usedSince": "31/12/2024"}, {"statuses": ["GONE"]}, {"unknown": True}):
        body = await api.gql(
            reader.token,
            "query($c: CitizenRef!, $f: PassportFilter) { passport(citizen: $c, purpose: "
            '"guidance", legalBasis: "GUIDANCE", filter: $f) { __typename } }',
            {"c": {"insz": citizen}, "f": flt},
        )
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION"


async def test_own_passport_costs_constant_statements(
    api: Api, school: Partner, count_statements: StatementCounter
) -> None:
    small, large = factories.insz(), factories.insz()
    await issue(api, school, factories.claim_input(small))
    for uri in [factories.PYTHON, factories.SQL, factories.TEAMWORK, factories.ENGLISH] * 6:
        await issue(api, school, factories.claim_input(large, uri))
    counts = []
    for citizen in (small, large):
        count_statements.statements.clear()
        body = await api.gql(api.citizen(citizen), ME)
        assert "errors" not in body, body
        counts.append(count_statements.count)
    assert counts[0] == counts[1] <= 8, count_statements.statements
