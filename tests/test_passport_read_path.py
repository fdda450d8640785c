"""The fast passport read gives exactly what the general one gives.

Two shortcuts: the claims come from a statement compiled once and run as PostgreSQL SQL
(``load_passport_claims``), and a passport is completed by a plan compiled once per document
(service/schema/passports/execution.py). Each is compared here with the general path it
replaces: ``load_claims``, and graphql-core's own completion of the same value. Both are
the resolver path, which a passport read takes with compiled reads off (the compiled one is
held to it in tests/test_compiled_reads.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import service.schema
from service.citizens.service import find_citizen
from service.claims.views import PassportClaimsFilter, load_claims, load_passport_claims
from service.models import Claim, Competence, Organisation
from service.schema.passports import execution
from service.settings import Settings
from tests import factories
from tests.citizen_api import SELF_DECLARE
from tests.graphql_client import Api, Partner
from tests.test_claims_api import REVOKE, SUPERSEDE, issue
from tests.test_self_declared import declaration

EVERYTHING = """
fragment Ref on Competence { uri skillType reuseLevel }
fragment ClaimFields on Claim {
  id status acquiredOn lastUsedOn validUntil recordedAt assessmentMethod learningContext
  context issuerRole supersedes supersededBy externalRef __typename
  proficiency { scale level rank }
  issuer { id name kind clientId }
  evidence { kind title url digest issuedOn }
  revocation { reason revokedAt }
  competence { ...Ref label { text language } description(lang: EN) { text language } }
}
query($c: CitizenRef!, $lang: Language!, $claims: Boolean!, $skipVouchers: Boolean!) {
  passport(citizen: $c, purpose: "equivalence", legalBasis: "GUIDANCE") {
    __typename
    ... on Passport {
      citizenId readAt basis __typename
      competences {
        competence { ...Ref label(lang: $lang) { text } en: label(lang: EN) { text } }
        status firstAcquiredOn lastUsedOn distinctOrganisations
        highestLevel { scale level rank }
        vouchers @skip(if: $skipVouchers) { organisationKind organisations }
        claims @include(if: $claims) { ...ClaimFields }
        newest: claims { id ... on Claim { status } }
      }
      selfDeclared {
        id context learningContext acquiredOn lastUsedOn declaredAt
        competence { uri label { text } }
        proficiency { scale level rank }
        evidence { kind title }
      }
    }
    ... on Error { code message }
  }
}"""
ME = """query { me { passport { citizenId basis competences { status claims { id } }
  selfDeclared { id competence { uri label(lang: EN) { text } } } } } }"""


@pytest.fixture(autouse=True)
def resolver_path(settings: Settings) -> Iterator[None]:
    """Passports resolved in Python, where these shortcuts are."""
    settings.compiled_reads = False
    yield
    settings.compiled_reads = True


@pytest.fixture
def general_path() -> Iterator[Any]:
    """A switch: within ``with general_path():`` passports complete the general way."""
    saved = service.schema.PLANNED_TYPES

    class Switch:
        def __enter__(self) -> None:
            service.schema.PLANNED_TYPES = frozenset()

        def __exit__(self, *_: object) -> None:
            service.schema.PLANNED_TYPES = saved

    yield Switch
    service.schema.PLANNED_TYPES = saved


async def _passport_of_every_kind(
    api: Api, school: Partner, employer: Partner, citizen: str
) -> None:
    """Active, revoked, superseded and self-declared claims, two issuers, evidence, levels."""
    await issue(api, school, factories.claim_input(citizen, factories.TEAMWORK))
    await issue(
        api,
        employer,
        factories.claim_input(
            citizen,
            factories.TEAMWORK,
            learningContext="INFORMAL",
            assessmentMethod="WORKPLACE_OBSERVATION",
            proficiency={"scale": "EQF", "level": "7"},
            evidence=[],
        ),
    )
    revoked = (await issue(api, employer, factories.claim_input(citizen, factories.SQL)))["claim"]
    await api.gql(employer.token, REVOKE, {"input": {"claimId": revoked["id"], "reason": "no"}})
    old = (await issue(api, school, factories.claim_input(citizen, factories.PYTHON)))["claim"]
    newer = {
        k: v
        for k, v in factories.claim_input(citizen, lastUsedOn="2025-01-01").items()
        if k not in ("insz", "competenceUri")
    }
    await api.gql(school.token, SUPERSEDE, {"input": {**newer, "claimId": old["id"]}})
    body = await api.gql(api.citizen(citizen), SELF_DECLARE, {"input": declaration()})
    assert body["data"]["selfDeclare"]["__typename"] == "SelfDeclared", body


def _without_read_at(body: dict[str, Any]) -> dict[str, Any]:
    passport = body["data"]["passport"]
    if isinstance(passport, dict):
        passport.pop("readAt", None)
    return body


async def test_a_planned_passport_is_what_graphql_core_completes(
    api: Api,
    school: Partner,
    employer: Partner,
    reader: Partner,
    general_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plans: list[Any] = []
    plan_for = execution.plan_for

    def recording(*args: Any) -> Any:
        plans.append(plan_for(*args))
        return plans[-1]

    monkeypatch.setattr(service.schema, "plan_for", recording)
    citizen = factories.insz()
    await _passport_of_every_kind(api, school, employer, citizen)
    for variables in (
        {"lang": "NL", "claims": True, "skipVouchers": False},
        {"lang": "EN", "claims": False, "skipVouchers": True},  # same text, other variables
        {"lang": "NL", "claims": True, "skipVouchers": False},
    ):
        variables = {"c": {"insz": citizen}, **variables}
        planned = _without_read_at(await api.gql(reader.token, EVERYTHING, variables))
        with general_path():
            general = _without_read_at(await api.gql(reader.token, EVERYTHING, variables))
        assert planned == general
        assert "errors" not in planned, planned
        competences = planned["data"]["passport"]["competences"]
        assert len(competences) == 3
        assert ("claims" in competences[0]) is variables["claims"]
        assert ("vouchers" in competences[0]) is not variables["skipVouchers"]

    assert plans and all(plan is not None for plan in plans)  # every passport had a plan
    mine = await api.gql(api.citizen(citizen), ME)
    with general_path():
        general = await api.gql(api.citizen(citizen), ME)
    assert mine == general
    assert len(mine["data"]["me"]["passport"]["selfDeclared"]) == 1


async def test_refusals_and_errors_are_unchanged(
    api: Api, reader: Partner, general_path: Any
) -> None:
    variables = {"c": {"insz": factories.insz()}, "lang": "NL", "claims": True}
    variables["skipVouchers"] = False
    planned = await api.gql(reader.token, EVERYTHING, variables)
    with general_path():
        general = await api.gql(reader.token, EVERYTHING, variables)
    assert planned == general
    assert planned["data"]["passport"]["__typename"] == "NotFound"


def test_a_plan_falls_back_on_a_value_it_cannot_answer() -> None:
    plan = execution.ObjectPlan()
    plan.fields.append(
        execution.Field("x", lambda source: source.x, execution._leaf(_string()), attribute="x")
    )

    class Source:
        x = None

    assert plan(Source()) == {"x": None}
    strict = execution.ObjectPlan()
    strict.fields.append(
        execution.Field(
            "x", lambda source: source.x, _non_null(execution._leaf(_string())), attribute="x"
        )
    )
    with pytest.raises(execution.Fallback):
        strict(Source())


def _string() -> Any:
    from graphql import GraphQLString

    return GraphQLString


def _non_null(inner: Any) -> Any:
    def non_null(value: Any) -> Any:
        completed = inner(value)
        if completed is None:
            raise execution.Fallback
        return completed

    return non_null


async def test_the_passport_statement_loads_what_load_claims_loads(
    api: Api, school: Partner, employer: Partner, session: AsyncSession
) -> None:
    citizen = factories.insz()
    await _passport_of_every_kind(api, school, employer, citizen)
    citizen_id = await find_citizen(session, citizen, api.settings.hmac_key())
    assert citizen_id is not None
    everything = await load_claims(session, Claim.citizen_id == citizen_id)
    assert len(everything) == 6  # two teamwork, revoked, superseded and newer, declared
    teamwork = await session.scalar(
        select(Competence.id).where(Competence.uri == factories.TEAMWORK)
    )
    assert teamwork is not None
    cases: list[tuple[PassportClaimsFilter, list[Any]]] = [
        (PassportClaimsFilter(), []),
        (
            PassportClaimsFilter(competence_ids=frozenset({teamwork})),
            [Claim.competence_id.in_([teamwork])],
        ),
        (PassportClaimsFilter(competence_ids=frozenset()), [Claim.competence_id.in_([])]),
        (
            PassportClaimsFilter(issuer_kinds=frozenset({"employer"})),
            [Organisation.kind.in_(["employer"])],
        ),
        (
            PassportClaimsFilter(learning_contexts=frozenset({"informal"})),
            [Claim.learning_context.in_(["informal"])],
        ),
        (
            PassportClaimsFilter(skill_types=frozenset({"skill_competence"})),
            [Competence.skill_type.in_(["skill_competence"])],
        ),
    ]
    for flt, conditions in cases:
        fast = await load_passport_claims(session, citizen_id, flt)
        general = await load_claims(session, Claim.citizen_id == citizen_id, *conditions)
        assert fast == general, flt
        assert [type(v.claim_id) for v in fast] == [type(v.claim_id) for v in general]
    assert len(await load_passport_claims(session, citizen_id, cases[1][0])) == 2


FRAGMENT_VARIABLES = """
fragment Claims on PassportCompetence { claims @include(if: $flag) { id status } }
query($c: CitizenRef!, $flag: Boolean!) {
  passport(citizen: $c, purpose: "equivalence", legalBasis: "GUIDANCE") {
    ... on Passport { competences { status ...Claims } }
  }
}"""


async def test_a_variable_inside_a_fragment_is_read_on_every_request(
    api: Api, school: Partner, reader: Partner, general_path: Any
) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    for flag in (True, False, True):
        variables = {"c": {"insz": citizen}, "flag": flag}
        planned = await api.gql(reader.token, FRAGMENT_VARIABLES, variables)
        with general_path():
            general = await api.gql(reader.token, FRAGMENT_VARIABLES, variables)
        assert planned == general
        assert ("claims" in planned["data"]["passport"]["competences"][0]) is flag
