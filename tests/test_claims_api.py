"""Issuing, retrying, revoking and superseding claims through GraphQL on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.models import Citizen, CitizenEvent, Claim, ClaimRef, ClaimRevocation
from tests import factories
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner

CLAIM_FIELDS = """
  id status externalRef recordedAt acquiredOn lastUsedOn validUntil issuerRole context
  assessmentMethod learningContext supersedes supersededBy
  competence { uri skillType label(lang: NL) { text language } }
  issuer { id name kind clientId }
  proficiency { scale level rank }
  evidence { kind title url digest issuedOn }
  revocation { reason revokedAt }
"""
ERRORS = """
  ... on Error { code message }
  ... on ValidationFailed { problems { field message code } }
  ... on Conflict { existingId }
"""
ISSUE = f"""
mutation($input: IssueClaimInput!) {{
  issueClaim(input: $input) {{
    __typename
    ... on ClaimIssued {{ created claim {{ {CLAIM_FIELDS} }} }}
    {ERRORS}
  }}
}}"""
REVOKE = f"""
mutation($input: RevokeClaimInput!) {{
  revokeClaim(input: $input) {{
    __typename
    ... on ClaimRevoked {{ claim {{ {CLAIM_FIELDS} }} }}
    {ERRORS}
  }}
}}"""
SUPERSEDE = f"""
mutation($input: SupersedeClaimInput!) {{
  supersedeClaim(input: $input) {{
    __typename
    ... on ClaimSuperseded {{ created claim {{ {CLAIM_FIELDS} }} }}
    {ERRORS}
  }}
}}"""


async def issue(api: Api, partner: Partner, data: dict[str, Any]) -> dict[str, Any]:
    body = await api.gql(partner.token, ISSUE, {"input": data})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["issueClaim"]
    return result


async def table_counts(engine: AsyncEngine) -> dict[str, int | None]:
    async with engine.connect() as conn:
        return {
            model.__tablename__: await conn.scalar(select(func.count()).select_from(model))
            for model in (Citizen, Claim, ClaimRef, ClaimRevocation, CitizenEvent)
        }


async def test_issue_claim_records_full_provenance(api: Api, school: Partner) -> None:
    citizen = factories.insz()
    data = factories.claim_input(
        citizen,
        validUntil="2030-01-01",
        evidence=[
            {
                "kind": "DIPLOMA",
                "title": "Bachelor diploma",
                "url": "https://example.org/d/1",
                "issuedOn": "2020-07-01",
            },
            {"kind": "ASSESSMENT_REPORT", "title": "Report", "digest": "sha256:" + "ab" * 32},
        ],
    )
    result = await issue(api, school, data)
    assert result["__typename"] == "ClaimIssued"
    assert result["created"] is True
    claim = result["claim"]
    assert claim["status"] == "ACTIVE"
    assert claim["issuer"] == {
        "id": str(school.organisation_id),
        "name": school.name,
        "kind": "EDUCATION_PROVIDER",
        "clientId": school.client_id,
    }
    assert claim["competence"]["uri"] == factories.PYTHON
    assert claim["competence"]["skillType"] == "KNOWLEDGE"
    assert claim["competence"]["label"] == {
        "text": "Python (computerprogrammering)",
        "language": "nl",
    }
    assert claim["proficiency"] == {"scale": "EQF", "level": "5", "rank": 625}
    assert claim["assessmentMethod"] == "EXAM"
    assert claim["learningContext"] == "FORMAL"
    assert claim["acquiredOn"] == "2020-06-30"
    assert claim["lastUsedOn"] == "2024-01-15"
    assert claim["validUntil"] == "2030-01-01"
    assert claim["issuerRole"] == "assessor"
    assert claim["externalRef"] == data["externalRef"]
    assert claim["evidence"][0]["issuedOn"] == "2020-07-01"
    assert claim["evidence"][1]["digest"] == "sha256:" + "ab" * 32
    assert claim["revocation"] is None


async def test_recorded_at_is_server_time_and_not_an_input(api: Api, school: Partner) -> None:
    data = factories.claim_input(factories.insz(), recordedAt="2001-01-01T00:00:00Z")
    body = await api.gql(school.token, ISSUE, {"input": data})
    assert "errors" in body and "recordedAt" in body["errors"][0]["message"]
    data.pop("recordedAt")
    claim = (await issue(api, school, data))["claim"]
    assert claim["recordedAt"][:10] in {
        date.today().isoformat(),
        (date.today() - timedelta(days=1)).isoformat(),
    }


async def test_retry_returns_same_claim_and_writes_nothing(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    data = factories.claim_input(factories.insz())
    first = await issue(api, school, data)
    before = await table_counts(engine)
    second = await issue(api, school, data)
    assert second["created"] is False
    assert second["claim"]["id"] == first["claim"]["id"]
    assert await table_counts(engine) == before


async def test_retry_with_different_payload_is_a_conflict(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    data = factories.claim_input(factories.insz())
    first = await issue(api, school, data)
    before = await table_counts(engine)
    changed = await issue(api, school, {**data, "lastUsedOn": "2024-02-01"})
    assert changed["__typename"] == "Conflict"
    assert changed["code"] == "CONFLICT"
    assert changed["existingId"] == first["claim"]["id"]
    other_citizen = await issue(api, school, {**data, "insz": factories.insz()})
    assert other_citizen["__typename"] == "Conflict"
    assert await table_counts(engine) == before


async def test_same_external_ref_is_independent_per_organisation(
    api: Api, school: Partner, employer: Partner
) -> None:
    data = factories.claim_input(factories.insz())
    a = await issue(api, school, data)
    b = await issue(api, employer, data)
    assert a["created"] and b["created"]
    assert a["claim"]["id"] != b["claim"]["id"]
    assert b["claim"]["issuer"]["id"] == str(employer.organisation_id)


async def test_concurrent_retries_create_exactly_one_claim(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    data = factories.claim_input(factories.insz())
    results = await asyncio.gather(*(issue(api, school, data) for _ in range(8)))
    ids = {r["claim"]["id"] for r in results}
    assert len(ids) == 1
    assert sum(r["created"] for r in results) == 1
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(Claim).where(Claim.claim_id == uuid.UUID(ids.pop()))
        )
    assert count == 1


async def test_issuer_comes_from_token_never_from_input(
    api: Api, school: Partner, employer: Partner
) -> None:
    data = factories.claim_input(factories.insz(), organisationId=str(employer.organisation_id))
    body = await api.gql(school.token, ISSUE, {"input": data})
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION"


BAD_INPUTS = [
    ("bad INSZ", {"insz": "85073003329"}, "input.insz"),
    ("short INSZ", {"insz": "1234"}, "input.insz"),
    (
        "unknown competence",
        {"competenceUri": factories.ESCO + "no-such-skill"},
        "input.competenceUri",
    ),
    (
        "skill group is not a competence",
        {"competenceUri": factories.SKILL_GROUP},
        "input.competenceUri",
    ),
    ("not a URI", {"competenceUri": "python"}, "input.competenceUri"),
    (
        "future acquiredOn",
        {"acquiredOn": (date.today() + timedelta(days=2)).isoformat(), "lastUsedOn": None},
        "input.acquiredOn",
    ),
    (
        "future lastUsedOn",
        {"lastUsedOn": (date.today() + timedelta(days=2)).isoformat()},
        "input.lastUsedOn",
    ),
    ("ancient acquiredOn", {"acquiredOn": "1850-01-01", "lastUsedOn": None}, "input.acquiredOn"),
    ("validUntil before acquiredOn", {"validUntil": "2019-01-01"}, "input.validUntil"),
    ("lastUsedOn before acquiredOn", {"lastUsedOn": "2019-01-01"}, "input.lastUsedOn"),
    ("oversize context", {"context": "x" * 2001}, "input.context"),
    ("oversize externalRef", {"externalRef": "r" * 201}, "input.externalRef"),
    ("oversize issuerRole", {"issuerRole": "r" * 201}, "input.issuerRole"),
    ("blank externalRef", {"externalRef": "   "}, "input.externalRef"),
    ("control characters", {"issuerRole": "assessor\x00"}, "input.issuerRole"),
    ("NUL in context", {"context": "a\x00b"}, "input.context"),
    ("terminal escape", {"issuerRole": "\x1b[31mboss"}, "input.issuerRole"),
    ("bidi override", {"context": "abc\u202edcba"}, "input.context"),
    ("zero-width role", {"issuerRole": "\u200b"}, "input.issuerRole"),
    ("hidden tag characters", {"context": "ok\U000e0041\U000e0042"}, "input.context"),
    ("private use", {"context": "ok\ue000"}, "input.context"),
    ("line separator", {"context": "a\u2028b"}, "input.context"),
    ("two-line role", {"issuerRole": "assessor\nboss"}, "input.issuerRole"),
    (
        "punctuation-only title",
        {"evidence": [{"kind": "OTHER", "title": "...", "digest": "sha256:" + "0" * 64}]},
        "input.evidence.0.title",
    ),
    (
        "NUL in competence URI",
        {"competenceUri": factories.ESCO + "x\x00"},
        "input.competenceUri",
    ),
    (
        "NUL in evidence URL",
        {"evidence": [{"kind": "OTHER", "title": "t", "url": "https://e.org/\x00"}]},
        "input.evidence.0.url",
    ),
    (
        "credentials in evidence URL",
        {"evidence": [{"kind": "OTHER", "title": "t", "url": "https://u:p@e.org/"}]},
        "input.evidence.0.url",
    ),
    (
        "bad evidence URL",
        {"evidence": [{"kind": "CERTIFICATE", "title": "t", "url": "not a url"}]},
        "input.evidence.0.url",
    ),
    (
        "javascript URL",
        {"evidence": [{"kind": "CERTIFICATE", "title": "t", "url": "javascript:alert(1)"}]},
        "input.evidence.0.url",
    ),
    (
        "evidence without locator",
        {"evidence": [{"kind": "CERTIFICATE", "title": "t"}]},
        "input.evidence.0",
    ),
    (
        "bad digest",
        {"evidence": [{"kind": "CERTIFICATE", "title": "t", "digest": "md5:00"}]},
        "input.evidence.0.digest",
    ),
    (
        "too much evidence",
        {"evidence": [{"kind": "OTHER", "title": "t", "url": "https://e.org"}] * 21},
        "input.evidence",
    ),
    ("level off the scale", {"proficiency": {"scale": "EQF", "level": "9"}}, "input.proficiency"),
    (
        "self assessment by a partner",
        {"assessmentMethod": "SELF_ASSESSMENT"},
        "input.assessmentMethod",
    ),
]


@pytest.mark.parametrize(("case", "override", "field"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
async def test_bad_input_is_a_typed_error_and_writes_nothing(
    api: Api, school: Partner, engine: AsyncEngine, case: str, override: dict[str, Any], field: str
) -> None:
    before = await table_counts(engine)
    result = await issue(api, school, factories.claim_input(factories.insz(), **override))
    assert result["__typename"] == "ValidationFailed", case
    assert result["code"] == "VALIDATION_FAILED"
    assert any(p["field"] == field for p in result["problems"]), result["problems"]
    assert "85073003329" not in str(result)
    assert await table_counts(engine) == before


DATE = "Expected a calendar date as YYYY-MM-DD"
# Each wrong variable, and what the answer says of it: the path and what the schema asks there,
# in the API's words (never Python's "not to be None", never the value sent).
WRONG_TYPES = [
    ({"acquiredOn": "30/06/2020"}, f"Variable $input at input.acquiredOn: {DATE}."),
    ({"acquiredOn": 20200630}, f"Variable $input at input.acquiredOn: {DATE}."),
    ({"acquiredOn": "2020-W01-1"}, f"Variable $input at input.acquiredOn: {DATE}."),
    ({"acquiredOn": "20200101"}, f"Variable $input at input.acquiredOn: {DATE}."),
    ({"acquiredOn": "2020-02-30"}, f"Variable $input at input.acquiredOn: {DATE}."),
    (
        {"assessmentMethod": "GUESSWORK"},
        "Variable $input at input.assessmentMethod: not a value of AssessmentMethod.",
    ),
    (
        {"evidence": "none"},
        "Variable $input at input.evidence.0: must be an object (EvidenceInput).",
    ),
    (
        {"proficiency": {"scale": "EQF"}},
        "Variable $input at input.proficiency.level: required (String!).",
    ),
    ({"insz": 85073003328}, "Variable $input at input.insz: must be a string."),
    ({"insz": None}, "Variable $input at input.insz: must not be null (String!)."),
    ({"organisation": "x"}, "Variable $input: IssueClaimInput has no field organisation."),
    ({"85073003328": "x"}, "Variable $input: IssueClaimInput has no field of that name."),
]


@pytest.mark.parametrize(("override", "message"), WRONG_TYPES)
async def test_wrong_types_are_rejected_before_execution(
    api: Api, school: Partner, engine: AsyncEngine, override: dict[str, Any], message: str
) -> None:
    before = await table_counts(engine)
    response = await api.post(
        school.token, ISSUE, {"input": factories.claim_input(factories.insz(), **override)}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION"
    assert [error["message"] for error in body["errors"]] == [message]
    assert "cost" not in body.get("extensions", {})  # nothing ran, nothing was charged
    assert await table_counts(engine) == before


async def test_every_problem_of_the_variables_is_told_at_once(api: Api, school: Partner) -> None:
    wrong = factories.claim_input(factories.insz(), insz=None, acquiredOn="2020")
    del wrong["externalRef"]
    body = (await api.post(school.token, ISSUE, {"input": wrong})).json()
    assert sorted(error["message"] for error in body["errors"]) == [
        f"Variable $input at input.acquiredOn: {DATE}.",
        "Variable $input at input.externalRef: required (String!).",
        "Variable $input at input.insz: must not be null (String!).",
    ]
    missing = (await api.post(school.token, ISSUE, {})).json()
    assert [e["message"] for e in missing["errors"]] == [
        "Variable $input: required (IssueClaimInput!)."
    ]


async def test_only_partners_issue(api: Api, reader: Partner) -> None:
    citizen = factories.insz()
    for token in (reader.token, api.citizen(citizen), api.admin()):
        result = (await api.gql(token, ISSUE, {"input": factories.claim_input(citizen)}))["data"][
            "issueClaim"
        ]
        assert result["__typename"] == "NotAuthorized"


async def test_revoke_by_issuer_only_and_idempotent(
    api: Api, school: Partner, employer: Partner
) -> None:
    claim = (await issue(api, school, factories.claim_input(factories.insz())))["claim"]
    stranger = await api.gql(
        employer.token, REVOKE, {"input": {"claimId": claim["id"], "reason": "wrong"}}
    )
    assert stranger["data"]["revokeClaim"]["__typename"] == "NotFound"
    revoked = await api.gql(
        school.token, REVOKE, {"input": {"claimId": claim["id"], "reason": "issued in error"}}
    )
    revoked_claim = revoked["data"]["revokeClaim"]["claim"]
    assert revoked_claim["status"] == "REVOKED"
    assert revoked_claim["revocation"]["reason"] == "issued in error"
    again = await api.gql(
        school.token, REVOKE, {"input": {"claimId": claim["id"], "reason": "again"}}
    )
    assert again["data"]["revokeClaim"]["claim"]["revocation"] == revoked_claim["revocation"]


async def test_revoke_unknown_or_malformed_id(api: Api, school: Partner) -> None:
    for claim_id in (str(uuid.uuid4()), "not-a-uuid"):
        body = await api.gql(
            school.token, REVOKE, {"input": {"claimId": claim_id, "reason": "gone"}}
        )
        assert body["data"]["revokeClaim"]["__typename"] == "NotFound"


async def test_supersede_keeps_history(api: Api, school: Partner, employer: Partner) -> None:
    citizen = factories.insz()
    old = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    newer_input = {
        k: v
        for k, v in factories.claim_input(
            citizen, lastUsedOn="2025-01-01", proficiency={"scale": "EQF", "level": "6"}
        ).items()
        if k not in ("insz", "competenceUri")
    }
    stranger = await api.gql(
        employer.token, SUPERSEDE, {"input": {**newer_input, "claimId": old["id"]}}
    )
    assert stranger["data"]["supersedeClaim"]["__typename"] == "NotFound"
    result = await api.gql(
        school.token, SUPERSEDE, {"input": {**newer_input, "claimId": old["id"]}}
    )
    payload = result["data"]["supersedeClaim"]
    assert payload["__typename"] == "ClaimSuperseded" and payload["created"] is True
    assert payload["claim"]["supersedes"] == old["id"]
    assert payload["claim"]["proficiency"]["level"] == "6"
    retry = await api.gql(school.token, SUPERSEDE, {"input": {**newer_input, "claimId": old["id"]}})
    assert retry["data"]["supersedeClaim"]["created"] is False
    assert retry["data"]["supersedeClaim"]["claim"]["id"] == payload["claim"]["id"]
    twice = await api.gql(
        school.token,
        SUPERSEDE,
        {"input": {**newer_input, "externalRef": factories.ref(), "claimId": old["id"]}},
    )
    assert twice["data"]["supersedeClaim"]["__typename"] == "InvalidState"
    revoke_old = await api.gql(
        school.token, REVOKE, {"input": {"claimId": old["id"], "reason": "old one"}}
    )
    assert revoke_old["data"]["revokeClaim"]["__typename"] == "InvalidState"


async def test_supersede_cannot_change_the_competence(api: Api, school: Partner) -> None:
    citizen = factories.insz()
    old = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    data = {k: v for k, v in factories.claim_input(citizen, factories.SQL).items() if k != "insz"}
    body = await api.gql(school.token, SUPERSEDE, {"input": {**data, "claimId": old["id"]}})
    assert body["data"] is None
    assert "competenceUri" in body["errors"][0]["message"]


async def test_revoked_claim_cannot_be_superseded(api: Api, school: Partner) -> None:
    citizen = factories.insz()
    old = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    await api.gql(school.token, REVOKE, {"input": {"claimId": old["id"], "reason": "mistake"}})
    data = {
        k: v
        for k, v in factories.claim_input(citizen).items()
        if k not in ("insz", "competenceUri")
    }
    body = await api.gql(school.token, SUPERSEDE, {"input": {**data, "claimId": old["id"]}})
    assert body["data"]["supersedeClaim"]["__typename"] == "InvalidState"


async def test_two_mutations_in_one_request_are_independent(api: Api, school: Partner) -> None:
    """A failed mutation rolls back only itself; the successful one is committed."""
    good = factories.claim_input(factories.insz())
    bad = factories.claim_input(factories.insz(), competenceUri=factories.ESCO + "missing")
    query = """
    mutation($a: IssueClaimInput!, $b: IssueClaimInput!) {
      a: issueClaim(input: $a) { __typename }
      b: issueClaim(input: $b) { __typename }
    }"""
    body = await api.gql(school.token, query, {"a": good, "b": bad})
    assert body["data"] == {
        "a": {"__typename": "ClaimIssued"},
        "b": {"__typename": "ValidationFailed"},
    }
    retry = await issue(api, school, good)
    assert retry["created"] is False


async def test_issued_claims_pages_through_own_claims(api: Api) -> None:
    partner = await make_partner(api)
    other = await make_partner(api)
    ids = [
        (await issue(api, partner, factories.claim_input(factories.insz())))["claim"]["id"]
        for _ in range(5)
    ]
    await issue(api, other, factories.claim_input(factories.insz()))
    seen: list[str] = []
    after = None
    query = """query($after: String) { issuedClaims(first: 2, after: $after) {
      edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"""
    for _ in range(5):
        page = (await api.gql(partner.token, query, {"after": after}))["data"]["issuedClaims"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ids
    bad = await api.gql(partner.token, query, {"after": "!!!"})
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
