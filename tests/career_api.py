"""GraphQL documents and helpers for wants, work history, career paths, plans and lights.

The worked examples use ESCO v1.1.1 as shipped:

- W, "warehouse operators for clothing" (ISCO 4321): essential WAREHOUSING, SUPPLY_CHAIN,
  PACK_GOODS, SIZING (4).
- F, "clothing finisher" (ISCO 9321): 7 essential, among them WAREHOUSING, SUPPLY_CHAIN,
  PACK_GOODS, CLOTHING_INDUSTRY and DECORATE_TEXTILE.
- HAND_PACKER (ISCO 9321): 9 essential, PACK_GOODS among them.
- FW, "footwear factory warehouse operator" (ISCO 4321): 7 essential, one digital (USE_IT_TOOLS)
  and one green (FOOTWEAR_COMPONENTS) in ESCO's collections.
"""

from __future__ import annotations

import secrets
from typing import Any

from tests.citizen_api import ERRORS, READ_ERRORS
from tests.graphql_client import Api

OCC = "http://data.europa.eu/esco/occupation/"
SKILL = "http://data.europa.eu/esco/skill/"
W = OCC + "040fcfa5-24be-43eb-afd5-828297175b16"
F = OCC + "87afe3f0-c891-45de-a498-ad2608471c86"
HAND_PACKER = OCC + "f5cb9901-86fc-48d0-9cde-667fbe8cef3a"
FW = OCC + "143e49fc-832f-477c-8cac-8eabe6fd7bc2"
WAREHOUSING = SKILL + "7afb5a64-e574-421a-bb3a-7a7bc108d2a5"
SUPPLY_CHAIN = SKILL + "96d549bb-3e62-4c45-92a7-f114df089581"
PACK_GOODS = SKILL + "667cbbaf-f377-46d8-8f2d-1f6d8a55d74a"
SIZING = SKILL + "deb9b821-316f-45bb-a57b-fbce518a8161"
CLOTHING_INDUSTRY = SKILL + "a15e06f6-9562-465f-b6bd-549becd67633"
CLOTHING_SIZES = SKILL + "400d23d4-f256-44e7-85d5-5c1a53236fb2"
DECORATE_TEXTILE = SKILL + "8babf8e3-4187-4b8c-9594-82d69a598e89"
MANUFACTURE_APPAREL = SKILL + "00e895f4-b9d3-4a1a-8c36-baf10fbfb982"
USE_IT_TOOLS = SKILL + "f632251a-4078-4546-b19f-7ef528d08325"
FOOTWEAR_COMPONENTS = SKILL + "ec7fd241-e68f-4593-a42a-a12a9bd80cbc"

TEXT = "nl: {f}(lang: NL) {{ text language }} en: {f}(lang: EN) {{ text language }}"
LIGHT = f"""
  kind color occupation {{ uri }} competences {{ uri }}
  source {{ kind name publishedOn region horizonYear url }}
  {TEXT.format(f="reason")}
"""
SIGNALS = f"forecastsLoaded sources {{ name publishedOn signals }} {TEXT.format(f='note')}"
STANDING = f"score fit reasons {{ kind points competences {{ uri }} {TEXT.format(f='reason')} }}"
WANTS = f"shown applied {TEXT.format(f='note')}"
CHECK = f"""
query($citizen: CitizenRef!, $occupation: String!, $purpose: String, $region: String,
      $years: Int) {{
  competenceCheck(citizen: $citizen, occupationUri: $occupation, purpose: $purpose,
                  region: $region, staleAfterYears: $years) {{
    __typename
    ... on CompetenceCheck {{
      essential {{ total held }}
      requirements {{ competence {{ uri }} essential status light want strength }}
      standing {{ {STANDING} }}
      wants {{ {WANTS} }}
      lights {{ {LIGHT} }}
      signals {{ {SIGNALS} }}
    }}
    {READ_ERRORS}
  }}
}}"""
MATCHES = f"""
query($citizen: CitizenRef!, $first: Int, $purpose: String, $region: String) {{
  occupationMatches(citizen: $citizen, first: $first, purpose: $purpose, region: $region) {{
    __typename
    ... on OccupationMatches {{
      wants {{ {WANTS} }}
      signals {{ {SIGNALS} }}
      matches {{
        rank score occupation {{ uri }} essentialHeld essentialTotal essentialRatio
        matched {{ uri }} missing {{ uri }} ratherNot {{ uri }}
        standing {{ {STANDING} }}
        lights {{ {LIGHT} }}
      }}
    }}
    {READ_ERRORS}
  }}
}}"""
PROFILE_BODY = """
  wantsShown workHistoryShown
  wants { competence { uri } want updatedAt }
  goals { occupation { uri } horizonYear active }
  workHistory {
    id occupation { uri } recordedBy organisation { id name } employer startedOn endedOn
  }
  suggestedCompetences {
    competence { uri } fromOccupations { uri } since until
    nl: reason(lang: NL) { text language } en: reason(lang: EN) { text language }
  }
"""
PROFILE = f"""
query($citizen: CitizenRef!, $purpose: String, $basis: String) {{
  careerProfile(citizen: $citizen, purpose: $purpose, legalBasis: $basis) {{
    __typename ... on CareerProfile {{ {PROFILE_BODY} }} {READ_ERRORS}
  }}
}}"""
SHARED_PROFILE = f"""
query {{ sharedCareerProfile {{
  __typename ... on CareerProfile {{ {PROFILE_BODY} }} {READ_ERRORS} }} }}"""
