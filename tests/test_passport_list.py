"""Query.passports: up to 100 passports in one batched read, each as Query.passport answers it.

Real PostgreSQL through the ``api`` fixture; quick (a few seconds), no long variant.
"""

from __future__ import annotations

import asyncio
from typing import Any

from graphql import parse
from sqlalchemy import event

from service.db.engine import sqlstate
from service.passports.service import MAX_PASSPORTS
from service.schema import build_schema
from service.schema.cost import operation_cost
from service.settings import Settings
from tests import factories
from tests.citizen_api import ERASE, READ_ERRORS, access_log, grant
from tests.conftest import StatementCounter
from tests.graphql_client import Api, Partner
from tests.test_bulk_claims import ISSUE_MANY
from tests.test_claims_api import issue

# The dashboard's selection the cost limit is sized for.
TYPICAL = """
    competences { competence { uri } status lastUsedOn
                  claims { status assessmentMethod issuer { name } } }
"""
LIST = f"""
query($citizens: [CitizenRef!]!, $purpose: String, $basis: String, $filter: PassportFilter) {{
  passports(citizens: $citizens, purpose: $purpose, legalBasis: $basis, filter: $filter) {{
    __typename
    ... on Passport {{
      citizenId basis
      competences {{
        competence {{ uri }} status lastUsedOn claims {{ id status issuer {{ name }} }}
      }}
      selfDeclared {{ id }}
    }}
    {READ_ERRORS}
  }}
}}"""
TYPICAL_LIST = f"""
query($citizens: [CitizenRef!]!, $purpose: String, $basis: String) {{
  passports(citizens: $citizens, purpose: $purpose, legalBasis: $basis) {{
    __typename ... on Passport {{ {TYPICAL} }} ... on Error {{ code }}
  }}
}}"""
PURPOSE = "caseworker dashboard"


async def read_list(
    api: Api, token: str, citizens: list[dict[str, str]], **variables: Any
) -> list[dict[str, Any]]:
    body = await api.gql(token, LIST, {"citizens": citizens, "purpose": PURPOSE, **variables})
    assert "errors" not in body, body
    results: list[dict[str, Any]] = body["data"]["passports"]
    return results


async def citizen_with(api: Api, partner: Partner, *uris: str) -> tuple[str, str, set[str]]:
    """A citizen with a claim per competence: INSZ, citizen id, claim ids."""
    insz = factories.insz()
    claims = [await issue(api, partner, factories.claim_input(insz, uri)) for uri in uris]
    own = await api.gql(api.citizen(insz), "{ me { passport { citizenId } } }")
    citizen_id: str = own["data"]["me"]["passport"]["citizenId"]
    return insz, citizen_id, {c["claim"]["id"] for c in claims}


def claim_ids(passport: dict[str, Any]) -> set[str]:
    return {claim["id"] for pc in passport["competences"] for claim in pc["claims"]}


def uris(passport: dict[str, Any]) -> set[str]:
    return {pc["competence"]["uri"] for pc in passport["competences"]}


async def list_entries(api: Api, insz: str) -> list[dict[str, Any]]:
    """The citizen's log entries of list reads (``citizen_with`` reads their own once)."""
    return [e for e in await access_log(api, api.citizen(insz)) if e["operation"] == "passports"]


async def test_legal_basis_shows_every_found_citizen_in_order(
    api: Api, school: Partner, reader: Partner
) -> None:
    a, a_id, a_claims = await citizen_with(api, school, factories.PYTHON, factories.SQL)
    b, b_id, b_claims = await citizen_with(api, school, factories.TEAMWORK)
    unknown = factories.insz()
    asked = [
        {"insz": b},
        {"insz": unknown},
        {"id": a_id},
        {"id": "not-a-uuid"},
        {"insz": a},  # a again, by INSZ: answered here too
    ]
    results = await read_list(api, reader.token, asked, basis="GUIDANCE")
    assert [r["__typename"] for r in results] == [
        "Passport",
        "NotFound",
        "Passport",
        "NotFound",
        "Passport",
    ]
    assert [results[i]["citizenId"] for i in (0, 2, 4)] == [b_id, a_id, a_id]
    # No leak across citizens: each passport holds exactly its own citizen's claims.
    assert claim_ids(results[0]) == b_claims and claim_ids(results[2]) == a_claims
    assert results[2] == results[4] and results[0]["basis"] == "LEGAL_BASIS"
    assert results[1]["message"] == results[3]["message"]  # a refusal tells nothing
    # One log entry per citizen shown, however often it was named, with basis and purpose.
    for insz in (a, b):
        [entry] = await list_entries(api, insz)
        assert entry["basis"] == "LEGAL_BASIS" and entry["purpose"] == PURPOSE
        assert entry["legalBasis"]["code"] == "GUIDANCE"
        assert entry["organisation"]["name"] == reader.name
    assert {c["uri"] for c in (await list_entries(api, a))[0]["competences"]} == {
        factories.PYTHON,
        factories.SQL,
    }
    # The filter narrows every passport in the one statement, as it narrows one.
    for kinds, expected in ((["EMPLOYER"], set()), (["EDUCATION_PROVIDER"], a_claims)):
        [narrowed] = await read_list(
            api, reader.token, [{"insz": a}], basis="GUIDANCE", filter={"issuerKinds": kinds}
        )
        assert claim_ids(narrowed) == expected


