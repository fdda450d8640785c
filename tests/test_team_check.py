"""The team competence check: only consenting staff, named or counted only, numbers that
never single out a counted-only person (fewer than 5), withdrawal at once, every read in each
person's access log, and a deployability plan weighted by the team's gaps."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.events.chain import verify_chain
from service.models import AccessGrant, WebhookDelivery
from service.teams.check import MIN_GROUP, team_count
from tests import factories
from tests.citizen_api import CONSENT_READ, REVOKE_GRANT, access_log, in_days
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue
from tests.test_competence_check import OCCUPATION, PUBLISH, WAREHOUSING
from tests.test_consent import GRANTS_RECEIVED
from tests.test_webhooks import SUBSCRIBE

ERRORS = """
  ... on Error { code message }
  ... on ValidationFailed { problems { field code } }
  ... on Conflict { existingId }
"""
CREATE = f"""
mutation($input: CreateTeamCheckInput!) {{
  createTeamCheck(input: $input) {{
    __typename ... on TeamCheckCreated {{ created teamCheck {{ id name status externalRef }} }}
    {ERRORS}
  }}
}}"""
CLOSE = f"""mutation($id: ID!) {{
  closeTeamCheck(id: $id) {{
    __typename ... on TeamCheckClosed {{ teamCheck {{ status }} }} {ERRORS}
  }}
}}"""
JOIN = f"""
mutation($input: JoinTeamCheckInput!) {{
  joinTeamCheck(input: $input) {{
    __typename
    ... on AccessGranted {{
      created grant {{ id purpose status organisation {{ id }} teamCheck {{ id name }} disclosure
                       competences {{ uri }} }}
    }}
    {ERRORS}
  }}
}}"""
INVITATION = """query($id: ID!) {
  teamCheckInvitation(id: $id) {
    __typename ... on TeamCheck { name status externalRef named organisation { name } }
    ... on Error { code }
  }
}"""
SAVE_PROFILE = f"""
mutation($input: CompetenceProfileInput!) {{
  saveCompetenceProfile(input: $input) {{
    __typename
    ... on CompetenceProfileSaved {{
      profile {{ id name archivedAt competences {{ competence {{ uri }} essential
                                                 minimumLevel {{ scale level rank }} }} }}
    }}
    {ERRORS}
  }}
}}"""
ARCHIVE_PROFILE = f"""mutation($id: ID!) {{
  archiveCompetenceProfile(id: $id) {{
    __typename ... on CompetenceProfileSaved {{ profile {{ archivedAt }} }} {ERRORS}
  }}
}}"""
COUNT = "count fewerThanFive named atLeast"
CHECK = f"""
query($occupations: [String!], $profile: ID, $teams: [ID!], $identify: [CitizenRef!],
      $first: Int, $after: String, $plan: Int) {{
  teamCompetenceCheck(occupationUris: $occupations, profileId: $profile, teamChecks: $teams,
                      identify: $identify, planSize: $plan) {{
    __typename
    ... on TeamCompetenceCheck {{
      consented named countedOnly staleBefore
      teamChecks {{ id named counted }}
      occupations {{ uri }}
      profile {{ name }}
      competences {{
        competence {{ uri }} essential minimumLevel {{ level }}
        held {{ {COUNT} }} stale {{ {COUNT} }} belowLevel {{ {COUNT} }}
        selfDeclared {{ {COUNT} }} notShared {{ {COUNT} }} missing {{ {COUNT} }} gap {{ {COUNT} }}
      }}
      largestGaps {{ competence {{ uri }} gap {{ {COUNT} }} }}
      plan {{
        opportunity {{ title }} closes {{ uri }} peopleGaps helps {{ passportId position }}
      }}
      identified {{
        passportId position gaps {{ uri }} requirements {{ competence {{ uri }} status }}
      }}
      people(first: $first, after: $after) {{
        edges {{ cursor node {{ passportId position teamChecks
                                requirements {{ competence {{ uri }} status }} gaps {{ uri }} }} }}
        pageInfo {{ hasNextPage endCursor }}
      }}
    }}
    ... on Error {{ code message }}
    ... on ValidationFailed {{ problems {{ field code }} }}
  }}
}}"""
MY_GRANTS = "query { me { grants { id teamCheck { id } disclosure status purpose } } }"

PY, SQL, EN, TEAM, LIFT = (
    factories.PYTHON,
    factories.SQL,
    factories.ENGLISH,
    factories.TEAMWORK,
    factories.FORKLIFT,
)


@dataclass
class Staff:
    insz: str
    grant_id: str
    passport_id: str | None = None


async def hr(api: Api) -> Partner:
    """An employer's HR system: a reading client."""
    return await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))


