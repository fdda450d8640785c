"""Every principal against every operation: one table of who may do what, asserted cell by cell.

A cell is ALLOW when the operation succeeds and DENY when it is refused (NOT_AUTHORIZED, or
NOT_FOUND where existence itself is personal data). Anything else fails the test. For reads of
the passport, a denied cell must return no passport data and leave the access log as it was;
an allowed one must add exactly one entry.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.models import AccessRecord
from tests import factories
from tests.citizen_api import (
    ACCESS_LOG,
    CONSENT_READ,
    ERASE,
    EXPORT,
    GRANT,
    MY_GRANTS,
    MY_PASSPORT,
    REVOKE_GRANT,
    SELF_DECLARE,
    SHARED_READ,
    WITHDRAW,
    grant,
    grant_input,
    in_days,
    travel,
)
from tests.conftest import REGISTER_ORG, grant_basis, make_partner
from tests.graphql_client import Api
from tests.test_claims_api import ISSUE, REVOKE, SUPERSEDE, issue

OCCUPATION = "http://data.europa.eu/esco/occupation/040fcfa5-24be-43eb-afd5-828297175b16"
PRINCIPALS = (
    "partner_a",
    "partner_b",
    "citizen_x",
    "citizen_y",
    "reader_granted",
    "reader_ungranted",
    "reader_expired",
    "reader_legal_basis",
    "link_holder",
    "admin",
)
CITIZENS = {"citizen_x", "citizen_y"}
PARTNERS = {"partner_a", "partner_b"}
READERS = {"reader_granted", "reader_ungranted", "reader_expired", "reader_legal_basis"}
ALL = set(PRINCIPALS)


@dataclass
class World:
    api: Api
    engine: AsyncEngine
    tokens: dict[str, str]
    x_insz: str
    x_id: str
    claim_of_a: str
    partner_a: Any
    reader_granted_org: str
    reads: list[str] = field(default_factory=list)

    def token(self, who: str) -> str:
        return self.tokens[who]

    async def gql(self, who: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        return await self.api.gql(self.token(who), query, variables)

    async def reads_of_x(self) -> int:
        async with self.engine.connect() as conn:
            count = await conn.scalar(
                select(func.count())
                .select_from(AccessRecord)
                .where(AccessRecord.citizen_id == self.x_id)
            )
        return int(count or 0)


@pytest.fixture(scope="module")
async def world(api: Api, engine: AsyncEngine) -> AsyncIterator[World]:
    a = await make_partner(api)
    b = await make_partner(api, kind="EMPLOYER")
    x, y = factories.insz(), factories.insz()
    claim = (await issue(api, a, factories.claim_input(x)))["claim"]
    await issue(api, a, factories.claim_input(x, factories.SQL))
    granted = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    ungranted = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    expired = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    legal = await make_partner(api, kind="PUBLIC_EMPLOYMENT_SERVICE", scopes=("PASSPORTS_READ",))
    await grant_basis(api, legal)
    me = api.citizen(x)
    await grant(api, me, granteeKind="ORGANISATION", organisationId=str(granted.organisation_id))
    await grant(
        api,
        me,
        granteeKind="ORGANISATION",
        organisationId=str(expired.organisation_id),
        expiresAt=in_days(1 / 24),
    )
    link = await grant(api, me)
    passport = await api.gql(me, MY_PASSPORT)
    # Two hours later, for the whole table: the hour-long grant has run out, the rest have not.
    later = pytest.MonkeyPatch()
    travel(later, timedelta(hours=2))
    yield World(
        api=api,
        engine=engine,
        tokens={
            "partner_a": a.token,
            "partner_b": b.token,
            "citizen_x": me,
            "citizen_y": api.citizen(y),
            "reader_granted": granted.token,
            "reader_ungranted": ungranted.token,
            "reader_expired": expired.token,
            "reader_legal_basis": legal.token,
            "link_holder": link["shareLink"]["token"],
            "admin": api.admin(),
        },
        x_insz=x,
        x_id=passport["data"]["me"]["passport"]["citizenId"],
        claim_of_a=claim["id"],
        partner_a=a,
        reader_granted_org=str(granted.organisation_id),
    )
    later.undo()


DENIED_CODES = {"NOT_AUTHORIZED", "NOT_FOUND"}


def verdict(body: dict[str, Any], field_name: str, success: str | None = None) -> bool:
    """True for ALLOW, False for DENY; anything else is a defect in the service."""
    errors = body.get("errors")
    if errors:
        code = errors[0]["extensions"]["code"]
        assert code in DENIED_CODES, body
        assert body["data"] is None, body
        return False
    result = body["data"][field_name]
    if isinstance(result, dict) and "code" in result:
        assert result["code"] in DENIED_CODES, body
        return False
    if success is not None and isinstance(result, dict):
        assert result["__typename"] == success, body
    return True


async def read_passport(world: World, who: str) -> bool:
    before = await world.reads_of_x()
    if who == "reader_legal_basis":
        body = await world.gql(
            who,
            """query($c: CitizenRef!) {
                 passport(citizen: $c, legalBasis: "GUIDANCE", purpose: "intake") {
                   __typename ... on Passport { competences { status } }
                   ... on Error { code }
                 }
               }""",
            {"c": {"insz": world.x_insz}},
        )
    else:
        body = await world.gql(who, CONSENT_READ, {"citizen": {"insz": world.x_insz}})
    allowed = verdict(body, "passport", "Passport")
    if not allowed:
        assert set(body["data"]["passport"]) <= {"__typename", "code", "message"}
    assert await world.reads_of_x() == before + allowed  # logged exactly when it was read
    return allowed


async def _logged_read(
    world: World, who: str, query: str, field_name: str, success: str, **extra: Any
) -> bool:
    before = await world.reads_of_x()
    variables: dict[str, Any] = {"c": {"insz": world.x_insz}, **extra}
    if who == "reader_legal_basis":
        query = query.replace(
            "citizen: $c", 'citizen: $c, legalBasis: "GUIDANCE", purpose: "intake"'
        )
    allowed = verdict(await world.gql(who, query, variables), field_name, success)
    assert await world.reads_of_x() == before + allowed
    return allowed


async def competence_check(world: World, who: str) -> bool:
    query = """query($c: CitizenRef!, $o: String!) {
      competenceCheck(citizen: $c, occupationUri: $o) {
        __typename ... on Error { code } ... on CompetenceCheck { essential { total } } } }"""
    return await _logged_read(world, who, query, "competenceCheck", "CompetenceCheck", o=OCCUPATION)


async def occupation_matches(world: World, who: str) -> bool:
    query = """query($c: CitizenRef!) {
      occupationMatches(citizen: $c, first: 3) {
        __typename ... on Error { code }
        ... on OccupationMatches { matches { essentialRatio } } } }"""
    return await _logged_read(world, who, query, "occupationMatches", "OccupationMatches")


async def career_profile(world: World, who: str) -> bool:
    query = """query($c: CitizenRef!) {
      careerProfile(citizen: $c) {
        __typename ... on Error { code } ... on CareerProfile { wantsShown } } }"""
    return await _logged_read(world, who, query, "careerProfile", "CareerProfile")


async def career_paths(world: World, who: str) -> bool:
    query = """query($c: CitizenRef!) {
      careerPaths(citizen: $c, first: 3) {
        __typename ... on Error { code } ... on CareerPaths { workHistoryShown } } }"""
    return await _logged_read(world, who, query, "careerPaths", "CareerPaths")


async def career_plan(world: World, who: str) -> bool:
    query = """query($c: CitizenRef!, $o: String!) {
      careerPlan(citizen: $c, goalUri: $o) {
        __typename ... on Error { code } ... on CareerPlan { steps { kind } } } }"""
    return await _logged_read(world, who, query, "careerPlan", "CareerPlan", o=OCCUPATION)


async def shared_career_profile(world: World, who: str) -> bool:
    before = await world.reads_of_x()
    query = """{ sharedCareerProfile {
      __typename ... on Error { code } ... on CareerProfile { wantsShown } } }"""
    allowed = verdict(await world.gql(who, query), "sharedCareerProfile", "CareerProfile")
    assert await world.reads_of_x() == before + allowed
    return allowed


async def set_want(world: World, who: str) -> bool:
    body = await world.gql(
        who,
        """mutation($input: SetCompetenceWantInput!) {
             setCompetenceWant(input: $input) { __typename ... on Error { code } } }""",
        {"input": {"competenceUri": factories.SQL, "want": "USE_MORE"}},
    )
    return verdict(body, "setCompetenceWant", "CompetenceWantSet")


async def record_work(world: World, who: str) -> bool:
    data = {
        "occupationUri": OCCUPATION,
        "startedOn": "2019-01-01",
        "idempotencyKey": secrets.token_hex(6),
    }
    body = await world.gql(
        who,
        """mutation($input: RecordWorkExperienceInput!) {
             recordWorkExperience(input: $input) { __typename ... on Error { code } } }""",
        {"input": data},
    )
    return verdict(body, "recordWorkExperience", "WorkExperienceRecorded")


async def record_employment(world: World, who: str) -> bool:
    data = {
        "insz": world.x_insz,
        "occupationUri": OCCUPATION,
        "startedOn": "2019-01-01",
        "externalRef": factories.ref(),
    }
    body = await world.gql(
        who,
        """mutation($input: RecordEmploymentInput!) {
             recordEmployment(input: $input) { __typename ... on Error { code } } }""",
        {"input": data},
    )
    return verdict(body, "recordEmployment", "WorkExperienceRecorded")


async def publish_offer(world: World, who: str) -> bool:
    data = {
        "externalRef": factories.ref(),
        "title": "Matrix course",
        "mode": "ONLINE",
        "language": "nl",
        "url": "https://example.org/matrix",
        "competenceUris": [factories.PYTHON],
    }
    body = await world.gql(
        who,
        """mutation($input: LearningOpportunityInput!) {
             publishLearningOpportunity(input: $input) { __typename ... on Error { code } } }""",
        {"input": data},
    )
    return verdict(body, "publishLearningOpportunity", "OpportunityPublished")


async def read_shared(world: World, who: str) -> bool:
    before = await world.reads_of_x()
    response = await world.api.post(world.token(who), SHARED_READ)
    body = response.json()
    allowed = verdict(body, "sharedPassport", "Passport")
    assert await world.reads_of_x() == before + allowed
    return allowed


def me_query(query: str, name: str) -> Callable[[World, str], Awaitable[bool]]:
    async def run(world: World, who: str) -> bool:
        return verdict(await world.gql(who, query), "me")

    run.__name__ = name
    return run


async def own_passport(world: World, who: str) -> bool:
    before = await world.reads_of_x()
    allowed = verdict(await world.gql(who, MY_PASSPORT), "me")
    assert await world.reads_of_x() == before + (who == "citizen_x")
    return allowed


async def read_claim(world: World, who: str) -> bool:
    body = await world.gql(
        who,
        "query($id: ID!) { claim(id: $id) { __typename ... on Error { code } } }",
        {"id": world.claim_of_a},
    )
    return verdict(body, "claim", "Claim")


async def issued_claims(world: World, who: str) -> bool:
    body = await world.gql(who, "{ issuedClaims(first: 50) { edges { node { id } } } }")
    allowed = verdict(body, "issuedClaims")
    if allowed:
        ids = {e["node"]["id"] for e in body["data"]["issuedClaims"]["edges"]}
        assert (world.claim_of_a in ids) == (who == "partner_a")
    return allowed


async def issue_claim(world: World, who: str) -> bool:
    data = factories.claim_input(world.x_insz, factories.TEAMWORK)
    return verdict(await world.gql(who, ISSUE, {"input": data}), "issueClaim", "ClaimIssued")


async def _fresh_claim_of_a(world: World) -> str:
    made = await issue(world.api, world.partner_a, factories.claim_input(world.x_insz))
    return str(made["claim"]["id"])


async def revoke_claim(world: World, who: str) -> bool:
    target = await _fresh_claim_of_a(world)
    body = await world.gql(who, REVOKE, {"input": {"claimId": target, "reason": "mistaken"}})
    return verdict(body, "revokeClaim", "ClaimRevoked")


async def supersede_claim(world: World, who: str) -> bool:
    target = await _fresh_claim_of_a(world)
    data = {
        k: v
        for k, v in factories.claim_input(world.x_insz).items()
        if k not in ("insz", "competenceUri")
    }
    body = await world.gql(who, SUPERSEDE, {"input": {**data, "claimId": target}})
    return verdict(body, "supersedeClaim", "ClaimSuperseded")


async def self_declare(world: World, who: str) -> bool:
    data = {"competenceUri": factories.ENGLISH, "acquiredOn": "2012-01-01"}
    body = await world.gql(who, SELF_DECLARE, {"input": data})
    return verdict(body, "selfDeclare", "SelfDeclared")


async def withdraw_declaration(world: World, who: str) -> bool:
    made = await world.gql(
        "citizen_x",
        SELF_DECLARE,
        {
            "input": {
                "competenceUri": factories.FORKLIFT,
                "acquiredOn": "2011-01-01",
                "context": secrets.token_hex(4),
            }
        },
    )
    target = made["data"]["selfDeclare"]["competence"]["id"]
    body = await world.gql(who, WITHDRAW, {"id": target})
    return verdict(body, "withdrawSelfDeclaration", "SelfDeclarationWithdrawn")


async def grant_access(world: World, who: str) -> bool:
    body = await world.gql(who, GRANT, {"input": grant_input()})
    return verdict(body, "grantAccess", "AccessGranted")


async def revoke_access(world: World, who: str) -> bool:
    made = await grant(world.api, world.token("citizen_x"))
    body = await world.gql(who, REVOKE_GRANT, {"id": made["grant"]["id"]})
    allowed = verdict(body, "revokeAccess", "AccessRevoked")
    # A refused revocation leaves the grant working.
    still = await world.api.post(made["shareLink"]["token"], SHARED_READ)
    assert (still.status_code == 200) is not allowed
    return allowed


async def grants_received(world: World, who: str) -> bool:
    body = await world.gql(who, "{ grantsReceived(first: 20) { edges { node { citizenId } } } }")
    allowed = verdict(body, "grantsReceived")
    if allowed:
        seen = {e["node"]["citizenId"] for e in body["data"]["grantsReceived"]["edges"]}
        assert (world.x_id in seen) == (who == "reader_granted")
    return allowed


async def register_organisation(world: World, who: str) -> bool:
    data = {
        "kind": "EMPLOYER",
        "name": "Matrix NV",
        "enterpriseNumber": factories.enterprise_number(),
    }
    body = await world.gql(who, REGISTER_ORG, {"input": data})
    return verdict(body, "registerOrganisation")


async def list_organisations(world: World, who: str) -> bool:
    return verdict(await world.gql(who, "{ organisations { id } }"), "organisations")


async def verify_chains(world: World, who: str) -> bool:
    body = await world.gql(
        who,
        "query($id: ID) { verifyEventChains(citizenId: $id) { intact } }",
        {"id": world.x_id},
    )
    return verdict(body, "verifyEventChains")


async def search_competences(world: World, who: str) -> bool:
    body = await world.gql(who, '{ competences(search: "python", first: 3) { edges { cursor } } }')
    return verdict(body, "competences")


async def erase(world: World, who: str) -> bool:
    """Erasure acts on the caller's own passport; a citizen stand-in with claims takes the
    citizens' places, so the shared world stays whole for the other cells."""
    token = world.token(who)
    if who in CITIZENS:
        stand_in = factories.insz()
        await issue(world.api, world.partner_a, factories.claim_input(stand_in))
        token = world.api.citizen(stand_in)
    before = await world.reads_of_x()
    body = await world.api.gql(token, ERASE)
    assert await world.reads_of_x() == before  # nobody erased citizen X
    return verdict(body, "requestErasure", "ErasureCompleted")