async def test_consent_shows_only_the_consented_within_their_grants(
    api: Api, school: Partner, reader: Partner
) -> None:
    scoped, _, _ = await citizen_with(api, school, factories.PYTHON, factories.SQL)
    whole, _, whole_claims = await citizen_with(api, school, factories.PYTHON, factories.SQL)
    unconsented, _, _ = await citizen_with(api, school, factories.PYTHON)
    erased, erased_id, _ = await citizen_with(api, school, factories.PYTHON)
    org = str(reader.organisation_id)
    kept = await grant(
        api,
        api.citizen(scoped),
        granteeKind="ORGANISATION",
        organisationId=org,
        competenceUris=[factories.PYTHON],
    )
    await grant(api, api.citizen(whole), granteeKind="ORGANISATION", organisationId=org)
    await grant(api, api.citizen(erased), granteeKind="ORGANISATION", organisationId=org)
    erasure = await api.gql(api.citizen(erased), ERASE)
    assert erasure["data"]["requestErasure"]["__typename"] == "ErasureCompleted"
    asked = [
        {"insz": unconsented},
        {"insz": scoped},
        {"id": erased_id},
        {"insz": erased},
        {"insz": whole},
        {"insz": factories.insz()},
    ]
    results = await read_list(api, reader.token, asked)
    assert [r["__typename"] for r in results] == [
        "NotFound",
        "Passport",
        "NotFound",
        "NotFound",
        "Passport",
        "NotFound",
    ]
    assert len({r["message"] for r in results if r["__typename"] == "NotFound"}) == 1
    # Each citizen's own scope, in the one statement: the scoped grant hides SQL, the whole
    # passport of the other shows it.
    assert uris(results[1]) == {factories.PYTHON} and results[1]["basis"] == "CONSENT"
    assert uris(results[4]) == {factories.PYTHON, factories.SQL}
    assert claim_ids(results[4]) == whole_claims
    [entry] = await list_entries(api, scoped)
    assert entry["basis"] == "CONSENT" and entry["purpose"] == PURPOSE
    assert [g["id"] for g in entry["grants"]] == [kept["grant"]["id"]]
    assert [c["uri"] for c in entry["competences"]] == [factories.PYTHON]
    assert len(await list_entries(api, whole)) == 1
    assert await list_entries(api, unconsented) == []  # refused: not recorded


async def test_a_citizen_may_name_only_themselves(
    api: Api, school: Partner, reader: Partner
) -> None:
    me, my_id, my_claims = await citizen_with(api, school, factories.PYTHON)
    other, other_id, _ = await citizen_with(api, school, factories.SQL)
    asked = [{"insz": other}, {"insz": me}, {"id": other_id}, {"id": my_id}, {"insz": "bad"}]
    results = await read_list(api, api.citizen(me), asked)
    kinds = [r["__typename"] for r in results]
    assert kinds == ["NotFound", "Passport", "NotFound", "Passport", "ValidationFailed"]
    assert results[1]["basis"] == "SELF" and claim_ids(results[1]) == my_claims
    assert results[1]["citizenId"] == results[3]["citizenId"] == my_id
    assert results[4]["problems"][0]["field"].startswith("citizens.4")
    own = [e for e in await access_log(api, api.citizen(me)) if e["operation"] == "passports"]
    assert len(own) == 1 and own[0]["principalKind"] == "CITIZEN"  # read once
    assert await list_entries(api, other) == []
    # A partner system that is no reader sees nothing, and leaves nothing in the log.
    refused = await read_list(api, school.token, [{"insz": other}], basis="GUIDANCE")
    assert [r["__typename"] for r in refused] == ["NotFound"]
    assert await list_entries(api, other) == []


async def test_bad_arguments_refuse_the_whole_field(api: Api, reader: Partner) -> None:
    too_many = [{"insz": factories.insz()} for _ in range(MAX_PASSPORTS + 1)]
    [result] = await read_list(api, reader.token, too_many, basis="GUIDANCE")
    assert result["__typename"] == "ValidationFailed"
    assert result["problems"] == [
        {"field": "citizens", "message": result["problems"][0]["message"], "code": "too_many"}
    ]
    [no_purpose] = await read_list(
        api, reader.token, [{"insz": factories.insz()}], basis="GUIDANCE", purpose=None
    )
    assert no_purpose["__typename"] == "ValidationFailed"
    assert await read_list(api, reader.token, []) == []


