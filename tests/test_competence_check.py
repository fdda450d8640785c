"""The competence check on the shipped ESCO data, against numbers worked out by hand.

The occupation is "warehouse operators for clothing" (magazijnmedewerker kleding): 4 essential
and 8 optional competences in ESCO v1.1.1.

    essential                                   the passport                  expected
    perform warehousing operations  (skill)     verified, used 2024           HELD
    analyse supply chain strategies (skill)     verified, last used 2015      STALE (> 5 years)
    pack goods                      (skill)     only "carry out specialised   PARTIAL
                                                packing for customers", a
                                                narrower skill, verified
    standard sizing systems for clothing        self-declared                 SELF_DECLARED
                                    (knowledge)
    optional: clean warehouse (skill) verified -> HELD; the other 7 (5 skills, 2 knowledge)
    are MISSING.

So essential: 1 held, 1 stale, 1 partial, 1 self-declared of 4: current 0.25, verified 0.5,
with partial 0.75. Optional: 1 of 8 = 0.125. The essential gaps a course can close are pack
goods and sizing systems.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.models import AccessRecord
from tests import factories
from tests.citizen_api import SELF_DECLARE, grant
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue

SKILL = "http://data.europa.eu/esco/skill/"
OCCUPATION = "http://data.europa.eu/esco/occupation/040fcfa5-24be-43eb-afd5-828297175b16"
WAREHOUSING = SKILL + "7afb5a64-e574-421a-bb3a-7a7bc108d2a5"
SUPPLY_CHAIN = SKILL + "96d549bb-3e62-4c45-92a7-f114df089581"
PACK_GOODS = SKILL + "667cbbaf-f377-46d8-8f2d-1f6d8a55d74a"
SPECIALISED_PACKING = SKILL + "1cf8cd2a-0b84-47f9-be63-4d36d3bff528"  # narrower than PACK_GOODS
SIZING = SKILL + "deb9b821-316f-45bb-a57b-fbce518a8161"
CLEAN_WAREHOUSE = SKILL + "a7a47148-732f-48bc-a7ce-18afe0d7f259"

COVERAGE = (
    "total held stale partial selfDeclared notShared missing currentRatio verifiedRatio "
    "withPartialRatio"
)
CHECK = f"""
query($citizen: CitizenRef!, $occupation: String!, $years: Int, $purpose: String) {{
  competenceCheck(citizen: $citizen, occupationUri: $occupation, staleAfterYears: $years,
                  purpose: $purpose) {{
    __typename
    ... on CompetenceCheck {{
      occupation {{ uri label(lang: NL) {{ text language }} }}
      staleAfterYears staleBefore
      essential {{ {COVERAGE} }}
      optional {{ {COVERAGE} }}
      bySkillType {{ essential skillType status count }}
      requirements {{
        competence {{ uri label(lang: NL) {{ text language }} }}
        essential status light lastUsedOn via {{ uri }}
      }}
      learningPlan {{ opportunity {{ title providerName }} closes {{ uri }} }}
    }}
    ... on Error {{ code message }}
  }}
}}"""
MATCHES = """
query($citizen: CitizenRef!, $first: Int) {
  occupationMatches(citizen: $citizen, first: $first) {
    __typename
    ... on OccupationMatches {
      matches {
        occupation { uri label(lang: NL) { text } }
        essentialHeld essentialTotal essentialRatio optionalRatio
        matched { uri } missing { uri }
      }
    }
    ... on Error { code }
  }
}"""
PUBLISH = """
mutation($input: LearningOpportunityInput!) {
  publishLearningOpportunity(input: $input) {
    __typename
    ... on OpportunityPublished { opportunity { id title status competences { uri } } }
    ... on Error { code message }
    ... on ValidationFailed { problems { field code } }
  }
}"""
WITHDRAW = """
mutation($id: ID!) {
  withdrawLearningOpportunity(id: $id) {
    __typename ... on OpportunityPublished { opportunity { status } } ... on Error { code }
  }
}"""


def _claim(citizen: str, uri: str, acquired: str, used: str | None) -> dict[str, Any]:
    return factories.claim_input(citizen, uri, acquiredOn=acquired, lastUsedOn=used)


async def _worked_example(api: Api, school: Partner) -> str:
    citizen = factories.insz()
    for uri, acquired, used in (
        (WAREHOUSING, "2020-01-01", "2024-06-01"),
        (SUPPLY_CHAIN, "2012-01-01", "2015-06-01"),
        (SPECIALISED_PACKING, "2022-01-01", None),
        (CLEAN_WAREHOUSE, "2023-01-01", None),
    ):
        await issue(api, school, _claim(citizen, uri, acquired, used))
    body = await api.gql(
        api.citizen(citizen),
        SELF_DECLARE,
        {"input": {"competenceUri": SIZING, "acquiredOn": "2019-01-01"}},
    )
    assert body["data"]["selfDeclare"]["created"] is True
    return citizen


async def check(api: Api, token: str, citizen: str, **variables: Any) -> dict[str, Any]:
    body = await api.gql(
        token,
        CHECK,
        {"citizen": {"insz": citizen}, "occupation": OCCUPATION, **variables},
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["competenceCheck"]
    return result


async def test_the_worked_example(api: Api, school: Partner) -> None:
    citizen = await _worked_example(api, school)
    result = await check(api, api.citizen(citizen), citizen, years=5)
    assert result["occupation"]["label"] == {"text": "magazijnmedewerker kleding", "language": "nl"}
    by_uri = {r["competence"]["uri"]: r for r in result["requirements"]}
    assert len(by_uri) == 12
    expected = {
        WAREHOUSING: ("HELD", "GREEN"),
        SUPPLY_CHAIN: ("STALE", "AMBER"),
        PACK_GOODS: ("PARTIAL", "AMBER"),
        SIZING: ("SELF_DECLARED", "AMBER"),
        CLEAN_WAREHOUSE: ("HELD", "GREEN"),
    }
    for uri, (status, light) in expected.items():
        assert (by_uri[uri]["status"], by_uri[uri]["light"]) == (status, light), uri
    assert by_uri[PACK_GOODS]["via"] == [{"uri": SPECIALISED_PACKING}]
    assert by_uri[SUPPLY_CHAIN]["lastUsedOn"] == "2015-06-01"
    others = [r for uri, r in by_uri.items() if uri not in expected]
    assert len(others) == 7 and {r["status"] for r in others} == {"MISSING"}
    assert {r["light"] for r in others} == {"RED"}
    assert result["essential"] == {
        "total": 4, "held": 1, "stale": 1, "partial": 1, "selfDeclared": 1, "notShared": 0,
        "missing": 0,
        "currentRatio": 0.25, "verifiedRatio": 0.5, "withPartialRatio": 0.75,
    }  # fmt: skip
    assert result["optional"] == {
        "total": 8, "held": 1, "stale": 0, "partial": 0, "selfDeclared": 0, "notShared": 0,
        "missing": 7,
        "currentRatio": 0.125, "verifiedRatio": 0.125, "withPartialRatio": 0.125,
    }  # fmt: skip
    counts = {
        (c["essential"], c["skillType"], c["status"]): c["count"] for c in result["bySkillType"]
    }
    assert counts == {
        (True, "SKILL_COMPETENCE", "HELD"): 1,
        (True, "SKILL_COMPETENCE", "STALE"): 1,
        (True, "SKILL_COMPETENCE", "PARTIAL"): 1,
        (True, "KNOWLEDGE", "SELF_DECLARED"): 1,
        (False, "SKILL_COMPETENCE", "HELD"): 1,
        (False, "SKILL_COMPETENCE", "MISSING"): 5,
        (False, "KNOWLEDGE", "MISSING"): 2,
    }
    # Skills without a Dutch label fall back to English, and say so.
    assert by_uri[WAREHOUSING]["competence"]["label"]["language"] in ("nl", "en")
    # A longer threshold turns the stale competence green.
    relaxed = await check(api, api.citizen(citizen), citizen, years=15)
    assert relaxed["essential"]["held"] == 2 and relaxed["essential"]["stale"] == 0


async def test_the_learning_plan_closes_the_essential_gaps(api: Api, school: Partner) -> None:
    citizen = await _worked_example(api, school)
    provider = await make_partner(api)  # an education provider
    ref = factories.ref()

    async def offer(title: str, uris: list[str], **extra: Any) -> dict[str, Any]:
        data = {
            "externalRef": factories.ref(),
            "title": title,
            "mode": "ONLINE",
            "language": "nl",
            "url": "https://example.org/course",
            "competenceUris": uris,
            **extra,
        }
        body = await api.gql(provider.token, PUBLISH, {"input": data})
        result: dict[str, Any] = body["data"]["publishLearningOpportunity"]
        assert result["__typename"] == "OpportunityPublished", result
        return result

    await offer(f"{ref} packing basics", [PACK_GOODS, CLEAN_WAREHOUSE])
    both = await offer(f"{ref} warehouse clothing", [PACK_GOODS, SIZING])
    gone = await offer(f"{ref} sizing", [SIZING])
    withdrawn = await api.gql(provider.token, WITHDRAW, {"id": gone["opportunity"]["id"]})
    assert withdrawn["data"]["withdrawLearningOpportunity"]["opportunity"]["status"] == "WITHDRAWN"
    result = await check(api, api.citizen(citizen), citizen)
    plan = [step for step in result["learningPlan"] if step["opportunity"]["title"].startswith(ref)]
    assert [s["opportunity"]["title"] for s in plan] == [both["opportunity"]["title"]]
    assert {c["uri"] for c in plan[0]["closes"]} == {PACK_GOODS, SIZING}
    assert plan[0]["opportunity"]["providerName"] == provider.name


async def test_only_providers_publish_and_bad_offers_are_typed_errors(
    api: Api, employer: Partner, school: Partner
) -> None:
    data = {
        "externalRef": factories.ref(),
        "title": "Forklift course",
        "mode": "IN_PERSON",
        "language": "nl",
        "url": "https://example.org/forklift",
        "competenceUris": [factories.FORKLIFT],
        "location": "Gent",
    }
    denied = await api.gql(employer.token, PUBLISH, {"input": data})
    assert denied["data"]["publishLearningOpportunity"]["code"] == "NOT_AUTHORIZED"
    for overrides, field in (
        ({"location": None}, "input"),
        ({"competenceUris": [factories.SKILL_GROUP]}, "input.competenceUris.0"),
        ({"language": "xx"}, "input.language"),
        ({"url": "ftp://example.org"}, "input.url"),
        ({"durationHours": 0}, "input.durationHours"),
    ):
        body = await api.gql(school.token, PUBLISH, {"input": {**data, **overrides}})
        result = body["data"]["publishLearningOpportunity"]
        assert result["code"] == "VALIDATION_FAILED", overrides
        assert field in [p["field"] for p in result["problems"]], result
    first = await api.gql(school.token, PUBLISH, {"input": data})
    again = await api.gql(school.token, PUBLISH, {"input": {**data, "title": "Forklift, new"}})
    one = first["data"]["publishLearningOpportunity"]["opportunity"]
    other = again["data"]["publishLearningOpportunity"]["opportunity"]
    assert one["id"] == other["id"] and other["title"] == "Forklift, new"  # replaced, not added


async def test_the_check_is_a_logged_read_within_what_the_reader_may_see(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen = await _worked_example(api, school)
    reader = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    refused = await api.gql(
        reader.token, CHECK, {"citizen": {"insz": citizen}, "occupation": OCCUPATION}
    )
    assert refused["data"]["competenceCheck"]["code"] == "NOT_FOUND"
    me = api.citizen(citizen)
    await grant(
        api,
        me,
        granteeKind="ORGANISATION",
        organisationId=str(reader.organisation_id),
        competenceUris=[WAREHOUSING],
    )
    seen = await check(api, reader.token, citizen, purpose="vacancy 12")
    statuses = {r["competence"]["uri"]: r["status"] for r in seen["requirements"]}
    assert statuses[WAREHOUSING] == "HELD"
    # Not granted: unknown to this reader, so neither missing nor a gap for its learning plan.
    assert statuses[SUPPLY_CHAIN] == statuses[SIZING] == "NOT_SHARED"
    async with engine.connect() as conn:
        operations = list(
            await conn.scalars(
                select(AccessRecord.operation)
                .where(AccessRecord.organisation_id == reader.organisation_id)
                .order_by(AccessRecord.accessed_at)
            )
        )
    assert operations == ["competence_check"]
    unknown = await api.gql(
        me, CHECK, {"citizen": {"insz": citizen}, "occupation": OCCUPATION + "x"}
    )
    assert unknown["data"]["competenceCheck"]["code"] == "NOT_FOUND"


async def test_occupations_that_fit_are_ranked_and_explained(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen = factories.insz()
    for uri in (WAREHOUSING, SUPPLY_CHAIN, PACK_GOODS, SIZING):
        await issue(api, school, _claim(citizen, uri, "2021-01-01", "2025-01-01"))
    body = await api.gql(api.citizen(citizen), MATCHES, {"citizen": {"insz": citizen}, "first": 20})
    matches = body["data"]["occupationMatches"]["matches"]
    assert len(matches) == 20
    ratios = [m["essentialRatio"] for m in matches]
    assert ratios == sorted(ratios, reverse=True)
    ours = next(m for m in matches if m["occupation"]["uri"] == OCCUPATION)
    assert (ours["essentialHeld"], ours["essentialTotal"], ours["essentialRatio"]) == (4, 4, 1.0)
    assert {c["uri"] for c in ours["matched"]} == {WAREHOUSING, SUPPLY_CHAIN, PACK_GOODS, SIZING}
    assert ours["missing"] == []
    for match in matches:
        assert len(match["matched"]) == match["essentialHeld"]
        assert len(match["matched"]) + len(match["missing"]) == match["essentialTotal"]
    async with engine.connect() as conn:
        logged = await conn.scalar(
            select(func.count())
            .select_from(AccessRecord)
            .where(AccessRecord.operation == "occupation_matches")
        )
    assert logged and logged >= 1


async def test_providers_upload_offers_in_bulk(
    api: Api, school: Partner, employer: Partner
) -> None:
    def line(**overrides: Any) -> bytes:
        offer = {
            "externalRef": factories.ref(),
            "title": "Magazijnbeheer",
            "mode": "ONLINE",
            "language": "nl",
            "url": "https://example.org/magazijn",
            "competenceUris": [WAREHOUSING],
            **overrides,
        }
        return orjson.dumps(offer) + b"\n"

    body = line() + line(competenceUris=[SKILL + "nope"]) + b"\n" + line(title="Verpakken")
    headers = {"Authorization": f"Bearer {school.token}", "Content-Type": "application/x-ndjson"}
    response = await api.http.post("/learning-opportunities:bulk", content=body, headers=headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["published"], report["rejected"]) == (2, 1)
    assert [row["status"] for row in report["rows"]] == ["published", "rejected", "published"]
    # Line 3 is blank: numbers are the uploader's own lines.
    assert [row["line"] for row in report["rows"]] == [1, 2, 4]
    assert report["rows"][1]["problems"][0]["field"] == "line 2.competenceUris.0"
    # A broken line, a non-object and a field given twice are rejected on their own.
    twice = b'{"externalRef": "a", "external_ref": "b"}\n'
    mixed = line() + b"{not json\n[1, 2]\n" + twice + line(durationHours="7")
    response = await api.http.post("/learning-opportunities:bulk", content=mixed, headers=headers)
    rows = response.json()["rows"]
    assert [row["status"] for row in rows] == ["published"] + ["rejected"] * 4
    assert [row["problems"][0]["message"] for row in rows[1:4]] == [
        "not valid JSON",
        "not a JSON object",
        "the same field is given twice",
    ]
    assert rows[4]["problems"][0]["field"] == "line 5.durationHours"  # no quiet "7" -> 7
    denied = await api.http.post(
        "/learning-opportunities:bulk",
        content=line(),
        headers={**headers, "Authorization": f"Bearer {employer.token}"},
    )
    assert denied.status_code == 403


async def test_the_plan_leaves_out_suspended_providers_and_prefers_known_short_offers(
    api: Api, school: Partner
) -> None:
    citizen = await _worked_example(api, school)
    ref = factories.ref()
    suspended = await make_partner(api)
    active = await make_partner(api)

    async def offer(provider: Partner, title: str, hours: int | None) -> None:
        data = {
            "externalRef": factories.ref(),
            "title": f"{ref} {title}",
            "mode": "ONLINE",
            "language": "nl",
            "url": "https://example.org/c",
            "competenceUris": [PACK_GOODS, SIZING],
            "durationHours": hours,
        }
        body = await api.gql(provider.token, PUBLISH, {"input": data})
        assert body["data"]["publishLearningOpportunity"]["__typename"] == "OpportunityPublished"

    await offer(suspended, "from a suspended school", 1)
    await offer(active, "unknown length", None)
    await offer(active, "long", 1000)
    await offer(active, "short", 20)
    await api.gql(
        api.admin(),
        "mutation($id: ID!) { setOrganisationStatus(id: $id, status: SUSPENDED) { __typename } }",
        {"id": str(suspended.organisation_id)},
    )
    result = await check(api, api.citizen(citizen), citizen)
    titles = [s["opportunity"]["title"] for s in result["learningPlan"]]
    assert titles[0] == f"{ref} short", titles
    assert not any("suspended" in title for title in titles)


async def test_a_stale_competence_names_fresher_narrower_evidence(
    api: Api, school: Partner
) -> None:
    citizen = factories.insz()
    await issue(api, school, _claim(citizen, PACK_GOODS, "2005-01-01", "2008-01-01"))
    await issue(api, school, _claim(citizen, SPECIALISED_PACKING, "2024-01-01", None))
    result = await check(api, api.citizen(citizen), citizen)
    pack = next(r for r in result["requirements"] if r["competence"]["uri"] == PACK_GOODS)
    assert pack["status"] == "STALE"
    assert pack["via"] == [{"uri": SPECIALISED_PACKING}]


CHECK_IN = """
query($citizen: CitizenRef!, $occupation: String!, $lang: Language!) {
  competenceCheck(citizen: $citizen, occupationUri: $occupation, lang: $lang) {
    ... on CompetenceCheck {
      occupation { label { text language } dutch: label(lang: NL) { language } }
      requirements { competence { label { language } description { language } } }
    }
  }
}"""


async def test_labels_come_in_the_language_the_check_asked_for(api: Api, school: Partner) -> None:
    """`competenceCheck(lang: EN)` answered in Dutch once: the argument reached only the
    learning plan, and every label defaulted to NL. A label may still ask for another."""
    citizen = await _worked_example(api, school)
    variables = {"citizen": {"insz": citizen}, "occupation": OCCUPATION}
    me = api.citizen(citizen)
    english = (await api.gql(me, CHECK_IN, {**variables, "lang": "EN"}))["data"]
    check = english["competenceCheck"]
    assert check["occupation"]["label"] == {
        "text": "warehouse operators for clothing",
        "language": "en",
    }
    assert check["occupation"]["dutch"] == {"language": "nl"}
    languages = {r["competence"]["label"]["language"] for r in check["requirements"]}
    assert languages == {"en"}
    assert {r["competence"]["description"]["language"] for r in check["requirements"]} == {"en"}
    dutch = (await api.gql(me, CHECK_IN, {**variables, "lang": "NL"}))["data"]["competenceCheck"]
    assert dutch["occupation"]["label"]["language"] == "nl"
    # Dutch where ESCO has it (the shipped Dutch skills are partial), English otherwise.
    assert "nl" in {r["competence"]["label"]["language"] for r in dutch["requirements"]}


async def test_search_labels_come_in_the_search_language(api: Api) -> None:
    query = """query($lang: Language!) { competences(search: "python", lang: $lang, first: 3) {
      edges { node { label { language } } } } }"""
    body = await api.gql(api.admin(), query, {"lang": "EN"})
    edges = body["data"]["competences"]["edges"]
    assert edges and {e["node"]["label"]["language"] for e in edges} == {"en"}