OPERATIONS: dict[Callable[[World, str], Awaitable[bool]], set[str]] = {
    read_passport: {"citizen_x", "reader_granted", "reader_legal_basis"},
    read_shared: {"link_holder"},
    competence_check: {"citizen_x", "reader_granted", "reader_legal_basis"},
    occupation_matches: {"citizen_x", "reader_granted", "reader_legal_basis"},
    career_profile: {"citizen_x", "reader_granted", "reader_legal_basis"},
    career_paths: {"citizen_x", "reader_granted", "reader_legal_basis"},
    career_plan: {"citizen_x", "reader_granted", "reader_legal_basis"},
    shared_career_profile: {"link_holder"},
    set_want: CITIZENS,
    record_work: CITIZENS,
    record_employment: {"partner_b"},  # an employer; partner_a is an education provider
    publish_offer: {"partner_a"},  # an education provider; partner_b is an employer
    own_passport: CITIZENS,
    me_query(MY_GRANTS, "my_grants"): CITIZENS,
    me_query(ACCESS_LOG, "my_access_log"): CITIZENS,
    me_query(EXPORT, "my_export"): CITIZENS,
    read_claim: {"partner_a"},
    issued_claims: PARTNERS,
    issue_claim: PARTNERS,
    revoke_claim: {"partner_a"},
    supersede_claim: {"partner_a"},
    self_declare: CITIZENS,
    withdraw_declaration: {"citizen_x"},
    grant_access: CITIZENS,
    revoke_access: {"citizen_x"},
    grants_received: READERS,
    register_organisation: {"admin"},
    list_organisations: {"admin"},
    verify_chains: {"admin"},
    search_competences: ALL,
    erase: CITIZENS,
}


@pytest.mark.parametrize("who", PRINCIPALS)
@pytest.mark.parametrize("operation", list(OPERATIONS), ids=lambda op: op.__name__)
async def test_matrix(
    world: World, operation: Callable[[World, str], Awaitable[bool]], who: str
) -> None:
    expected = who in OPERATIONS[operation]
    assert await operation(world, who) is expected, (
        f"{operation.__name__} by {who}: expected {'ALLOW' if expected else 'DENY'}"
    )
