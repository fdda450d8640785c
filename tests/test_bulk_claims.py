"""issueClaims: many claims in one transaction, with the rules and idempotency of one."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.events.chain import verify_chain
from service.models import CitizenEvent, Claim
from tests import factories
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner

ISSUE_MANY = """
mutation($inputs: [IssueClaimInput!]!) {
  issueClaims(inputs: $inputs) {
    __typename
    ... on ClaimsIssued {
      accepted duplicates rejected
      results {
        __typename
        ... on ClaimIssued { created claim { id externalRef status competence { uri } } }
        ... on Error { code message }
        ... on ValidationFailed { problems { field code } }
        ... on Conflict { existingId }
      }
    }
    ... on Error { code message }
    ... on ValidationFailed { problems { field code } }
  }
}"""


async def issue_many(api: Api, partner: Partner, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    body = await api.gql(partner.token, ISSUE_MANY, {"inputs": inputs})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["issueClaims"]
    return result


async def test_batch_accepts_rejects_and_retries_row_by_row(api: Api, engine: AsyncEngine) -> None:
    partner = await make_partner(api)
    alice, bob = factories.insz(), factories.insz()
    good = [
        factories.claim_input(alice, factories.PYTHON),
        factories.claim_input(alice, factories.SQL),
        factories.claim_input(bob, factories.TEAMWORK),
    ]
    bad_date = factories.claim_input(bob, factories.SQL, acquiredOn="2999-01-01")
    not_a_skill = factories.claim_input(bob, factories.SKILL_GROUP)
    first = await issue_many(api, partner, [*good, bad_date, not_a_skill])
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (3, 0, 2)
    kinds = [r["__typename"] for r in first["results"]]
    assert kinds == ["ClaimIssued"] * 3 + ["ValidationFailed"] * 2
    assert first["results"][3]["problems"][0]["field"] == "inputs.3.acquiredOn"
    assert first["results"][4]["problems"][0]["code"] == "unknown_competence"
    ids = [r["claim"]["id"] for r in first["results"][:3]]
    assert [r["claim"]["externalRef"] for r in first["results"][:3]] == [
        g["externalRef"] for g in good
    ]

    # The same batch again: every good row is a retry, answered with the same claim.
    again = await issue_many(api, partner, [*good, bad_date])
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 3, 1)
    assert [r["claim"]["id"] for r in again["results"][:3]] == ids
    assert all(r["created"] is False for r in again["results"][:3])

    # A ref reused for something else is a conflict naming the claim it belongs to.
    changed = {**good[0], "context": "something else"}
    conflict = await issue_many(api, partner, [changed])
    assert conflict["results"][0]["__typename"] == "Conflict"
    assert conflict["results"][0]["existingId"] == ids[0]

    async with engine.connect() as conn:
        stored = await conn.scalar(
            select(func.count()).where(Claim.claim_id.in_([uuid.UUID(i) for i in ids]))
        )
        citizens = list(
            await conn.scalars(
                select(Claim.citizen_id).where(Claim.claim_id.in_([uuid.UUID(i) for i in ids]))
            )
        )
    assert stored == 3
    for citizen_id in set(citizens):
        assert await verify_chain(engine, citizen_id) == []


async def test_batch_continues_existing_chains_and_repeats_within_a_batch(
    api: Api, engine: AsyncEngine
) -> None:
    partner = await make_partner(api)
    citizen = factories.insz()
    await issue_many(api, partner, [factories.claim_input(citizen, factories.PYTHON)])
    twice = factories.claim_input(citizen, factories.SQL)
    other = factories.claim_input(citizen, factories.ENGLISH)
    result = await issue_many(api, partner, [twice, other, twice, {**twice, "context": "x y"}])
    assert [r["__typename"] for r in result["results"]] == [
        "ClaimIssued",
        "ClaimIssued",
        "ClaimIssued",
        "Conflict",
    ]
    assert result["results"][2]["claim"]["id"] == result["results"][0]["claim"]["id"]
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (2, 1, 1)
    citizen_id = uuid.UUID(
        (await api.gql(partner.token, ISSUE_MANY, {"inputs": [twice]}))["data"]["issueClaims"][
            "results"
        ][0]["claim"]["id"]
    )
    async with engine.connect() as conn:
        owner = await conn.scalar(select(Claim.citizen_id).where(Claim.claim_id == citizen_id))
        seqs = list(
            await conn.scalars(
                select(CitizenEvent.seq)
                .where(CitizenEvent.citizen_id == owner)
                .order_by(CitizenEvent.seq)
            )
        )
    assert seqs == [1, 2, 3]
    assert owner is not None
    assert await verify_chain(engine, owner) == []


async def test_batch_limits_and_authorization(api: Api) -> None:
    reader = await make_partner(api, "PUBLIC_EMPLOYMENT_SERVICE", ("PASSPORTS_READ",))
    refused = await issue_many(api, reader, [factories.claim_input(factories.insz())])
    assert refused["__typename"] == "NotAuthorized"
    partner = await make_partner(api)
    rows = [factories.claim_input(factories.insz(), evidence=[]) for _ in range(1001)]
    too_many = await issue_many(api, partner, rows)
    assert too_many["__typename"] == "ValidationFailed"
    assert too_many["problems"][0]["code"] == "too_many"
