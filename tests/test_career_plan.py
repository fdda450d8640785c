"""One action plan towards a goal: gaps, lights, wants and learning offers in ordered steps,
each with why; a read of the passport, authorized and logged as `passport` is.

The worked example (ESCO v1.1.1): the goal is F, "clothing finisher" (by 2028), 7 essential:

    WAREHOUSING          verified, used 2025      HELD, but the citizen would rather not use it
    CLOTHING_INDUSTRY    verified, used 2025      HELD
    SUPPLY_CHAIN         verified, used 2012      STALE (and a signal says its demand falls)
    CLOTHING_SIZES       self-declared            SELF_DECLARED
    PACK_GOODS           -                        MISSING, but suggested: W was held 2015-2020
    DECORATE_TEXTILE     -                        MISSING, the citizen wants to develop it
    MANUFACTURE_APPAREL  -                        MISSING

The passport also holds PYTHON, verified, whose demand a signal says falls. A provider offers
one course teaching DECORATE_TEXTILE, CLOTHING_SIZES and MANUFACTURE_APPAREL. So the steps:
RECONSIDER (WAREHOUSING), MARKET (F rising, ISCO 9321), REFRESH (SUPPLY_CHAIN), VERIFY
(CLOTHING_SIZES, PACK_GOODS), then LEARN with that course first (it closes a gap they want to
develop). Standing: 3 of 7 verified (0.4286) - 0.10 (rather not) + 0.05 (develop) + 0.25 (goal)
= 0.6286.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.career import signals
from service.models import AccessRecord
from tests import factories
from tests.career_api import (
    CLOTHING_INDUSTRY,
    CLOTHING_SIZES,
    DECORATE_TEXTILE,
    FW,
    MANUFACTURE_APPAREL,
    PACK_GOODS,
    PLAN,
    SHARED_PROFILE,
    SUPPLY_CHAIN,
    WAREHOUSING,
    F,
    W,
    by_uri,
    goal,
    run,
    want,
    worked,
)
from tests.citizen_api import SELF_DECLARE, grant
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue
from tests.test_competence_check import PUBLISH

SIGNALS = "\n".join(
    [
        "occupationUri,skillUri,iscoCode,kind,region,horizonYear,source,publishedOn",
        ",,9321,rising_demand,BE2,2028,Plan forecast,2025-05-01",
        f",{SUPPLY_CHAIN},,falling_demand,BE,2030,Plan forecast,2025-05-01",
        f",{factories.PYTHON},,falling_demand,BE,2030,Plan forecast,2025-05-01",
    ]
)


async def _example(api: Api, school: Partner, engine: AsyncEngine, tmp_path: Path) -> str:
    path = tmp_path / "signals.csv"
    path.write_text(SIGNALS + "\n")
    assert (await signals.import_signals(engine, path)).status == "imported"
    citizen = factories.insz()
    for uri, used in (
        (WAREHOUSING, "2025-01-01"),
        (CLOTHING_INDUSTRY, "2025-01-01"),
        (SUPPLY_CHAIN, "2012-01-01"),
        (factories.PYTHON, "2025-01-01"),
    ):
        await issue(
            api,
            school,
            factories.claim_input(citizen, uri, acquiredOn="2010-01-01", lastUsedOn=used),
        )
    me = api.citizen(citizen)
    declared = await api.gql(
        me, SELF_DECLARE, {"input": {"competenceUri": CLOTHING_SIZES, "acquiredOn": "2018-01-01"}}
    )
    assert declared["data"]["selfDeclare"]["created"] is True
    await worked(api, me, W, "2015-01-01", "2020-12-31")
    await want(api, me, WAREHOUSING, "RATHER_NOT")
    await want(api, me, DECORATE_TEXTILE, "DEVELOP")
    await goal(api, me, F, 2028)
    await goal(api, me, W, 2035)
    return citizen


async def _course(api: Api, school: Partner, title: str, uris: list[str]) -> None:
    body = await api.gql(
        school.token,
        PUBLISH,
        {
            "input": {
                "externalRef": factories.ref(),
                "title": title,
                "mode": "ONLINE",
                "language": "nl",
                "url": "https://example.org/course",
                "competenceUris": uris,
                "durationHours": 40,
            }
        },
    )
    assert body["data"]["publishLearningOpportunity"]["__typename"] == "OpportunityPublished"


def _uris(items: list[dict[str, Any]]) -> set[str]:
    return {item["uri"] for item in items}


async def test_one_plan_orders_gaps_lights_wants_and_offers(
    no_signals: None, api: Api, school: Partner, engine: AsyncEngine, tmp_path: Path
) -> None:
    citizen = await _example(api, school, engine, tmp_path)
    title = f"{factories.ref()} afwerking"
    await _course(api, school, title, [DECORATE_TEXTILE, CLOTHING_SIZES, MANUFACTURE_APPAREL])
    me = api.citizen(citizen)
    plan = await run(api, me, PLAN, "careerPlan", citizen={"insz": citizen})  # the nearest goal
    assert (plan["goal"], plan["isGoal"], plan["horizonYear"]) == ({"uri": F}, True, 2028)
    assert plan["standing"]["score"] == 0.6286
    assert [r["kind"] for r in plan["standing"]["reasons"]] == [
        "FIT",
        "DEVELOP",
        "RATHER_NOT",
        "GOAL",
    ]
    assert plan["essential"] == {
        "total": 7,
        "held": 2,
        "stale": 1,
        "partial": 0,
        "selfDeclared": 1,
        "missing": 3,
        "notShared": 0,
    }
    assert _uris(plan["suggestedCompetences"]) == {PACK_GOODS}
    requirements = by_uri(plan["requirements"])
    assert (requirements[WAREHOUSING]["want"], requirements[WAREHOUSING]["strength"]) == (
        "RATHER_NOT",
        False,
    )
    steps = plan["steps"]
    assert [s["position"] for s in steps] == list(range(1, len(steps) + 1))
    kinds = [s["kind"] for s in steps]
    assert kinds[:5] == ["RECONSIDER", "MARKET", "REFRESH", "VERIFY", "LEARN"]
    assert set(kinds[5:]) <= {"LEARN", "FIND_LEARNING"}
    reconsider, market, refresh, verify, learn = steps[:5]
    assert _uris(reconsider["competences"]) == {WAREHOUSING}
    assert reconsider["nl"] == {
        "text": "Dit doel steunt op 1 competentie(s) die je liever niet meer gebruikt: bespreek "
        "met je loopbaanbegeleider of het doel bij je past.",
        "language": "nl",
    }
    assert market["lights"] == [{"kind": "OCCUPATION_RISING", "competences": []}]
    assert market["en"]["text"] == (
        "Demand for this occupation is rising according to Plan forecast (BE2, horizon 2028)."
    )
    assert _uris(refresh["competences"]) == {SUPPLY_CHAIN}
    assert refresh["lights"] == [
        {"kind": "COMPETENCE_FALLING", "competences": [{"uri": SUPPLY_CHAIN}]}
    ]
    assert refresh["en"]["text"].startswith("1 essential competence(s) are verified but unused")
    assert _uris(verify["competences"]) == {CLOTHING_SIZES, PACK_GOODS}
    assert "recognition of prior learning (EVC)" in verify["en"]["text"]
    assert learn["opportunity"] == {"title": title}
    assert _uris(learn["competences"]) == {DECORATE_TEXTILE, CLOTHING_SIZES, MANUFACTURE_APPAREL}
    assert learn["en"]["text"] == (
        "This offer closes 3 missing essential competence(s), 1 of which you want to develop."
    )
    assert learn["nl"]["language"] == "nl"
    # The plan's lights: the goal's market, what went stale for it, and every held competence
    # in falling demand, the one the goal does not ask for (PYTHON) too.
    lights = {(x["kind"], tuple(sorted(_uris(x["competences"])))) for x in plan["lights"]}
    assert lights == {
        ("OCCUPATION_RISING", ()),
        ("STALE_FOR_GOAL", (SUPPLY_CHAIN,)),
        ("COMPETENCE_FALLING", (SUPPLY_CHAIN,)),
        ("COMPETENCE_FALLING", (factories.PYTHON,)),
    }
    assert plan["signals"]["forecastsLoaded"] is True
    # Another goal named explicitly; an occupation that is no goal is planned for all the same.
    other = await run(api, me, PLAN, "careerPlan", citizen={"insz": citizen}, goal=FW)
    assert (other["goal"], other["isGoal"], other["horizonYear"]) == ({"uri": FW}, False, None)
    found = [s for s in other["steps"] if s["kind"] == "FIND_LEARNING"]
    assert found and found[0]["en"]["text"].startswith("No learning offer is published for")
    digital = {x["kind"]: x["color"] for x in other["lights"]}["DIGITAL_GAP"]
    assert digital == "AMBER"  # PYTHON is digital, though not what FW asks for


async def test_the_plan_is_a_logged_read_within_what_the_reader_may_see(
    no_signals: None,
    api: Api,
    school: Partner,
    reader: Partner,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    citizen = await _example(api, school, engine, tmp_path)
    me = api.citizen(citizen)
    who = {"insz": citizen}
    employer = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))

    passport = await api.gql(me, "{ me { passport { citizenId } } }")
    citizen_id = passport["data"]["me"]["passport"]["citizenId"]

    async def reads(organisation: Any = None) -> int:
        async with engine.connect() as conn:
            query = (
                select(func.count())
                .select_from(AccessRecord)
                .where(
                    AccessRecord.citizen_id == citizen_id,
                    AccessRecord.operation == "career_plan",
                )
            )
            if organisation is not None:
                query = query.where(AccessRecord.organisation_id == organisation)
            return int(await conn.scalar(query) or 0)

    # Refused: no grant, a partner, an admin; an unknown goal is refused before any read.
    for token in (employer.token, school.token, api.admin()):
        refused = await run(api, token, PLAN, "careerPlan", citizen=who, goal=F)
        assert refused["code"] == "NOT_FOUND", token
    unknown = await run(api, me, PLAN, "careerPlan", citizen=who, goal=F + "x")
    assert unknown["code"] == "NOT_FOUND"
    assert await reads() == 0
    await run(api, me, PLAN, "careerPlan", citizen=who, goal=F)
    assert await reads() == 1

    # Under a plain grant: no wants, no goals, no work history in the plan.
    await grant(api, me, granteeKind="ORGANISATION", organisationId=str(employer.organisation_id))
    no_goal = await run(api, employer.token, PLAN, "careerPlan", citizen=who)
    assert (no_goal["code"], no_goal["problems"][0]["field"]) == ("VALIDATION_FAILED", "goalUri")
    theirs = await run(api, employer.token, PLAN, "careerPlan", citizen=who, goal=F)
    assert (theirs["isGoal"], theirs["horizonYear"]) == (False, None)
    assert theirs["wants"]["shown"] is False
    assert [r["kind"] for r in theirs["standing"]["reasons"]] == ["FIT"]
    assert {r["want"] for r in theirs["requirements"]} == {None}
    assert theirs["suggestedCompetences"] == []
    kinds = [s["kind"] for s in theirs["steps"]]
    assert "RECONSIDER" not in kinds
    verify = next(s for s in theirs["steps"] if s["kind"] == "VERIFY")
    assert _uris(verify["competences"]) == {CLOTHING_SIZES}  # PACK_GOODS came from the history
    assert await reads(employer.organisation_id) == 2  # the refused attempt was no read

    # A legal basis: the record of competences, never the citizen's wants or history.
    legal = await run(
        api,
        reader.token,
        PLAN,
        "careerPlan",
        citizen=who,
        goal=F,
        basis="GUIDANCE",
        purpose="intake",
    )
    assert legal["wants"]["shown"] is False and legal["suggestedCompetences"] == []

    # With both included, the reader sees the plan the citizen sees.
    await grant(
        api,
        me,
        granteeKind="ORGANISATION",
        organisationId=str(employer.organisation_id),
        includeWants=True,
        includeWorkHistory=True,
    )
    full = await run(api, employer.token, PLAN, "careerPlan", citizen=who)
    mine = await run(api, me, PLAN, "careerPlan", citizen=who)
    assert full == mine


async def test_a_share_link_shows_wants_only_when_it_includes_them(
    api: Api, school: Partner
) -> None:
    citizen = factories.insz()
    me = api.citizen(citizen)
    await issue(api, school, factories.claim_input(citizen, WAREHOUSING))
    await want(api, me, WAREHOUSING, "USE_MORE")
    await worked(api, me, W, "2019-01-01")
    plain = await grant(api, me)
    body = await api.post(plain["shareLink"]["token"], SHARED_PROFILE)
    profile = body.json()["data"]["sharedCareerProfile"]
    assert (profile["wantsShown"], profile["wants"], profile["workHistory"]) == (False, [], [])
    both = await grant(api, me, includeWants=True, includeWorkHistory=True)
    assert (both["grant"]["includeWants"], both["grant"]["includeWorkHistory"]) == (True, True)
    body = await api.post(both["shareLink"]["token"], SHARED_PROFILE)
    profile = body.json()["data"]["sharedCareerProfile"]
    assert [w["want"] for w in profile["wants"]] == ["USE_MORE"]
    assert [e["occupation"]["uri"] for e in profile["workHistory"]] == [W]
    # Only a link's holder: anyone else's token gets nothing.
    denied = await api.gql(me, SHARED_PROFILE)
    assert denied["data"]["sharedCareerProfile"]["code"] == "NOT_FOUND"
