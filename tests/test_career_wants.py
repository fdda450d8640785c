"""What the citizen wants: stances on competences and career goals, private unless a grant
includes them, and how they move occupationMatches and the competence check.

The worked example (ESCO v1.1.1): a passport with the four essential competences of W,
"warehouse operators for clothing", verified. Without wants W fits 1.0 and ranks first, F
("clothing finisher", 3 of 7) second, HAND_PACKER (1 of 9) lower. Then the citizen would rather
not use SUPPLY_CHAIN any more, wants to develop DECORATE_TEXTILE and MANUFACTURE_APPAREL (both
essential to F) and names HAND_PACKER as a goal:

    W            1.0    - 0.10 (SUPPLY_CHAIN, rather not)                  = 0.9
    F            3/7    - 0.10 (SUPPLY_CHAIN) + 0.10 (two to develop)      = 0.4286
    HAND_PACKER  1/9    + 0.25 (goal)                                      = 0.3611
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.events.chain import verify_chain
from service.models import AccessRecord, CitizenEvent
from tests import factories
from tests.career_api import (
    CHECK,
    DECORATE_TEXTILE,
    DROP_GOAL,
    HAND_PACKER,
    MANUFACTURE_APPAREL,
    MATCHES,
    PACK_GOODS,
    PROFILE,
    SET_GOAL,
    SET_WANT,
    SIZING,
    SUPPLY_CHAIN,
    WAREHOUSING,
    F,
    W,
    by_uri,
    goal,
    run,
    want,
)
from tests.citizen_api import ERASE, REVOKE_GRANT, grant
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue

W_ESSENTIAL = (WAREHOUSING, SUPPLY_CHAIN, PACK_GOODS, SIZING)


async def _citizen_of_w(api: Api, school: Partner) -> str:
    citizen = factories.insz()
    for uri in W_ESSENTIAL:
        await issue(
            api,
            school,
            factories.claim_input(citizen, uri, acquiredOn="2021-01-01", lastUsedOn="2025-01-01"),
        )
    return citizen


async def _wants_of_the_example(api: Api, me: str) -> None:
    await want(api, me, SUPPLY_CHAIN, "RATHER_NOT")
    await want(api, me, DECORATE_TEXTILE, "DEVELOP")
    await want(api, me, MANUFACTURE_APPAREL, "DEVELOP")
    await goal(api, me, HAND_PACKER, 2030)


async def competence_ids(engine: AsyncEngine, uris: list[str]) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT uri, id FROM competences WHERE uri = ANY(:uris)"), {"uris": uris}
        )
        return {uri: id_ for uri, id_ in rows}


async def occupation_id(engine: AsyncEngine, uri: str) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(text("SELECT id FROM occupations WHERE uri = :u"), {"u": uri})
    return int(found)


async def _citizen_id(engine: AsyncEngine, api: Api, citizen: str) -> uuid.UUID:
    body = await api.gql(api.citizen(citizen), "{ me { passport { citizenId } } }")
    return uuid.UUID(body["data"]["me"]["passport"]["citizenId"])


async def test_wants_and_goals_are_set_changed_cleared_and_chained(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen = factories.insz()
    me = api.citizen(citizen)
    # Any ESCO competence, in the passport or not; the first one makes the citizen.
    first = await want(api, me, WAREHOUSING, "USE_MORE")
    assert first == {
        "__typename": "CompetenceWantSet",
        "competence": {"uri": WAREHOUSING},
        "want": "USE_MORE",
        "changed": True,
    }
    assert (await want(api, me, WAREHOUSING, "USE_MORE"))["changed"] is False  # a retry
    assert (await want(api, me, WAREHOUSING, "DEVELOP"))["changed"] is True
    cleared = await want(api, me, WAREHOUSING, None)
    assert (cleared["want"], cleared["changed"]) == (None, True)
    assert (await want(api, me, WAREHOUSING, None))["changed"] is False
    await want(api, me, SUPPLY_CHAIN, "RATHER_NOT")
    # Clearing for someone nobody knows makes no citizen.
    stranger = await want(api, api.citizen(factories.insz()), PACK_GOODS, None)
    assert stranger["changed"] is False

    made = await goal(api, me, W, 2030)
    assert made["changed"] is True and made["goal"] == {
        "occupation": {"uri": W},
        "horizonYear": 2030,
        "active": True,
    }
    assert (await goal(api, me, W, 2030))["changed"] is False
    assert (await goal(api, me, W, 2031))["goal"]["horizonYear"] == 2031
    await goal(api, me, F)
    dropped = await run(api, me, DROP_GOAL, "dropCareerGoal", uri=F)
    assert dropped["changed"] is True and dropped["goal"]["active"] is False
    assert (await run(api, me, DROP_GOAL, "dropCareerGoal", uri=F))["changed"] is False
    never = await run(api, me, DROP_GOAL, "dropCareerGoal", uri=HAND_PACKER)
    assert never["code"] == "NOT_FOUND"

    profile = await run(api, me, PROFILE, "careerProfile", citizen={"insz": citizen})
    assert profile["wantsShown"] and profile["workHistoryShown"]
    assert [(w["competence"]["uri"], w["want"]) for w in profile["wants"]] == [
        (SUPPLY_CHAIN, "RATHER_NOT")
    ]
    assert profile["goals"] == [{"occupation": {"uri": W}, "horizonYear": 2031, "active": True}]

    # Every change is in the citizen's hash chain, which still verifies.
    citizen_id = await _citizen_id(engine, api, citizen)
    async with engine.connect() as conn:
        types = list(
            await conn.scalars(
                select(CitizenEvent.event_type)
                .where(CitizenEvent.citizen_id == citizen_id)
                .order_by(CitizenEvent.seq)
            )
        )
    assert types == ["career.want_set"] * 4 + ["career.goal_set"] * 4
    assert await verify_chain(engine, citizen_id) == []
    # A stance or goal changed behind the service's back no longer matches its event.
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE competence_wants SET stance = 'develop' WHERE citizen_id = :c"),
            {"c": citizen_id},
        )
        await conn.execute(
            text("UPDATE career_goals SET horizon_year = 2040 WHERE citizen_id = :c AND active"),
            {"c": citizen_id},
        )
    reasons = sorted(b.reason for b in await verify_chain(engine, citizen_id))
    ids = await competence_ids(engine, [WAREHOUSING, SUPPLY_CHAIN])
    goal_id = await occupation_id(engine, W)
    assert reasons == sorted(
        [
            f"want {ids[WAREHOUSING]} differs from its event",  # cleared, by its last event
            f"want {ids[SUPPLY_CHAIN]} differs from its event",
            f"career goal {goal_id} differs from its event",
        ]
    )
    # Erased, the tampered rows go: other tests verify every chain in the database.
    assert (await api.gql(me, ERASE))["data"]["requestErasure"]["erasureId"]


async def test_bad_wants_and_goals_are_typed_errors_and_only_citizens_set_them(
    api: Api, school: Partner
) -> None:
    me = api.citizen(factories.insz())
    for data, field in (
        ({"competenceUri": factories.SKILL_GROUP, "want": "DEVELOP"}, "input.competenceUri"),
        ({"competenceUri": W, "want": "DEVELOP"}, "input.competenceUri"),
        ({"competenceUri": "not a uri", "want": "DEVELOP"}, "input.competenceUri"),
    ):
        result = await run(api, me, SET_WANT, "setCompetenceWant", input=data)
        assert result["code"] == "VALIDATION_FAILED", data
        assert [p["field"] for p in result["problems"]] == [field]
    goals: tuple[tuple[dict[str, object], str], ...] = (
        ({"occupationUri": WAREHOUSING}, "input.occupationUri"),
        ({"occupationUri": W, "horizonYear": 2001}, "input"),
        ({"occupationUri": W, "horizonYear": 2999}, "input"),
    )
    for goal_input, field in goals:
        result = await run(api, me, SET_GOAL, "setCareerGoal", input=goal_input)
        assert result["code"] == "VALIDATION_FAILED", goal_input
        assert [p["field"] for p in result["problems"]] == [field]
    for token in (school.token, api.admin()):
        denied = await run(
            api, token, SET_WANT, "setCompetenceWant", input={"competenceUri": SIZING, "want": None}
        )
        assert denied["code"] == "NOT_AUTHORIZED"
        denied = await run(api, token, SET_GOAL, "setCareerGoal", input={"occupationUri": W})
        assert denied["code"] == "NOT_AUTHORIZED"


def _points(match: dict[str, Any]) -> dict[str, tuple[float, list[str]]]:
    return {
        r["kind"]: (r["points"], [c["uri"] for c in r["competences"]])
        for r in match["standing"]["reasons"]
    }


async def test_matches_rank_by_fit_and_wants_and_say_why(api: Api, school: Partner) -> None:
    citizen = await _citizen_of_w(api, school)
    me = api.citizen(citizen)
    who = {"insz": citizen}
    before = await run(api, me, MATCHES, "occupationMatches", citizen=who, first=20)
    assert before["wants"]["applied"] is False and before["wants"]["shown"] is True
    assert before["wants"]["en"]["text"].startswith("No wants or career goals are recorded")
    plain = [m["occupation"]["uri"] for m in before["matches"]]
    assert plain[:2] == [W, F] and plain.index(HAND_PACKER) > 2
    assert before["matches"][0]["score"] == 1.0
    assert _points(before["matches"][0]) == {"FIT": (1.0, [])}

    await _wants_of_the_example(api, me)
    after = await run(api, me, MATCHES, "occupationMatches", citizen=who, first=20)
    matches = after["matches"]
    assert [m["occupation"]["uri"] for m in matches[:3]] == [W, F, HAND_PACKER]
    assert [m["rank"] for m in matches] == list(range(1, len(matches) + 1))
    scores = [m["score"] for m in matches]
    assert scores == sorted(scores, reverse=True)
    w, f, packer = matches[:3]
    assert (w["score"], f["score"], packer["score"]) == (0.9, 0.4286, 0.3611)
    # The reasons add up to the score the database ranked by.
    for match in matches:
        total = sum(points for points, _ in _points(match).values())
        assert abs(total - match["score"]) < 1e-3, match
    assert _points(w) == {"FIT": (1.0, []), "RATHER_NOT": (-0.1, [SUPPLY_CHAIN])}
    f_points = _points(f)
    assert set(f_points) == {"FIT", "RATHER_NOT", "DEVELOP"}
    assert f_points["FIT"] == (0.4286, [])
    assert f_points["RATHER_NOT"] == (-0.1, [SUPPLY_CHAIN])
    assert f_points["DEVELOP"][0] == 0.1
    assert sorted(f_points["DEVELOP"][1]) == sorted([DECORATE_TEXTILE, MANUFACTURE_APPAREL])
    assert _points(packer)["GOAL"] == (0.25, [])
    # A competence they would rather not use is never shown as a strength.
    assert w["essentialHeld"] == 4
    assert SUPPLY_CHAIN not in {c["uri"] for c in w["matched"]}
    assert w["ratherNot"] == [{"uri": SUPPLY_CHAIN}]
    reasons = {r["kind"]: r for r in w["standing"]["reasons"]}
    assert reasons["RATHER_NOT"]["nl"] == {
        "text": "Steunt op 1 competentie(s) die je liever niet meer gebruikt.",
        "language": "nl",
    }
    assert reasons["RATHER_NOT"]["en"]["language"] == "en"
    goal_reason = {r["kind"]: r for r in packer["standing"]["reasons"]}["GOAL"]
    assert goal_reason["en"]["text"] == "Is one of your career goals, by 2030."
    assert after["wants"]["applied"] is True
    assert after["wants"]["nl"]["text"] == (
        "De rangschikking houdt rekening met 3 voorkeur(en) voor competenties en "
        "1 loopbaandoel(en)."
    )


async def test_the_check_shows_each_want_and_never_a_reluctant_strength(
    api: Api, school: Partner
) -> None:
    citizen = await _citizen_of_w(api, school)
    me = api.citizen(citizen)
    await _wants_of_the_example(api, me)
    result = await run(api, me, CHECK, "competenceCheck", citizen={"insz": citizen}, occupation=W)
    requirements = by_uri(result["requirements"])
    assert requirements[SUPPLY_CHAIN] | {"competence": None} == {
        "competence": None,
        "essential": True,
        "status": "HELD",
        "light": "AMBER",  # held, but not a strength
        "want": "RATHER_NOT",
        "strength": False,
    }
    assert requirements[WAREHOUSING]["strength"] is True
    assert requirements[WAREHOUSING]["light"] == "GREEN"
    assert requirements[WAREHOUSING]["want"] is None
    assert result["standing"]["score"] == 0.9
    assert [r["kind"] for r in result["standing"]["reasons"]] == ["FIT", "RATHER_NOT"]


async def test_a_reader_sees_wants_only_under_a_grant_that_includes_them(
    api: Api, school: Partner, reader: Partner, engine: AsyncEngine
) -> None:
    citizen = await _citizen_of_w(api, school)
    me = api.citizen(citizen)
    await _wants_of_the_example(api, me)
    await want(api, me, WAREHOUSING, "USE_MORE")
    who = {"insz": citizen}
    employer = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))

    async def as_employer(**options: Any) -> dict[str, Any]:
        return await grant(
            api,
            me,
            granteeKind="ORGANISATION",
            organisationId=str(employer.organisation_id),
            **options,
        )

    plain = await as_employer()
    profile = await run(api, employer.token, PROFILE, "careerProfile", citizen=who)
    assert profile["wantsShown"] is False and profile["workHistoryShown"] is False
    assert profile["wants"] == profile["goals"] == profile["workHistory"] == []
    matches = await run(api, employer.token, MATCHES, "occupationMatches", citizen=who, first=20)
    assert matches["wants"]["shown"] is False
    assert matches["wants"]["en"]["text"].startswith("What the citizen wants is not shared")
    w = matches["matches"][0]
    assert (w["occupation"]["uri"], w["score"], w["ratherNot"]) == (W, 1.0, [])
    assert [m["occupation"]["uri"] for m in matches["matches"]].index(HAND_PACKER) > 2
    check = await run(api, employer.token, CHECK, "competenceCheck", citizen=who, occupation=W)
    assert {r["want"] for r in check["requirements"]} == {None}
    assert by_uri(check["requirements"])[SUPPLY_CHAIN]["strength"] is True
    await api.gql(me, REVOKE_GRANT, {"id": plain["grant"]["id"]})

    # Wants included, but the grant covers one competence: stances on that one only.
    scoped = await as_employer(includeWants=True, competenceUris=[WAREHOUSING])
    assert scoped["grant"]["competences"] == [{"uri": WAREHOUSING}]
    profile = await run(api, employer.token, PROFILE, "careerProfile", citizen=who)
    assert profile["wantsShown"] is True
    assert [(w["competence"]["uri"], w["want"]) for w in profile["wants"]] == [
        (WAREHOUSING, "USE_MORE")
    ]
    assert [g["occupation"]["uri"] for g in profile["goals"]] == [HAND_PACKER]
    await api.gql(me, REVOKE_GRANT, {"id": scoped["grant"]["id"]})

    await as_employer(includeWants=True)
    mine = await run(api, me, MATCHES, "occupationMatches", citizen=who, first=20)
    theirs = await run(api, employer.token, MATCHES, "occupationMatches", citizen=who, first=20)
    assert theirs == mine  # what the citizen sees, once they share it
    assert theirs["matches"][0]["ratherNot"] == [{"uri": SUPPLY_CHAIN}]

    # A legal basis is for the record of competences, not the citizen's plans.
    legal = await api.gql(
        reader.token, PROFILE, {"citizen": who, "basis": "GUIDANCE", "purpose": "intake"}
    )
    assert legal["data"]["careerProfile"]["wantsShown"] is False
    assert legal["data"]["careerProfile"]["wants"] == []
    # Nobody without a grant or a basis learns anything, and nothing is logged for them.
    stranger = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    refused = await run(api, stranger.token, PROFILE, "careerProfile", citizen=who)
    assert refused == {"__typename": "NotFound", "code": "NOT_FOUND", "message": refused["message"]}
    async with engine.connect() as conn:
        logged = await conn.scalar(
            select(func.count())
            .select_from(AccessRecord)
            .where(
                AccessRecord.organisation_id == employer.organisation_id,
                AccessRecord.operation == "career_profile",
            )
        )
        by_stranger = await conn.scalar(
            select(func.count())
            .select_from(AccessRecord)
            .where(AccessRecord.organisation_id == stranger.organisation_id)
        )
    assert (logged, by_stranger) == (2, 0)