async def test_a_hundred_passports_stay_within_the_cost_limit(
    api: Api, school: Partner, reader: Partner
) -> None:
    default_limit = Settings.model_fields["graphql_max_cost"].default
    citizens = [{"insz": factories.insz()} for _ in range(MAX_PASSPORTS - 1)]
    known, known_id, _ = await citizen_with(api, school, factories.PYTHON)
    citizens.append({"insz": known})
    variables = {"citizens": citizens, "purpose": PURPOSE, "basis": "GUIDANCE"}
    body = await api.gql(reader.token, TYPICAL_LIST, variables)
    assert "errors" not in body, body
    assert len(body["data"]["passports"]) == MAX_PASSPORTS
    assert body["data"]["passports"][-1]["__typename"] == "Passport"
    charged = body["extensions"]["cost"]
    assert charged == 20 + 2 * MAX_PASSPORTS <= default_limit
    # From a literal list, and the most when the length cannot be known.
    graphql = build_schema(api.settings)._schema
    document = parse(TYPICAL_LIST)
    cost = operation_cost(
        graphql,
        document,
        operation_name=None,
        variables={"citizens": citizens[:3]},
        max_page=100,
    )
    assert cost == 20 + 2 * 3
    literal = parse('{ passports(citizens: [{id: "x"}, {id: "y"}]) { __typename } }')
    assert operation_cost(graphql, literal, operation_name=None, variables={}, max_page=1) == 24
    unknown = operation_cost(graphql, document, operation_name=None, variables={}, max_page=1)
    assert unknown == charged
    # 101: refused as too many (above); far more: refused as too costly, before any read.
    huge = {**variables, "citizens": [{"id": known_id}] * 1000}
    refused = await api.gql(reader.token, TYPICAL_LIST, huge)
    assert refused.get("data") is None and "costs" in refused["errors"][0]["message"]
    assert len(await list_entries(api, known)) == 1


async def test_the_read_is_a_batch(
    api: Api, school: Partner, reader: Partner, count_statements: StatementCounter
) -> None:
    few = [(await citizen_with(api, school, factories.PYTHON))[0] for _ in range(2)]
    many = few + [(await citizen_with(api, school, factories.SQL))[0] for _ in range(6)]
    counts = []
    for group in (few, many):
        before = count_statements.count
        results = await read_list(api, reader.token, [{"insz": i} for i in group], basis="GUIDANCE")
        assert all(r["__typename"] == "Passport" for r in results)
        counts.append(count_statements.count - before)
    assert counts[0] == counts[1]  # the same statements for 2 citizens as for 8


async def test_a_batch_read_and_a_reversed_batch_write_do_not_deadlock(
    api: Api, app: Any, school: Partner, reader: Partner
) -> None:
    """Both take their locks in lock-key order, so neither waits for the other in a cycle; a
    deadlock would be resolved by PostgreSQL and the write's retry, so the test watches the
    engine for any statement that failed with one (SQLSTATE 40P01)."""
    deadlocks: list[str] = []

    def failed(context: Any) -> None:
        if sqlstate(context.original_exception) == "40P01":
            deadlocks.append(context.statement or "")

    engine = app.state.passport.engine.sync_engine
    citizens = [
        (await citizen_with(api, school, factories.PYTHON))[0] for _ in range(ROUNDS_CITIZENS)
    ]
    asked = [{"insz": i} for i in citizens]
    event.listen(engine, "handle_error", failed)
    try:
        await _read_while_writing(api, school, reader, citizens, asked)
    finally:
        event.remove(engine, "handle_error", failed)
    assert deadlocks == []


ROUNDS = 6
ROUNDS_CITIZENS = 40


async def _read_while_writing(
    api: Api,
    school: Partner,
    reader: Partner,
    citizens: list[str],
    asked: list[dict[str, str]],
) -> None:
    """Per round, two batch writes in reverse order (one over every other citizen, one over
    all: one waiting on the other makes the reads' lock order matter) and two batch reads."""
    held = dict.fromkeys(citizens, 1)
    for round_ in range(ROUNDS):
        groups = [citizens[::-2], citizens[::-1]]
        writes = [
            api.gql(
                school.token,
                ISSUE_MANY,
                {
                    "inputs": [
                        factories.claim_input(i, factories.SQL, externalRef=f"r{round_}-{n}-{i}")
                        for i in group
                    ]
                },
            )
            for n, group in enumerate(groups)
        ]
        variables = {"citizens": asked, "purpose": PURPOSE, "basis": "GUIDANCE"}
        reads = [api.gql(reader.token, LIST, variables) for _ in range(2)]
        answers = await asyncio.wait_for(asyncio.gather(*writes, *reads), timeout=60)
        assert all("errors" not in answer for answer in answers), answers
        for group, written in zip(groups, answers, strict=False):
            assert written["data"]["issueClaims"]["accepted"] == len(group)
        before = dict(held)
        for group in groups:
            for i in group:
                held[i] += 1
        for shown in answers[len(writes) :]:
            passports = shown["data"]["passports"]
            assert [p["__typename"] for p in passports] == ["Passport"] * len(citizens)
            # Each passport is whole as of some moment: no write half seen.
            for insz, passport in zip(citizens, passports, strict=True):
                assert before[insz] <= len(claim_ids(passport)) <= held[insz]
