"""Work history: recorded by the citizen or, as a statement about them, by an employer; the
competences it suggests; and the career paths it leads to.

The worked example (ESCO v1.1.1): the citizen held W, "warehouse operators for clothing"
(essential WAREHOUSING, SUPPLY_CHAIN, PACK_GOODS, SIZING), from 2015-03-01 to 2020-06-30. The
passport has WAREHOUSING and CLOTHING_INDUSTRY verified and SIZING self-declared. So:

- suggested: SUPPLY_CHAIN and PACK_GOODS, both from W, since 2015-03-01, until 2020-06-30;
- F, "clothing finisher", 7 essential: WAREHOUSING and CLOTHING_INDUSTRY verified (1 each),
  PACK_GOODS and SUPPLY_CHAIN suggested (1/4 each), MANUFACTURE_APPAREL, CLOTHING_SIZES and
  DECORATE_TEXTILE missing: (1 + 1 + 0.25 + 0.25) / 7 = 0.3571, the best path. Once PACK_GOODS
  is accepted as self-declared (1/2): (1 + 1 + 0.5 + 0.25) / 7 = 0.3929.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.events.chain import verify_chain
from service.models import CitizenEvent
from tests import factories
from tests.career_api import (
    ACCEPT,
    CLOTHING_INDUSTRY,
    CLOTHING_SIZES,
    DECORATE_TEXTILE,
    MANUFACTURE_APPAREL,
    PACK_GOODS,
    PATHS,
    PROFILE,
    RECORD_EMPLOYMENT,
    RECORD_WORK,
    SIZING,
    SUPPLY_CHAIN,
    WAREHOUSING,
    WITHDRAW_EMPLOYMENT,
    WITHDRAW_WORK,
    F,
    W,
    by_uri,
    goal,
    run,
    want,
    worked,
)
from tests.citizen_api import ERASE, EXPORT, MY_PASSPORT, REVOKE_GRANT, SELF_DECLARE, grant
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue
from tests.test_competence_check import PUBLISH


async def _example(api: Api, school: Partner) -> tuple[str, dict[str, Any]]:
    citizen = factories.insz()
    for uri in (WAREHOUSING, CLOTHING_INDUSTRY):
        await issue(
            api,
            school,
            factories.claim_input(citizen, uri, acquiredOn="2016-01-01", lastUsedOn="2025-01-01"),
        )
    me = api.citizen(citizen)
    body = await api.gql(
        me, SELF_DECLARE, {"input": {"competenceUri": SIZING, "acquiredOn": "2016-01-01"}}
    )
    assert body["data"]["selfDeclare"]["created"] is True
    entry = await worked(api, me, W, "2015-03-01", "2020-06-30", employerName="Kledingdepot")
    assert entry["created"] is True
    return citizen, entry["experience"]


async def test_the_citizen_records_work_and_sees_what_it_suggests(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen, entry = await _example(api, school)
    me = api.citizen(citizen)
    assert entry | {"id": None} == {
        "id": None,
        "occupation": {"uri": W},
        "recordedBy": "CITIZEN",
        "organisation": None,
        "employer": "Kledingdepot",
        "startedOn": "2015-03-01",
        "endedOn": "2020-06-30",
        "withdrawnAt": None,
    }
    profile = await run(api, me, PROFILE, "careerProfile", citizen={"insz": citizen})
    assert [e["id"] for e in profile["workHistory"]] == [entry["id"]]
    suggested = by_uri(profile["suggestedCompetences"])
    assert set(suggested) == {SUPPLY_CHAIN, PACK_GOODS}
    assert suggested[PACK_GOODS] | {"competence": None} == {
        "competence": None,
        "fromOccupations": [{"uri": W}],
        "since": "2015-03-01",
        "until": "2020-06-30",
        "nl": {
            "text": "Essentiële competentie van 1 beroep(en) uit je werkervaring, nog niet in "
            "je paspoort.",
            "language": "nl",
        },
        "en": {
            "text": "An essential competence of 1 occupation(s) in your work history, not yet "
            "in your passport.",
            "language": "en",
        },
    }
    # A retry with the same key returns the entry; the same key for another entry conflicts.
    data = {
        "occupationUri": W,
        "startedOn": "2021-01-01",
        "idempotencyKey": "mine-" + uuid.uuid4().hex,
    }
    first = await run(api, me, RECORD_WORK, "recordWorkExperience", input=data)
    again = await run(api, me, RECORD_WORK, "recordWorkExperience", input=data)
    assert (again["created"], again["experience"]["id"]) == (False, first["experience"]["id"])
    other = await run(
        api, me, RECORD_WORK, "recordWorkExperience", input={**data, "startedOn": "2021-02-01"}
    )
    assert (other["code"], other["existingId"]) == ("CONFLICT", first["experience"]["id"])
    # Bad input is a typed error, naming the field.
    for bad, field in (
        ({"occupationUri": SIZING}, "input.occupationUri"),
        ({"startedOn": "2020-01-01", "endedOn": "2019-01-01"}, "input"),
        ({"startedOn": "2999-01-01"}, "input.startedOn"),
        ({"employerName": "two\nlines"}, "input.employerName"),
    ):
        failed = await run(
            api,
            me,
            RECORD_WORK,
            "recordWorkExperience",
            input={**data, "idempotencyKey": uuid.uuid4().hex, **bad},
        )
        assert failed["code"] == "VALIDATION_FAILED", bad
        assert field in [p["field"] for p in failed["problems"]], failed
    # Withdrawn: gone from the history (kept in the chain and the export), idempotently.
    gone = await run(api, me, WITHDRAW_WORK, "withdrawWorkExperience", id=first["experience"]["id"])
    assert gone["experience"]["withdrawnAt"] is not None
    twice = await run(
        api, me, WITHDRAW_WORK, "withdrawWorkExperience", id=first["experience"]["id"]
    )
    assert twice["experience"]["withdrawnAt"] == gone["experience"]["withdrawnAt"]
    profile = await run(api, me, PROFILE, "careerProfile", citizen={"insz": citizen})
    assert [e["id"] for e in profile["workHistory"]] == [entry["id"]]
    # Nobody else withdraws a citizen's own entry.
    stranger = await run(
        api, api.citizen(factories.insz()), WITHDRAW_WORK, "withdrawWorkExperience", id=entry["id"]
    )
    assert stranger["code"] == "NOT_FOUND"
    passport = await api.gql(me, "{ me { passport { citizenId } } }")
    citizen_id = uuid.UUID(passport["data"]["me"]["passport"]["citizenId"])
    async with engine.connect() as conn:
        types = list(
            await conn.scalars(
                select(CitizenEvent.event_type).where(
                    CitizenEvent.citizen_id == citizen_id,
                    CitizenEvent.event_type.like("career.%"),
                )
            )
        )
    assert sorted(types) == ["career.work_recorded"] * 2 + ["career.work_withdrawn"]
    assert await verify_chain(engine, citizen_id) == []
    # An entry edited, or written, behind the service's back is reported.
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE work_experiences SET started_on = '2014-01-01' WHERE id = :id"),
            {"id": uuid.UUID(entry["id"])},
        )
        await conn.execute(
            text(
                "INSERT INTO work_experiences (citizen_id, id, occupation_id, started_on,"
                " recorded_at, request_key, request_digest)"
                " SELECT citizen_id, gen_random_uuid(), occupation_id, started_on, now(),"
                " 'forged', '\\x00' FROM work_experiences WHERE id = :id"
            ),
            {"id": uuid.UUID(entry["id"])},
        )
    breaks = [b.reason for b in await verify_chain(engine, citizen_id)]
    assert f"work experience {entry['id']} differs from its event" in breaks
    assert any(r.startswith("work experience") and r.endswith("has no event") for r in breaks)
    # Erased, the tampered rows go: other tests verify every chain in the database.
    assert (await api.gql(me, ERASE))["data"]["requestErasure"]["erasureId"]


async def test_suggestions_are_accepted_as_self_declared_never_verified(
    api: Api, school: Partner
) -> None:
    citizen, _ = await _example(api, school)
    me = api.citizen(citizen)
    data = {"competenceUris": [PACK_GOODS], "language": "EN"}
    accepted = await run(api, me, ACCEPT, "acceptSuggestedCompetences", input=data)
    [declared] = accepted["declared"]
    assert declared["created"] is True
    assert declared["competence"] | {"id": None} == {
        "id": None,
        "competence": {"uri": PACK_GOODS},
        "context": "Work experience: warehouse operators for clothing, 2015\u20132020",
        "acquiredOn": "2015-03-01",
        "lastUsedOn": "2020-06-30",
        "learningContext": "INFORMAL",
    }
    retried = await run(api, me, ACCEPT, "acceptSuggestedCompetences", input=data)
    assert retried["declared"][0]["created"] is False
    assert retried["declared"][0]["competence"]["id"] == declared["competence"]["id"]
    passport = (await api.gql(me, MY_PASSPORT))["data"]["me"]["passport"]
    assert PACK_GOODS in {d["competence"]["uri"] for d in passport["selfDeclared"]}
    assert PACK_GOODS not in {c["competence"]["uri"] for c in passport["competences"]}
    profile = await run(api, me, PROFILE, "careerProfile", citizen={"insz": citizen})
    assert set(by_uri(profile["suggestedCompetences"])) == {SUPPLY_CHAIN}
    # Only what the history suggests, and nothing the citizen said in their own words.
    for uri, code in (
        (WAREHOUSING, "not_suggested"),  # verified already
        (DECORATE_TEXTILE, "not_suggested"),  # not asked by an occupation held
        (SIZING, "already_declared"),  # declared by the citizen themselves
    ):
        refused = await run(
            api,
            me,
            ACCEPT,
            "acceptSuggestedCompetences",
            input={"competenceUris": [SUPPLY_CHAIN, uri]},
        )
        assert refused["code"] == "VALIDATION_FAILED", uri
        assert [(p["field"], p["code"]) for p in refused["problems"]] == [
            ("input.competenceUris.1", code)
        ]
    # All or nothing: the refused calls declared nothing.
    profile = await run(api, me, PROFILE, "careerProfile", citizen={"insz": citizen})
    assert set(by_uri(profile["suggestedCompetences"])) == {SUPPLY_CHAIN}
    # Only the citizen accepts.
    denied = await run(api, school.token, ACCEPT, "acceptSuggestedCompetences", input=data)
    assert denied["code"] == "NOT_AUTHORIZED"


async def test_an_employer_records_work_as_a_statement_of_its_own(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen = factories.insz()
    employer = await make_partner(api, kind="EMPLOYER")
    data = {
        "insz": citizen,
        "occupationUri": F,
        "startedOn": "2020-07-01",
        "externalRef": factories.ref(),
    }
    made = await run(api, employer.token, RECORD_EMPLOYMENT, "recordEmployment", input=data)
    experience = made["experience"]
    assert made["created"] is True
    assert experience["recordedBy"] == "ORGANISATION"
    assert experience["organisation"] == {
        "id": str(employer.organisation_id),
        "name": employer.name,
    }
    assert (experience["employer"], experience["endedOn"]) == (employer.name, None)
    again = await run(api, employer.token, RECORD_EMPLOYMENT, "recordEmployment", input=data)
    assert (again["created"], again["experience"]["id"]) == (False, experience["id"])
    for changed in ({"occupationUri": W}, {"insz": factories.insz()}):
        conflict = await run(
            api, employer.token, RECORD_EMPLOYMENT, "recordEmployment", input={**data, **changed}
        )
        assert (conflict["code"], conflict["existingId"]) == ("CONFLICT", experience["id"])
    # Who may record: employers, not a school, a reader or the citizen.
    reader = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    for token in (school.token, reader.token, api.citizen(citizen), api.admin()):
        denied = await run(
            api,
            token,
            RECORD_EMPLOYMENT,
            "recordEmployment",
            input={**data, "externalRef": factories.ref()},
        )
        assert denied["code"] == "NOT_AUTHORIZED", token
    me = api.citizen(citizen)
    profile = await run(api, me, PROFILE, "careerProfile", citizen={"insz": citizen})
    assert [e["id"] for e in profile["workHistory"]] == [experience["id"]]
    # The citizen cannot withdraw the employer's statement, nor can another employer.
    mine = await run(api, me, WITHDRAW_WORK, "withdrawWorkExperience", id=experience["id"])
    assert mine["code"] == "NOT_FOUND"
    other = await make_partner(api, kind="EMPLOYER")
    theirs = await run(
        api, other.token, WITHDRAW_EMPLOYMENT, "withdrawEmployment", id=experience["id"]
    )
    assert theirs["code"] == "NOT_FOUND"
    withdrawn = await run(
        api, employer.token, WITHDRAW_EMPLOYMENT, "withdrawEmployment", id=experience["id"]
    )
    assert withdrawn["experience"]["withdrawnAt"] is not None
    profile = await run(api, me, PROFILE, "careerProfile", citizen={"insz": citizen})
    assert profile["workHistory"] == []
    passport = await api.gql(me, "{ me { passport { citizenId } } }")
    citizen_id = uuid.UUID(passport["data"]["me"]["passport"]["citizenId"])
    assert await verify_chain(engine, citizen_id) == []


async def test_career_paths_rank_by_weighted_share_with_missing_and_a_plan(
    api: Api, school: Partner
) -> None:
    citizen, _ = await _example(api, school)
    me = api.citizen(citizen)
    ref = factories.ref()
    body = await api.gql(
        school.token,
        PUBLISH,
        {
            "input": {
                "externalRef": factories.ref(),
                "title": f"{ref} finishing",
                "mode": "ONLINE",
                "language": "nl",
                "url": "https://example.org/finishing",
                "competenceUris": [DECORATE_TEXTILE, CLOTHING_SIZES],
            }
        },
    )
    assert body["data"]["publishLearningOpportunity"]["__typename"] == "OpportunityPublished"
    result = await run(api, me, PATHS, "careerPaths", citizen={"insz": citizen}, first=10)
    assert result["workHistoryShown"] is True
    assert result["fromOccupations"] == [{"uri": W}]
    assert {k: result["weights"][k] for k in ("verified", "selfDeclared", "suggested")} == {
        "verified": 1.0,
        "selfDeclared": 0.5,
        "suggested": 0.25,
    }
    assert result["weights"]["en"]["text"] == (
        "Verified competences count 1, self-declared ones 1/2 and suggested ones (from the work "
        "history) 1/4."
    )
    paths = result["paths"]
    assert [p["rank"] for p in paths] == list(range(1, len(paths) + 1))
    scores = [p["score"] for p in paths]
    assert scores == sorted(scores, reverse=True)
    assert W not in {p["occupation"]["uri"] for p in paths}  # held already: not a path
    assert all(p["transferable"] for p in paths)  # each shares one with W
    best = paths[0]
    assert best["occupation"] == {"uri": F}
    assert (best["score"], best["essentialTotal"], best["verified"], best["selfDeclared"]) == (
        0.3571,
        7,
        2,
        0,
    )
    assert {c["uri"] for c in best["suggested"]} == {PACK_GOODS, SUPPLY_CHAIN}
    assert {c["uri"] for c in best["strengths"]} == {WAREHOUSING, CLOTHING_INDUSTRY}
    assert {c["uri"] for c in best["missing"]} == {
        MANUFACTURE_APPAREL,
        CLOTHING_SIZES,
        DECORATE_TEXTILE,
    }
    assert {c["uri"] for c in best["transferable"]} == {WAREHOUSING, PACK_GOODS, SUPPLY_CHAIN}
    assert best["en"]["text"] == (
        "36% of the essential competences covered, weighted: 2 verified, 0 self-declared, "
        "2 suggested, 3 missing."
    )
    assert best["nl"]["language"] == "nl"
    plan = [s for s in best["learningPlan"] if s["opportunity"]["title"].startswith(ref)]
    assert {c["uri"] for c in plan[0]["closes"]} == {DECORATE_TEXTILE, CLOTHING_SIZES}
    # A suggestion accepted as self-declared counts a half instead of a quarter.
    await run(api, me, ACCEPT, "acceptSuggestedCompetences", input={"competenceUris": [PACK_GOODS]})
    result = await run(api, me, PATHS, "careerPaths", citizen={"insz": citizen}, first=1)
    assert (result["paths"][0]["score"], result["paths"][0]["selfDeclared"]) == (0.3929, 1)


async def test_a_reader_sees_work_history_and_paths_only_when_a_grant_includes_them(
    api: Api, school: Partner, reader: Partner
) -> None:
    citizen, entry = await _example(api, school)
    me = api.citizen(citizen)
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

    plain = await as_employer(includeWants=True)
    profile = await run(api, employer.token, PROFILE, "careerProfile", citizen=who)
    assert profile["workHistoryShown"] is False
    assert profile["workHistory"] == profile["suggestedCompetences"] == []
    paths = await run(api, employer.token, PATHS, "careerPaths", citizen=who)
    assert (paths["workHistoryShown"], paths["paths"], paths["fromOccupations"]) == (False, [], [])
    assert paths["en"]["text"] == (
        "The work history is not shared with you: there are no career paths to show."
    )
    await api.gql(me, REVOKE_GRANT, {"id": plain["grant"]["id"]})
    await as_employer(includeWorkHistory=True)
    profile = await run(api, employer.token, PROFILE, "careerProfile", citizen=who)
    assert profile["workHistoryShown"] is True and profile["wantsShown"] is False
    assert [e["id"] for e in profile["workHistory"]] == [entry["id"]]
    assert set(by_uri(profile["suggestedCompetences"])) == {SUPPLY_CHAIN, PACK_GOODS}
    theirs = await run(api, employer.token, PATHS, "careerPaths", citizen=who)
    mine = await run(api, me, PATHS, "careerPaths", citizen=who)
    assert theirs == mine
    # Without a grant or a basis named: nothing, as for any read.
    refused = await run(api, reader.token, PATHS, "careerPaths", citizen=who)
    assert refused["code"] == "NOT_FOUND"
    # A legal basis reads the record of competences, not the work history.
    legal = await run(
        api, reader.token, PATHS, "careerPaths", citizen=who, basis="GUIDANCE", purpose="intake"
    )
    assert (legal["workHistoryShown"], legal["paths"]) == (False, [])
    basis_read = await api.gql(
        reader.token,
        PROFILE,
        {"citizen": who, "basis": "GUIDANCE", "purpose": "intake"},
    )
    assert basis_read["data"]["careerProfile"]["workHistoryShown"] is False
    assert basis_read["data"]["careerProfile"]["workHistory"] == []


async def test_export_carries_and_erasure_removes_wants_goals_and_work(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen, entry = await _example(api, school)
    me = api.citizen(citizen)
    await want(api, me, SUPPLY_CHAIN, "DEVELOP")
    await goal(api, me, F, 2030)
    employer = await make_partner(api, kind="EMPLOYER")
    await run(
        api,
        employer.token,
        RECORD_EMPLOYMENT,
        "recordEmployment",
        input={
            "insz": citizen,
            "occupationUri": F,
            "startedOn": "2020-07-01",
            "externalRef": factories.ref(),
        },
    )
    exported = (await api.gql(me, EXPORT))["data"]["me"]["exportData"]
    assert [(w["competence"]["uri"], w["want"]) for w in exported["wants"]] == [
        (SUPPLY_CHAIN, "develop")
    ]
    assert [(g["occupation"]["uri"], g["horizonYear"]) for g in exported["careerGoals"]] == [
        (F, 2030)
    ]
    assert {w["recordedBy"] for w in exported["workHistory"]} == {"citizen", "organisation"}
    assert entry["id"] in {w["id"] for w in exported["workHistory"]}
    assert "employerName" in exported["workHistory"][0]
    body = await api.gql(me, ERASE)
    counts = {c["kind"]: c["count"] for c in body["data"]["requestErasure"]["counts"]}
    assert (
        counts["wants"],
        counts["careerGoals"],
        counts["workExperiences"],
        counts["workExperienceRefs"],
    ) == (1, 1, 2, 1)
    async with engine.connect() as conn:
        left = await conn.scalar(
            text(
                "SELECT (SELECT count(*) FROM work_experiences WHERE id = :id)"
                " + (SELECT count(*) FROM work_experience_refs r"
                "    WHERE r.organisation_id = :org)"
            ),
            {"id": uuid.UUID(entry["id"]), "org": employer.organisation_id},
        )
    assert left == 0
