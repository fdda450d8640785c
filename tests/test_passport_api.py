"""Passport reads: aggregation per competence, filters, constant SQL, access log, denials."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.models import AccessRecord
from tests import factories
from tests.conftest import StatementCounter, grant_basis, make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import REVOKE, issue

PASSPORT_BODY = """
    citizenId
    competences {
      competence { uri label(lang: EN) { text language } }
      status firstAcquiredOn lastUsedOn distinctOrganisations
      highestLevel { scale level rank }
      vouchers { organisationKind organisations }
      claims { id status issuer { name kind } assessmentMethod externalRef }
    }
"""
PASSPORT_FIELDS = f"... on Passport {{ {PASSPORT_BODY} }} ... on Error {{ code message }}"
READ = f"""
query($citizen: CitizenRef!, $purpose: String, $basis: String, $filter: PassportFilter) {{
  passport(citizen: $citizen, purpose: $purpose, legalBasis: $basis, filter: $filter) {{
    __typename {PASSPORT_FIELDS}
  }}
}}"""
ME = f"""
query($filter: PassportFilter) {{ me {{ passport(filter: $filter) {{ {PASSPORT_BODY} }} }} }}
"""


async def read(api: Api, token: str, citizen: str, **variables: Any) -> dict[str, Any]:
    variables.setdefault("purpose", "career guidance interview")
    variables.setdefault("basis", "GUIDANCE")
    body = await api.gql(token, READ, {"citizen": {"insz": citizen}, **variables})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["passport"]
    return result


async def test_passport_aggregates_per_competence(
    api: Api, school: Partner, employer: Partner, reader: Partner
) -> None:
    citizen = factories.insz()
    await issue(
        api,
        school,
        factories.claim_input(
            citizen,
            factories.TEAMWORK,
            assessmentMethod="PORTFOLIO_REVIEW",
            proficiency={"scale": "DESCRIPTIVE", "level": "intermediate"},
            acquiredOn="2018-01-01",
            lastUsedOn="2019-01-01",
        ),
    )
    await issue(
        api,
        employer,
        factories.claim_input(
            citizen,
            factories.TEAMWORK,
            assessmentMethod="WORKPLACE_OBSERVATION",
            learningContext="INFORMAL",
            proficiency={"scale": "EQF", "level": "7"},
            acquiredOn="2021-01-01",
            lastUsedOn="2024-05-01",
        ),
    )
    revoked = (await issue(api, employer, factories.claim_input(citizen, factories.SQL)))["claim"]
    await api.gql(
        employer.token, REVOKE, {"input": {"claimId": revoked["id"], "reason": "wrong person"}}
    )

    passport = await read(api, reader.token, citizen)
    assert passport["__typename"] == "Passport"
    by_uri = {pc["competence"]["uri"]: pc for pc in passport["competences"]}
    teamwork = by_uri[factories.TEAMWORK]
    assert teamwork["status"] == "ACTIVE"
    assert teamwork["competence"]["label"] == {"text": "work in teams", "language": "en"}
    assert teamwork["firstAcquiredOn"] == "2018-01-01"
    assert teamwork["lastUsedOn"] == "2024-05-01"
    assert teamwork["highestLevel"] == {"scale": "EQF", "level": "7", "rank": 875}
    assert teamwork["distinctOrganisations"] == 2
    assert sorted(teamwork["vouchers"], key=lambda v: v["organisationKind"]) == [
        {"organisationKind": "EDUCATION_PROVIDER", "organisations": 1},
        {"organisationKind": "EMPLOYER", "organisations": 1},
    ]
    assert len(teamwork["claims"]) == 2
    assert all(c["externalRef"] is None for c in teamwork["claims"])  # issuer-only field
    sql = by_uri[factories.SQL]
    assert sql["status"] == "REVOKED"
    assert sql["distinctOrganisations"] == 0
    assert [c["status"] for c in sql["claims"]] == ["REVOKED"]


async def test_filters(api: Api, school: Partner, employer: Partner, reader: Partner) -> None:
    citizen = factories.insz()
    await issue(
        api, school, factories.claim_input(citizen, factories.PYTHON, lastUsedOn="2020-07-01")
    )
    await issue(
        api,
        employer,
        factories.claim_input(
            citizen, factories.TEAMWORK, learningContext="INFORMAL", lastUsedOn="2025-01-01"
        ),
    )
    revoked = (await issue(api, employer, factories.claim_input(citizen, factories.SQL)))["claim"]
    await api.gql(
        employer.token, REVOKE, {"input": {"claimId": revoked["id"], "reason": "mistake"}}
    )

    async def uris(flt: dict[str, Any]) -> set[str]:
        passport = await read(api, reader.token, citizen, filter=flt)
        return {pc["competence"]["uri"] for pc in passport["competences"]}

    assert await uris({}) == {factories.PYTHON, factories.TEAMWORK, factories.SQL}
    assert await uris({"statuses": ["ACTIVE"]}) == {factories.PYTHON, factories.TEAMWORK}
    assert await uris({"statuses": ["REVOKED"]}) == {factories.SQL}
    assert await uris({"skillTypes": ["KNOWLEDGE"]}) == {factories.PYTHON, factories.SQL}
    assert await uris({"issuerKinds": ["EMPLOYER"]}) == {factories.TEAMWORK, factories.SQL}
    assert await uris({"learningContexts": ["INFORMAL"]}) == {factories.TEAMWORK}
    assert await uris({"usedSince": "2024-12-31"}) == {factories.TEAMWORK}


async def test_read_costs_constant_statements(
    api: Api, school: Partner, reader: Partner, count_statements: StatementCounter
) -> None:
    small, large = factories.insz(), factories.insz()
    await issue(api, school, factories.claim_input(small))
    uris = [
        factories.PYTHON,
        factories.SQL,
        factories.TEAMWORK,
        factories.ENGLISH,
        factories.FORKLIFT,
    ]
    for i in range(30):
        await issue(api, school, factories.claim_input(large, uris[i % len(uris)]))
    count_statements.statements.clear()
    await read(api, reader.token, small)
    small_count = count_statements.count
    count_statements.statements.clear()
    passport = await read(api, reader.token, large)
    assert sum(len(pc["claims"]) for pc in passport["competences"]) == 30
    assert count_statements.count == small_count
    assert small_count <= 8, count_statements.statements


async def test_every_read_is_recorded(
    api: Api, school: Partner, reader: Partner, engine: AsyncEngine
) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    passport = await read(api, reader.token, citizen, purpose="job matching for vacancy 42")
    await api.gql(api.citizen(citizen), ME)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(AccessRecord)
                .where(AccessRecord.citizen_id == uuid.UUID(passport["citizenId"]))
                .order_by(AccessRecord.accessed_at)
            )
        ).all()
    assert [(r.principal_kind, r.basis) for r in rows] == [
        ("reader", "legal_basis"),
        ("citizen", "self"),
    ]
    assert rows[0].purpose == "job matching for vacancy 42"
    assert rows[0].organisation_id == reader.organisation_id
    assert rows[0].subject == reader.client_id
    assert rows[0].legal_basis_id is not None
    assert len(rows[0].competence_ids) == 1


async def test_denials_look_like_not_found_and_are_not_recorded(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    no_basis = await make_partner(api, kind="PUBLIC_EMPLOYMENT_SERVICE", scopes=("PASSPORTS_READ",))
    other_basis = await make_partner(
        api, kind="PUBLIC_EMPLOYMENT_SERVICE", scopes=("PASSPORTS_READ",)
    )
    await grant_basis(api, other_basis, code="OTHER")
    async with engine.connect() as conn:
        before = await conn.scalar(
            select(AccessRecord.id).limit(1).order_by(AccessRecord.accessed_at.desc())
        )
    answers = [
        await read(api, no_basis.token, citizen),  # no legal basis at all
        await read(api, other_basis.token, citizen),  # basis code it does not hold
        await read(api, school.token, citizen),  # a partner without passports:read
        await read(api, api.admin(), citizen),  # admins manage, they do not read passports
        await read(api, api.citizen(factories.insz()), citizen),  # another citizen
    ]
    unknown = await read(
        api, (await make_partner(api, scopes=("PASSPORTS_READ",))).token, factories.insz()
    )
    for answer in answers:
        assert answer == {
            "__typename": "NotFound",
            "code": "NOT_FOUND",
            "message": "no passport found for this citizen",
        }
    assert unknown["__typename"] == "NotFound"
    async with engine.connect() as conn:
        after = await conn.scalar(
            select(AccessRecord.id).limit(1).order_by(AccessRecord.accessed_at.desc())
        )
    assert before == after


async def test_purpose_is_required_for_readers(api: Api, school: Partner, reader: Partner) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    answer = await read(api, reader.token, citizen, purpose="")
    assert answer["__typename"] == "ValidationFailed"


async def test_revoked_legal_basis_stops_reads(api: Api, school: Partner) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    partner = await make_partner(api, kind="PUBLIC_EMPLOYMENT_SERVICE", scopes=("PASSPORTS_READ",))
    basis_id = await grant_basis(api, partner)
    assert (await read(api, partner.token, citizen))["__typename"] == "Passport"
    revoke = "mutation($id: ID!) { revokeLegalBasis(id: $id) { __typename } }"
    await api.gql(api.admin(), revoke, {"id": basis_id})
    assert (await read(api, partner.token, citizen))["__typename"] == "NotFound"


async def test_citizen_reads_own_passport(api: Api, school: Partner) -> None:
    citizen = factories.insz(born_after_2000=True)
    await issue(
        api,
        school,
        factories.claim_input(
            citizen, factories.ENGLISH, proficiency={"scale": "CEFR", "level": "b2"}
        ),
    )
    body = await api.gql(api.citizen(citizen), ME)
    competences = body["data"]["me"]["passport"]["competences"]
    assert [pc["competence"]["uri"] for pc in competences] == [factories.ENGLISH]
    assert competences[0]["highestLevel"] == {"scale": "CEFR", "level": "B2", "rank": 667}


async def test_me_is_for_citizens_only(api: Api, reader: Partner) -> None:
    body = await api.gql(reader.token, ME)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_AUTHORIZED"


async def test_read_by_internal_id(api: Api, school: Partner, reader: Partner) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    first = await read(api, reader.token, citizen)
    body = await api.gql(
        reader.token,
        READ,
        {"citizen": {"id": first["citizenId"]}, "purpose": "follow-up", "basis": "GUIDANCE"},
    )
    assert body["data"]["passport"]["citizenId"] == first["citizenId"]
    both = await api.gql(
        reader.token,
        READ,
        {
            "citizen": {"id": first["citizenId"], "insz": citizen},
            "purpose": "follow-up",
            "basis": "GUIDANCE",
        },
    )
    assert both["data"]["passport"]["__typename"] == "ValidationFailed"


_ONE_CLAIM = """query($c: CitizenRef!) {
  passport(citizen: $c, purpose: "round trips", legalBasis: "GUIDANCE") {
    __typename ... on Passport { competences { claims { id } } }
  }
}"""


async def test_a_read_under_a_legal_basis_takes_six_statements(
    api: Api, school: Partner, reader: Partner, count_statements: StatementCounter
) -> None:
    """The basis and the citizen named by national number come in one round trip, before the
    lock, and the compiled answer writes its own access record; a citizen nobody knows is
    refused after the first, with no lock and nothing recorded."""
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    count_statements.statements.clear()
    body = await api.gql(reader.token, _ONE_CLAIM, {"c": {"insz": citizen}})
    await asyncio.sleep(0.05)  # asyncpg calls its loggers soon after, not at once
    assert len(body["data"]["passport"]["competences"]) == 1, body
    # Less what asyncpg sends on its own the first time a connection meets a type.
    sent = [s for s in count_statements.statements if not s.startswith(_DRIVER_OWN)]
    both = [s for s in sent if "FROM legal_bases" in s and "FROM citizen_identities" in s]
    assert len(both) == 1, sent
    assert not [s for s in sent if s not in both and "citizen_identities" in s], sent
    # The caller, BEGIN, basis and citizen, the lock, the passport with its access record
    # (compiled: one statement builds the answer and writes the record), COMMIT.
    assert len(sent) == 6 and sent.index(both[0]) == 2, sent
    assert "pg_advisory_xact_lock_shared" in sent[3]
    assert sent[4].startswith("WITH c AS") and "INSERT INTO access_records" in sent[4], sent

    count_statements.statements.clear()
    refused = await api.gql(reader.token, _ONE_CLAIM, {"c": {"insz": factories.insz()}})
    await asyncio.sleep(0.05)
    assert refused["data"]["passport"]["__typename"] == "NotFound", refused
    sent = count_statements.statements
    assert [s for s in sent if "FROM legal_bases" in s and "FROM citizen_identities" in s], sent
    assert not [s for s in sent if "pg_advisory" in s or "INSERT" in s], sent


_DRIVER_OWN = ("SELECT current_setting('jit')", "WITH RECURSIVE typeinfo_tree")