PATHS = f"""
query($citizen: CitizenRef!, $first: Int, $purpose: String, $basis: String,
      $region: String) {{
  careerPaths(citizen: $citizen, first: $first, purpose: $purpose, legalBasis: $basis,
              region: $region) {{
    __typename
    ... on CareerPaths {{
      workHistoryShown fromOccupations {{ uri }}
      weights {{ verified selfDeclared suggested {TEXT.format(f="note")} }}
      {TEXT.format(f="note")}
      signals {{ {SIGNALS} }}
      paths {{
        rank occupation {{ uri }} score essentialTotal verified selfDeclared
        suggested {{ uri }} strengths {{ uri }} ratherNot {{ uri }} missing {{ uri }}
        notShared transferable {{ uri }} isGoal
        learningPlan {{ opportunity {{ title }} closes {{ uri }} }}
        lights {{ {LIGHT} }}
        {TEXT.format(f="reason")}
      }}
    }}
    {READ_ERRORS}
  }}
}}"""
PLAN = f"""
query($citizen: CitizenRef!, $goal: String, $purpose: String, $basis: String,
      $region: String) {{
  careerPlan(citizen: $citizen, goalUri: $goal, purpose: $purpose, legalBasis: $basis,
             region: $region) {{
    __typename
    ... on CareerPlan {{
      goal {{ uri }} isGoal horizonYear
      wants {{ {WANTS} }}
      standing {{ {STANDING} }}
      essential {{ total held stale partial selfDeclared missing notShared }}
      requirements {{ competence {{ uri }} status want strength }}
      suggestedCompetences {{ uri }}
      steps {{
        position kind competences {{ uri }} opportunity {{ title }}
        lights {{ kind competences {{ uri }} }}
        {TEXT.format(f="why")}
      }}
      lights {{ {LIGHT} }}
      signals {{ {SIGNALS} }}
    }}
    {READ_ERRORS}
  }}
}}"""
SET_WANT = f"""
mutation($input: SetCompetenceWantInput!) {{
  setCompetenceWant(input: $input) {{
    __typename ... on CompetenceWantSet {{ competence {{ uri }} want changed }} {ERRORS}
  }}
}}"""
SET_GOAL = f"""
mutation($input: SetCareerGoalInput!) {{
  setCareerGoal(input: $input) {{
    __typename
    ... on CareerGoalSet {{ changed goal {{ occupation {{ uri }} horizonYear active }} }}
    {ERRORS}
  }}
}}"""
DROP_GOAL = f"""
mutation($uri: String!) {{
  dropCareerGoal(occupationUri: $uri) {{
    __typename ... on CareerGoalSet {{ changed goal {{ active }} }} {ERRORS}
  }}
}}"""
EXPERIENCE = (
    "id occupation { uri } recordedBy organisation { id name } employer startedOn endedOn "
    "withdrawnAt"
)
RECORD_WORK = f"""
mutation($input: RecordWorkExperienceInput!) {{
  recordWorkExperience(input: $input) {{
    __typename ... on WorkExperienceRecorded {{ created experience {{ {EXPERIENCE} }} }}
    {ERRORS}
  }}
}}"""
WITHDRAW_WORK = f"""
mutation($id: ID!) {{
  withdrawWorkExperience(id: $id) {{
    __typename ... on WorkExperienceWithdrawn {{ experience {{ {EXPERIENCE} }} }} {ERRORS}
  }}
}}"""
RECORD_EMPLOYMENT = f"""
mutation($input: RecordEmploymentInput!) {{
  recordEmployment(input: $input) {{
    __typename ... on WorkExperienceRecorded {{ created experience {{ {EXPERIENCE} }} }}
    {ERRORS}
  }}
}}"""
WITHDRAW_EMPLOYMENT = f"""
mutation($id: ID!) {{
  withdrawEmployment(id: $id) {{
    __typename ... on WorkExperienceWithdrawn {{ experience {{ {EXPERIENCE} }} }} {ERRORS}
  }}
}}"""
ACCEPT = f"""
mutation($input: AcceptSuggestedCompetencesInput!) {{
  acceptSuggestedCompetences(input: $input) {{
    __typename
    ... on SuggestionsAccepted {{
      declared {{
        created
        competence {{ id competence {{ uri }} context acquiredOn lastUsedOn learningContext }}
      }}
    }}
    {ERRORS}
  }}
}}"""


async def run(api: Api, token: str, query: str, field: str, **variables: Any) -> dict[str, Any]:
    body = await api.gql(token, query, variables)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][field]
    return result


async def want(api: Api, token: str, competence: str, stance: str | None) -> dict[str, Any]:
    return await run(
        api,
        token,
        SET_WANT,
        "setCompetenceWant",
        input={"competenceUri": competence, "want": stance},
    )


async def goal(api: Api, token: str, occupation: str, year: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"occupationUri": occupation}
    if year is not None:
        data["horizonYear"] = year
    return await run(api, token, SET_GOAL, "setCareerGoal", input=data)


async def worked(
    api: Api, token: str, occupation: str, started: str, ended: str | None = None, **extra: Any
) -> dict[str, Any]:
    data = {
        "occupationUri": occupation,
        "startedOn": started,
        "endedOn": ended,
        "idempotencyKey": "work-" + secrets.token_hex(6),
        **extra,
    }
    return await run(api, token, RECORD_WORK, "recordWorkExperience", input=data)


def by_uri(items: list[dict[str, Any]], key: str = "competence") -> dict[str, dict[str, Any]]:
    return {item[key]["uri"]: item for item in items}


def kinds(lights: list[dict[str, Any]]) -> list[str]:
    return sorted(light["kind"] for light in lights)
