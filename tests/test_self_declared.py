"""Self-declared competences: the citizen's own statements, shown apart, never verified."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.models import Claim
from tests import factories
from tests.citizen_api import MY_PASSPORT, SELF_DECLARE, WITHDRAW, consent_read, grant, uris
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue


def declaration(uri: str = factories.ENGLISH, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "competenceUri": uri,
        "acquiredOn": "2015-09-01",
        "lastUsedOn": "2024-03-01",
        "proficiency": {"scale": "CEFR", "level": "b2"},
        "context": "Erasmus year in Dublin",
    }
    data.update(overrides)
    return data


async def declare(api: Api, token: str, data: dict[str, Any]) -> dict[str, Any]:
    body = await api.gql(token, SELF_DECLARE, {"input": data})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["selfDeclare"]
    return result


async def test_declarations_are_shown_apart_and_never_count_as_verified(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen = factories.insz()
    me = api.citizen(citizen)
    await issue(api, school, factories.claim_input(citizen, factories.PYTHON))
    declared = await declare(api, me, declaration())
    assert declared["created"] is True
    await declare(api, me, declaration(factories.PYTHON, context="side projects"))
    passport = (await api.gql(me, MY_PASSPORT))["data"]["me"]["passport"]
    # Verified: only the school's claim; the declaration about Python does not add to it.
    assert uris(passport) == {factories.PYTHON}
    assert passport["competences"][0]["distinctOrganisations"] == 1
    assert {d["competence"]["uri"] for d in passport["selfDeclared"]} == {
        factories.ENGLISH,
        factories.PYTHON,
    }
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(Claim.assessment_method, Claim.organisation_id).where(
                    Claim.claim_id == declared["competence"]["id"]
                )
            )
        ).one()
    assert tuple(rows) == ("self_assessment", None)


async def test_declaring_again_is_idempotent_and_a_change_replaces(
    api: Api, engine: AsyncEngine
) -> None:
    me = api.citizen(factories.insz())
    first = await declare(api, me, declaration())
    again = await declare(api, me, declaration())
    assert again["created"] is False
    assert again["competence"]["id"] == first["competence"]["id"]
    changed = await declare(api, me, declaration(context="two years in Dublin"))
    assert changed["created"] is True
    passport = (await api.gql(me, MY_PASSPORT))["data"]["me"]["passport"]
    assert [d["context"] for d in passport["selfDeclared"]] == ["two years in Dublin"]
    async with engine.connect() as conn:
        supersedes = await conn.scalar(
            text("SELECT supersedes_claim_id::text FROM claims WHERE claim_id = :c"),
            {"c": changed["competence"]["id"]},
        )
    assert supersedes == first["competence"]["id"]


async def test_withdrawing_a_declaration(api: Api) -> None:
    me = api.citizen(factories.insz())
    declared = await declare(api, me, declaration())
    body = await api.gql(me, WITHDRAW, {"id": declared["competence"]["id"]})
    assert body["data"]["withdrawSelfDeclaration"]["id"] == declared["competence"]["id"]
    again = await api.gql(me, WITHDRAW, {"id": declared["competence"]["id"]})
    assert again["data"]["withdrawSelfDeclaration"]["__typename"] == "SelfDeclarationWithdrawn"
    passport = (await api.gql(me, MY_PASSPORT))["data"]["me"]["passport"]
    assert passport["selfDeclared"] == []


async def test_nobody_else_declares_or_withdraws(api: Api, school: Partner) -> None:
    citizen = factories.insz()
    declared = await declare(api, api.citizen(citizen), declaration())
    for token in (school.token, api.admin(), api.citizen(factories.insz())):
        body = await api.gql(token, WITHDRAW, {"id": declared["competence"]["id"]})
        assert body["data"]["withdrawSelfDeclaration"]["code"] in ("NOT_FOUND", "NOT_AUTHORIZED")
    body = await api.gql(school.token, SELF_DECLARE, {"input": declaration()})
    assert body["data"]["selfDeclare"]["code"] == "NOT_AUTHORIZED"
    # An organisation's claim is not the citizen's to withdraw.
    claim = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    body = await api.gql(api.citizen(citizen), WITHDRAW, {"id": claim["id"]})
    assert body["data"]["withdrawSelfDeclaration"]["code"] == "NOT_FOUND"


async def test_bad_declarations_are_typed_errors(api: Api) -> None:
    me = api.citizen(factories.insz())
    for overrides, field in (
        ({"competenceUri": factories.SKILL_GROUP}, "input.competenceUri"),
        ({"acquiredOn": "2999-01-01"}, "input.acquiredOn"),
        ({"lastUsedOn": "2001-01-01"}, "input.lastUsedOn"),
        ({"proficiency": {"scale": "CEFR", "level": "Z9"}}, "input.proficiency"),
        ({"context": "bad\u202etext"}, "input.context"),
    ):
        body = await api.gql(me, SELF_DECLARE, {"input": declaration(**overrides)})
        result = body["data"]["selfDeclare"]
        assert result["code"] == "VALIDATION_FAILED", overrides
        assert any(p["field"].startswith(field) for p in result["problems"]), result


async def test_readers_see_declarations_apart_within_their_grant(api: Api) -> None:
    citizen = factories.insz()
    me = api.citizen(citizen)
    await declare(api, me, declaration(factories.ENGLISH))
    await declare(api, me, declaration(factories.SQL))
    reader = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    await grant(
        api,
        me,
        granteeKind="ORGANISATION",
        organisationId=str(reader.organisation_id),
        competenceUris=[factories.ENGLISH],
    )
    passport = await consent_read(api, reader.token, citizen)
    assert passport["competences"] == []
    assert [d["competence"]["uri"] for d in passport["selfDeclared"]] == [factories.ENGLISH]


async def test_an_idempotency_key_makes_a_late_retry_harmless(api: Api) -> None:
    me = api.citizen(factories.insz())
    first = await declare(api, me, declaration(idempotencyKey="decl-1"))
    await declare(api, me, declaration(context="changed later"))
    late = await declare(api, me, declaration(idempotencyKey="decl-1"))  # the retry arrives
    assert late["created"] is False
    assert late["competence"]["id"] == first["competence"]["id"]
    passport = (await api.gql(me, MY_PASSPORT))["data"]["me"]["passport"]
    assert [d["context"] for d in passport["selfDeclared"]] == ["changed later"]
    body = await api.gql(
        me, SELF_DECLARE, {"input": declaration(idempotencyKey="decl-1", context="other")}
    )
    assert body["data"]["selfDeclare"]["code"] == "CONFLICT"