async def team_check(api: Api, employer: Partner, name: str = "Maintenance team") -> str:
    body = await api.gql(
        employer.token, CREATE, {"input": {"name": name, "externalRef": factories.ref()}}
    )
    result = body["data"]["createTeamCheck"]
    assert result["__typename"] == "TeamCheckCreated", result
    return str(result["teamCheck"]["id"])


async def join(
    api: Api, insz: str, team: str, disclosure: str = "NAMED", **overrides: Any
) -> dict[str, Any]:
    data = {
        "teamCheckId": team,
        "disclosure": disclosure,
        "expiresAt": in_days(90),
        "idempotencyKey": factories.ref(),
        **overrides,
    }
    body = await api.gql(api.citizen(insz), JOIN, {"input": data})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["joinTeamCheck"]
    return result


async def member(
    api: Api,
    school: Partner,
    team: str,
    disclosure: str,
    claims: dict[str, dict[str, Any]],
    **join_overrides: Any,
) -> Staff:
    """A citizen with these claims (uri -> overrides) who joins the team check."""
    insz = factories.insz()
    passport_id = None
    for uri, overrides in claims.items():
        issued = await issue(api, school, factories.claim_input(insz, uri, **overrides))
        assert issued["__typename"] == "ClaimIssued", issued
    joined = await join(api, insz, team, disclosure, **join_overrides)
    assert joined["__typename"] == "AccessGranted", joined
    return Staff(insz, joined["grant"]["id"], passport_id)


async def profile(
    api: Api, employer: Partner, competences: list[dict[str, Any]], ref: str | None = None
) -> str:
    data = {
        "externalRef": ref or factories.ref(),
        "name": "Data steward",
        "competences": competences,
    }
    body = await api.gql(employer.token, SAVE_PROFILE, {"input": data})
    result = body["data"]["saveCompetenceProfile"]
    assert result["__typename"] == "CompetenceProfileSaved", result
    return str(result["profile"]["id"])


async def check(api: Api, employer: Partner, **variables: Any) -> dict[str, Any]:
    variables.setdefault("first", 50)
    body = await api.gql(employer.token, CHECK, variables)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["teamCompetenceCheck"]
    return result


def by_uri(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["competence"]["uri"]: c for c in result["competences"]}


def people(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [edge["node"] for edge in result["people"]["edges"]]


def statuses(person: dict[str, Any]) -> dict[str, str]:
    return {r["competence"]["uri"]: r["status"] for r in person["requirements"]}


OLD = {"acquiredOn": "2010-01-01", "lastUsedOn": "2011-01-01"}  # verified, stale


@pytest.mark.parametrize(
    ("named", "counted", "group", "shown"),
    [
        (0, 0, 0, 0),  # nobody: nothing to hide
        (3, 0, 0, None),  # 1-4 people, named or not
        (5, 0, 0, 5),
        (0, 4, 4, None),
        (0, 5, 5, 5),
        (0, 0, 5, 0),  # none of five or more counted-only people
        (7, 0, 2, None),  # two counted-only in the check: subtracting would single them out
        (7, 2, 9, None),  # two of nine counted-only in the number: the same
        (7, 5, 9, 12),
        (0, 0, 3, None),  # "none of the three" is about each of them too
    ],
)
def test_the_fewer_than_five_rule(named: int, counted: int, group: int, shown: int | None) -> None:
    found = team_count(named, counted, group)
    assert found.count == shown
    assert found.fewer_than_five is (shown is None)
    assert found.at_least == (named if shown is None else shown)
    assert MIN_GROUP == 5


def test_no_withheld_number_can_be_worked_out_from_the_rest() -> None:
    """Secondary suppression: the six statuses add up to everyone, held + stale + not shared +
    gap too, and the gap is its three statuses; in each, the withheld cells' counted-only
    people are none or five or more together."""
    from service.models.enums import TeamRequirementStatus as S
    from service.teams.check import GAP, team_row

    # nine counted-only people hold it, one lacks it: "missing" (1) is withheld, and so must
    # "held" be, or 10 - 9 would give it away; the gap (the one missing) goes with it
    people: dict[Any, tuple[int, int]] = {
        S.HELD: (0, 9),
        S.STALE: (0, 0),
        S.BELOW_LEVEL: (0, 0),
        S.SELF_DECLARED: (0, 0),
        S.NOT_SHARED: (0, 0),
        S.MISSING: (0, 1),
        GAP: (0, 1),
    }
    row = team_row(people, 10)
    assert {cell for cell, n in row.items() if n.count is None} == {S.HELD, S.MISSING, GAP}
    # nobody withheld: nothing more to do
    people = {**people, S.HELD: (0, 5), S.MISSING: (0, 5), GAP: (0, 5)}
    assert all(n.count is not None for n in team_row(people, 10).values())
    # only named people (no counted-only ones): a small number is withheld, nothing else
    named = {cell: (0, 0) for cell in people} | {S.HELD: (3, 0), S.MISSING: (7, 0), GAP: (7, 0)}
    assert {cell for cell, n in team_row(named, 0).items() if n.count is None} == {S.HELD}


async def test_named_and_counted_staff_against_a_profile(api: Api, school: Partner) -> None:
    employer = await hr(api)
    team = await team_check(api, employer)
    target = await profile(
        api,
        employer,
        [
            {"competenceUri": PY, "minimumLevel": {"scale": "EQF", "level": "5"}},
            {"competenceUri": SQL},
            {"competenceUri": EN, "essential": False},
        ],
    )
    # six named: four hold Python at level 5, one below it, one stale; two know SQL
    named = [
        await member(api, school, team, "NAMED", {PY: {}, SQL: {}}),
        await member(api, school, team, "NAMED", {PY: {}, SQL: {}}),
        await member(api, school, team, "NAMED", {PY: {}}),
        await member(api, school, team, "NAMED", {PY: {}}),
        await member(
            api, school, team, "NAMED", {PY: {"proficiency": {"scale": "EQF", "level": "3"}}}
        ),
        await member(api, school, team, "NAMED", {PY: OLD}),
    ]
    # six counted only: five hold Python and English, none SQL; one shares English alone
    counted = [await member(api, school, team, "COUNTED", {PY: {}, EN: {}}) for _ in range(5)]
    counted.append(await member(api, school, team, "COUNTED", {EN: {}}, competenceUris=[EN]))
    result = await check(api, employer, profile=target)
    assert result["__typename"] == "TeamCompetenceCheck", result
    assert (result["consented"], result["named"], result["countedOnly"]) == (12, 6, 6)
    assert result["teamChecks"] == [{"id": team, "named": 6, "counted": 6}]
    found = by_uri(result)
    assert list(found) == [PY, SQL, EN]  # essential first
    python = found[PY]
    assert python["minimumLevel"]["level"] == "5"
    assert python["missing"] == {"count": 0, "fewerThanFive": False, "named": 0, "atLeast": 0}
    # one named below the level, one stale: fewer than five each
    assert python["belowLevel"] == {"count": None, "fewerThanFive": True, "named": 1, "atLeast": 1}
    assert python["stale"]["count"] is None and python["stale"]["atLeast"] == 1
    # the one counted-only person who shares no Python: it rests on one person
    assert python["notShared"] == {"count": None, "fewerThanFive": True, "named": 0, "atLeast": 0}
    # and since the six numbers add up to everyone, 9 holding it would tell that one
    # counted-only person is among the three withheld: held is withheld too
    assert python["held"] == {"count": None, "fewerThanFive": True, "named": 4, "atLeast": 4}
    sql = found[SQL]
    assert sql["held"] == {"count": None, "fewerThanFive": True, "named": 2, "atLeast": 2}
    # 9 miss it (4 named, 5 counted only), but shown with everything else it would give away
    # the one counted-only person who did not share it: withheld, with the gap
    assert sql["missing"] == {"count": None, "fewerThanFive": True, "named": 4, "atLeast": 4}
    assert sql["gap"]["count"] is None and sql["notShared"]["count"] is None
    assert sql["stale"]["count"] == 0 and sql["belowLevel"]["count"] == 0
    english = found[EN]
    assert not english["essential"]
    assert english["held"] == {"count": 6, "fewerThanFive": False, "named": 0, "atLeast": 6}
    assert english["missing"]["count"] == 6 and english["gap"]["count"] == 6
    # the largest gaps first, by what may be shown of them
    assert [g["competence"]["uri"] for g in result["largestGaps"]] == [EN, SQL, PY]
    assert [g["gap"]["atLeast"] for g in result["largestGaps"]] == [6, 4, 1]
    # named people: each their own result, nobody counted-only
    listed = people(result)
    assert len(listed) == 6 and not result["people"]["pageInfo"]["hasNextPage"]
    assert all(set(statuses(p)) == {PY, SQL, EN} for p in listed)
    assert sorted(statuses(p)[PY] for p in listed) == [
        "BELOW_LEVEL",
        "HELD",
        "HELD",
        "HELD",
        "HELD",
        "STALE",
    ]
    # the named people's grants say what they are
    grants = await api.gql(api.citizen(named[0].insz), MY_GRANTS)
    [mine] = grants["data"]["me"]["grants"]
    assert mine["teamCheck"]["id"] == team and mine["disclosure"] == "NAMED"
    assert mine["purpose"] == "team competence check"
    grants = await api.gql(api.citizen(counted[0].insz), MY_GRANTS)
    assert grants["data"]["me"]["grants"][0]["disclosure"] == "COUNTED"


async def test_too_few_counted_only_people_are_never_singled_out(api: Api, school: Partner) -> None:
    """Six named and two counted-only: every number the counted-only are part of is withheld,
    so subtracting the named people's own results tells nothing about the two."""
    employer = await hr(api)
    team = await team_check(api, employer)
    for _ in range(6):
        await member(api, school, team, "NAMED", {PY: {}})
    await member(api, school, team, "COUNTED", {SQL: {}})
    await member(api, school, team, "COUNTED", {})
    target = await profile(api, employer, [{"competenceUri": PY}, {"competenceUri": SQL}])
    result = await check(api, employer, profile=target)
    assert (result["consented"], result["named"], result["countedOnly"]) == (8, 6, 2)
    for competence in result["competences"]:
        for status in (
            "held",
            "stale",
            "belowLevel",
            "selfDeclared",
            "notShared",
            "missing",
            "gap",
        ):
            number = competence[status]
            assert number["count"] is None and number["fewerThanFive"] is True, (status, number)
            assert number["atLeast"] == number["named"]
    python = by_uri(result)[PY]
    assert python["held"]["atLeast"] == 6 and python["missing"]["atLeast"] == 0
    assert len(people(result)) == 6  # the named still see themselves listed


async def test_a_small_team_shows_fewer_than_five(api: Api, school: Partner) -> None:
    employer = await hr(api)
    team = await team_check(api, employer)
    for _ in range(3):
        await member(api, school, team, "NAMED", {PY: {}})
    result = await check(api, employer, occupations=[OCCUPATION])
    assert result["consented"] == 3
    warehousing = by_uri(result)[WAREHOUSING]
    assert warehousing["missing"] == {
        "count": None,
        "fewerThanFive": True,
        "named": 3,
        "atLeast": 3,
    }
    assert warehousing["held"] == {"count": 0, "fewerThanFive": False, "named": 0, "atLeast": 0}
    assert result["occupations"] == [{"uri": OCCUPATION}]


async def test_withdrawing_stops_it_on_the_next_request(api: Api, school: Partner) -> None:
    employer = await hr(api)
    team = await team_check(api, employer)
    staff = [await member(api, school, team, "NAMED", {PY: {}}) for _ in range(6)]
    target = await profile(api, employer, [{"competenceUri": PY}])
    assert (await check(api, employer, profile=target))["consented"] == 6
    leaving = staff[0]
    revoked = await api.gql(api.citizen(leaving.insz), REVOKE_GRANT, {"id": leaving.grant_id})
    assert revoked["data"]["revokeAccess"]["grant"]["status"] == "REVOKED"
    after = await check(api, employer, profile=target)
    assert after["consented"] == 5
    assert by_uri(after)[PY]["held"]["count"] == 5
    log = await access_log(api, api.citizen(leaving.insz))
    assert [e["operation"] for e in log].count("team_competence_check") == 1  # only before


async def test_every_read_is_in_each_persons_access_log(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    employer = await hr(api)
    team = await team_check(api, employer)
    named = await member(api, school, team, "NAMED", {PY: {}})
    counted = await member(api, school, team, "COUNTED", {PY: {}, SQL: {}}, competenceUris=[PY, EN])
    target = await profile(api, employer, [{"competenceUri": PY}, {"competenceUri": SQL}])
    await check(api, employer, profile=target)
    for person, seen in ((named, {PY, SQL}), (counted, {PY})):
        log = await access_log(api, api.citizen(person.insz))
        [entry] = [e for e in log if e["operation"] == "team_competence_check"]
        assert entry["basis"] == "CONSENT" and entry["principalKind"] == "READER"
        assert entry["organisation"]["name"] == employer.name
        assert entry["purpose"] == "team competence check"
        assert [g["id"] for g in entry["grants"]] == [person.grant_id]
        assert {c["uri"] for c in entry["competences"]} == seen  # what was looked at, no more


async def test_a_reader_that_is_not_the_employer_sees_nothing(api: Api, school: Partner) -> None:
    employer = await hr(api)
    team = await team_check(api, employer)
    staff = [await member(api, school, team, "NAMED", {PY: {}}) for _ in range(5)]
    other = await hr(api)
    target = await profile(api, employer, [{"competenceUri": PY}])
    # another organisation can neither name this team check nor use this profile
    refused = await check(api, other, occupations=[OCCUPATION], teams=[team])
    assert refused["__typename"] == "ValidationFailed"
    assert refused["problems"][0]["field"] == "teamChecks"
    assert (await check(api, other, profile=target))["__typename"] == "ValidationFailed"
    # without a filter it checks its own team checks: nobody
    assert (await check(api, other, occupations=[OCCUPATION]))["consented"] == 0
    # a citizen, or a client without passports:read, may not run a check at all
    citizen = await api.gql(api.citizen(staff[0].insz), CHECK, {"occupations": [OCCUPATION]})
    assert citizen["data"]["teamCompetenceCheck"]["__typename"] == "NotAuthorized"
    writer = await api.gql(school.token, CHECK, {"occupations": [OCCUPATION]})
    assert writer["data"]["teamCompetenceCheck"]["__typename"] == "NotAuthorized"
    # and a team-check consent lets no passport be read, not even by the employer itself
    for reader in (employer, other):
        read = await api.gql(reader.token, CONSENT_READ, {"citizen": {"insz": staff[0].insz}})
        assert read["data"]["passport"]["__typename"] == "NotFound"
    received = await api.gql(employer.token, GRANTS_RECEIVED, {"first": 50})
    assert received["data"]["grantsReceived"]["edges"] == []


async def test_identify_finds_named_people_only(api: Api, school: Partner) -> None:
    employer = await hr(api)
    team = await team_check(api, employer)
    named = await member(api, school, team, "NAMED", {PY: {}})
    counted = await member(api, school, team, "COUNTED", {PY: {}})
    outsider = factories.insz()
    await issue(api, school, factories.claim_input(outsider))
    target = await profile(api, employer, [{"competenceUri": PY}, {"competenceUri": SQL}])
    result = await check(
        api,
        employer,
        profile=target,
        identify=[{"insz": outsider}, {"insz": counted.insz}, {"insz": named.insz}],
    )
    [found] = result["identified"]
    assert found["position"] == 2 and [g["uri"] for g in found["gaps"]] == [SQL]
    [listed] = people(result)
    assert listed["passportId"] == found["passportId"] and listed["position"] == 2
    assert listed["teamChecks"] == [team]


async def test_the_plan_closes_the_most_gaps_across_the_team_first(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    """Offers on skills no other test uses: the greedy weighted cover picks the offer closing
    the most people-gaps, then the next; each step names the named people it helps."""
    async with engine.connect() as conn:
        rare = list(
            await conn.scalars(
                text(
                    "SELECT uri FROM competences WHERE concept_type = 'skill' "
                    "ORDER BY md5(uri) LIMIT 3 OFFSET 4242"
                )
            )
        )
    a, b, c = rare
    employer = await hr(api)
    team = await team_check(api, employer)
    # 6 named: all lack a; 2 hold b; all hold c except one
    staff = []
    for i in range(6):
        claims: dict[str, dict[str, Any]] = {}
        if i < 2:
            claims[b] = {}
        if i != 5:
            claims[c] = {}
        staff.append(await member(api, school, team, "NAMED", claims))
    target = await profile(api, employer, [{"competenceUri": u} for u in (a, b, c)])
    provider = await make_partner(api)
    ref = factories.ref()
    for title, uris in ((f"{ref} c", [c]), (f"{ref} a and c", [a, c]), (f"{ref} b", [b])):
        data = {
            "externalRef": factories.ref(),
            "title": title,
            "mode": "ONLINE",
            "language": "nl",
            "url": "https://example.org/course",
            "competenceUris": uris,
        }
        published = await api.gql(provider.token, PUBLISH, {"input": data})
        assert (
            published["data"]["publishLearningOpportunity"]["__typename"] == "OpportunityPublished"
        )
    result = await check(api, employer, profile=target, plan=5)
    plan = result["plan"]
    assert [step["opportunity"]["title"] for step in plan] == [f"{ref} a and c", f"{ref} b"]
    assert [step["peopleGaps"] for step in plan] == [7, 4]
    assert len(plan[0]["helps"]) == 6 and len(plan[1]["helps"]) == 4
    gaps = [g["competence"]["uri"] for g in result["largestGaps"]]
    assert gaps == [a, b, c]


async def test_consents_are_grants_chained_and_announced_without_naming_the_counted(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    employer = await hr(api)
    subscribed = await api.gql(
        employer.token,
        SUBSCRIBE,
        {
            "input": {
                "url": "http://127.0.0.1:9/hooks",
                "eventTypes": ["GRANT_CREATED", "GRANT_REVOKED"],
            }
        },
    )
    subscription = subscribed["data"]["createWebhookSubscription"]["subscription"]["id"]
    team = await team_check(api, employer)
    named = await member(api, school, team, "NAMED", {PY: {}})
    counted = await member(api, school, team, "COUNTED", {PY: {}})
    await api.gql(api.citizen(counted.insz), REVOKE_GRANT, {"id": counted.grant_id})
    async with engine.connect() as conn:
        bodies = [
            orjson.loads(body)
            for body in await conn.scalars(
                select(WebhookDelivery.body)
                .where(WebhookDelivery.subscription_id == uuid.UUID(subscription))
                .order_by(WebhookDelivery.created_at)
            )
        ]
        owners = {
            str(grant_id): citizen_id
            for grant_id, citizen_id in await conn.execute(
                select(AccessGrant.grant_id, AccessGrant.citizen_id).where(
                    AccessGrant.team_check_id == uuid.UUID(team)
                )
            )
        }
    by_grant = {(b["type"], b["data"]["grantId"]): b["data"] for b in bodies}
    seen = by_grant["grant.created", named.grant_id]
    assert seen["teamCheckId"] == team and seen["disclosure"] == "named"
    assert seen["passportId"] == str(owners[named.grant_id])
    for kind in ("grant.created", "grant.revoked"):
        hidden = by_grant[kind, counted.grant_id]
        assert "passportId" not in hidden and hidden["disclosure"] == "counted"
    assert str(owners[counted.grant_id]) not in orjson.dumps(bodies).decode()
    for citizen_id in owners.values():
        assert await verify_chain(engine, citizen_id) == []


async def test_joining_rules(api: Api, school: Partner) -> None:
    employer = await hr(api)
    team = await team_check(api, employer)
    insz = factories.insz()
    # the citizen sees who invites them before deciding; not the organisation's own numbers
    invitation = await api.gql(api.citizen(insz), INVITATION, {"id": team})
    shown = invitation["data"]["teamCheckInvitation"]
    assert shown["organisation"]["name"] == employer.name and shown["status"] == "OPEN"
    assert shown["externalRef"] is None and shown["named"] is None
    same: dict[str, Any] = {
        "idempotencyKey": factories.ref(),
        "competenceUris": [PY],
        "expiresAt": in_days(30),
    }
    first = await join(api, insz, team, **same)
    assert first["created"] is True and [c["uri"] for c in first["grant"]["competences"]] == [PY]
    retry = await join(api, insz, team, **same)
    assert retry["created"] is False and retry["grant"]["id"] == first["grant"]["id"]
    again = await join(api, insz, team)
    assert again["__typename"] == "Conflict" and again["existingId"] == first["grant"]["id"]
    too_long = await join(api, factories.insz(), team, expiresAt=in_days(400))
    assert too_long["__typename"] == "ValidationFailed"
    unknown = await join(api, factories.insz(), str(uuid.uuid4()))
    assert unknown["__typename"] == "NotFound"
    closed = await api.gql(employer.token, CLOSE, {"id": team})
    assert closed["data"]["closeTeamCheck"]["teamCheck"]["status"] == "CLOSED"
    late = await join(api, factories.insz(), team)
    assert late["__typename"] == "InvalidState"
    # a closed team check is left out of checks, and cannot be named in one
    assert (await check(api, employer, occupations=[OCCUPATION]))["consented"] == 0
    named_closed = await check(api, employer, occupations=[OCCUPATION], teams=[team])
    assert named_closed["__typename"] == "ValidationFailed"
    # only a citizen joins
    by_client = await api.gql(
        employer.token,
        JOIN,
        {
            "input": {
                "teamCheckId": team,
                "disclosure": "NAMED",
                "expiresAt": in_days(30),
                "idempotencyKey": factories.ref(),
            }
        },
    )
    assert by_client["data"]["joinTeamCheck"]["__typename"] == "NotAuthorized"


async def test_profiles_belong_to_their_organisation(api: Api) -> None:
    employer = await hr(api)
    ref = factories.ref()
    first = await profile(api, employer, [{"competenceUri": PY}], ref=ref)
    replaced = await profile(
        api,
        employer,
        [{"competenceUri": SQL, "minimumLevel": {"scale": "CEFR", "level": "b2"}}],
        ref=ref,
    )
    assert replaced == first
    listed = await api.gql(
        employer.token,
        "{ competenceProfiles { id competences { competence { uri } minimumLevel { level } } } }",
    )
    [mine] = listed["data"]["competenceProfiles"]
    assert mine["competences"] == [{"competence": {"uri": SQL}, "minimumLevel": {"level": "B2"}}]
    other = await hr(api)
    assert (await api.gql(other.token, "{ competenceProfiles { id } }"))["data"][
        "competenceProfiles"
    ] == []
    stolen = await api.gql(other.token, ARCHIVE_PROFILE, {"id": first})
    assert stolen["data"]["archiveCompetenceProfile"]["__typename"] == "NotFound"
    archived = await api.gql(employer.token, ARCHIVE_PROFILE, {"id": first})
    assert archived["data"]["archiveCompetenceProfile"]["profile"]["archivedAt"] is not None
    assert (await check(api, employer, profile=first))["__typename"] == "ValidationFailed"
    bad = await api.gql(
        employer.token,
        SAVE_PROFILE,
        {
            "input": {
                "externalRef": factories.ref(),
                "name": "x",
                "competences": [{"competenceUri": PY}, {"competenceUri": PY}],
            }
        },
    )
    assert bad["data"]["saveCompetenceProfile"]["__typename"] == "ValidationFailed"
    both = await api.gql(employer.token, CHECK, {"occupations": [OCCUPATION], "profile": first})
    assert both["data"]["teamCompetenceCheck"]["__typename"] == "ValidationFailed"
    many = await api.gql(employer.token, CHECK, {"occupations": [OCCUPATION] * 6})
    assert many["data"]["teamCompetenceCheck"]["__typename"] == "ValidationFailed"


async def test_a_team_check_counts_the_claims_a_passport_calls_active(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    """The check's aggregate reads current claims by ``views.current``, the passport's by its
    status: the two rules must agree on every kind of claim."""
    from service import clock
    from service.claims.views import claims_select, current
    from service.models import Claim
    from tests.test_claims_api import REVOKE, SUPERSEDE

    insz = factories.insz()
    await issue(api, school, factories.claim_input(insz))  # active
    revoked = (await issue(api, school, factories.claim_input(insz, SQL)))["claim"]
    await api.gql(school.token, REVOKE, {"input": {"claimId": revoked["id"], "reason": "wrong"}})
    await issue(api, school, factories.claim_input(insz, EN, validUntil="2021-01-01"))  # expired
    old = (await issue(api, school, factories.claim_input(insz, TEAM)))["claim"]
    newer = {
        k: v for k, v in factories.claim_input(insz).items() if k not in ("insz", "competenceUri")
    }
    await api.gql(school.token, SUPERSEDE, {"input": {**newer, "claimId": old["id"]}})
    async with engine.connect() as conn:
        citizen = await conn.scalar(
            select(Claim.citizen_id).where(Claim.claim_id == uuid.UUID(old["id"]))
        )
        statuses = {
            row.claim_id: row.status
            for row in await conn.execute(
                claims_select(Claim.citizen_id == citizen), {"today": clock.today()}
            )
        }
        found = set(
            await conn.scalars(
                select(Claim.claim_id).where(Claim.citizen_id == citizen, current()),
                {"today": clock.today()},
            )
        )
    assert sorted(statuses.values()) == ["active", "active", "expired", "revoked", "superseded"]
    assert found == {claim for claim, status in statuses.items() if status == "active"}


async def test_a_planned_team_check_is_what_graphql_core_completes(
    api: Api, school: Partner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Competences and named people are completed by compiled plans (``PLANNED_TYPES``): the
    answer is the one graphql-core gives field by field."""
    import service.schema
    from service.schema.passports import execution

    employer = await hr(api)
    team = await team_check(api, employer)
    for i in range(6):
        await member(
            api, school, team, "NAMED" if i % 2 else "COUNTED", {PY: {}, SQL: OLD} if i else {}
        )
    target = await profile(
        api,
        employer,
        [
            {"competenceUri": PY, "minimumLevel": {"scale": "EQF", "level": "6"}},
            {"competenceUri": SQL},
            {"competenceUri": EN, "essential": False},
        ],
    )
    plans: list[Any] = []

    def recording(*args: Any) -> Any:
        plans.append(execution.plan_for(*args))
        return plans[-1]

    monkeypatch.setattr(service.schema, "plan_for", recording)
    planned = await check(api, employer, profile=target)
    monkeypatch.setattr(service.schema, "PLANNED_TYPES", frozenset())
    general = await check(api, employer, profile=target)
    assert planned == general and planned["__typename"] == "TeamCompetenceCheck"
    assert plans and all(plan is not None for plan in plans)


def _compositions(total: int, parts: int) -> Any:
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


@settings(max_examples=150, deadline=None)
@given(
    counted=st.lists(st.integers(0, 3), min_size=6, max_size=6).filter(
        lambda c: MIN_GROUP <= sum(c) <= 10
    ),
    named=st.lists(st.integers(0, 6), min_size=6, max_size=6),
)
def test_what_is_shown_never_pins_down_a_few_counted_only_people(
    counted: list[int], named: list[int]
) -> None:
    """Brute force over every way the counted-only people could be spread over the six
    statuses: whatever the answer shows, no withheld number's counted-only part is pinned to
    1 to 4 people."""
    from service.models.enums import TeamRequirementStatus as S
    from service.teams.check import GAP, SHOWN_STATUSES, team_row

    cells = list(SHOWN_STATUSES)
    gap_of = (S.BELOW_LEVEL, S.SELF_DECLARED, S.MISSING)
    people: dict[Any, tuple[int, int]] = {
        cell: (n, c) for cell, n, c in zip(cells, named, counted, strict=True)
    }
    people[GAP] = (sum(people[c][0] for c in gap_of), sum(people[c][1] for c in gap_of))
    row = team_row(people, sum(counted))
    shown = {cell: n.count for cell, n in row.items() if n.count is not None}
    possible: dict[Any, set[int]] = {cell: set() for cell in row if cell not in shown}
    for spread in _compositions(sum(counted), 6):
        candidate = dict(zip(cells, spread, strict=True))
        candidate[GAP] = sum(candidate[c] for c in gap_of)
        if all(people[cell][0] + candidate[cell] == value for cell, value in shown.items()):
            for cell in possible:
                possible[cell].add(candidate[cell])
    for cell, values in possible.items():
        assert not (len(values) == 1 and 0 < min(values) < MIN_GROUP), (cell, values, row)
