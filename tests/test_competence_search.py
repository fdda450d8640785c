"""Competence search, over GraphQL and in the domain layer: languages, accents, typos, pages."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncSession

from service.taxonomy.search import (
    TIER,
    InvalidCursor,
    competences_by_id,
    competences_by_uri,
    occupation_by_uri,
    pick_label,
    search_competences,
)
from tests import factories
from tests.graphql_client import Api, Partner

SEARCH = """
query($q: String, $lang: Language, $first: Int, $after: String, $type: SkillType,
      $collection: SkillCollection) {
  competences(search: $q, lang: $lang, first: $first, after: $after, skillType: $type,
              collection: $collection) {
    edges { cursor score matchedLabel node { uri skillType label(lang: $lang) { text language } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def search(api: Api, token: str, **variables: Any) -> dict[str, Any]:
    body = await api.gql(token, SEARCH, variables)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["competences"]
    return result


def uris(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["uri"] for edge in page["edges"]]


async def test_dutch_label_first_with_english_fallback(api: Api, school: Partner) -> None:
    page = await search(api, school.token, q="in teams werken", lang="NL", first=3)
    first = page["edges"][0]["node"]
    assert first["uri"] == factories.TEAMWORK
    assert first["label"] == {"text": "in teams werken", "language": "nl"}
    page = await search(api, school.token, q="operate forklift", lang="NL", first=3)
    assert page["edges"][0]["node"]["label"] == {"text": "operate forklift", "language": "en"}


async def test_case_accent_and_language_insensitive(api: Api, school: Partner) -> None:
    for query in ("KRITISCH DENKEN", "kritisch denken", "critical thinking"):
        page = await search(api, school.token, q=query, lang="NL", first=5)
        assert "http://data.europa.eu/esco/skill/7dd94ad3-13d6-43fe-8b94-51fcbf67ced9" in uris(page)
    accented = await search(api, school.token, q="ecologie", lang="NL", first=5)
    plain = await search(api, school.token, q="écologie", lang="NL", first=5)
    assert uris(accented) == uris(plain)
    assert accented["edges"][0]["node"]["label"]["text"] == "ecologie"


async def test_prefix_and_typo(api: Api, school: Partner) -> None:
    prefix = await search(api, school.token, q="samenwerk", lang="NL", first=5)
    assert all(e["matchedLabel"].lower().startswith("samenwerk") for e in prefix["edges"][:3])
    typo = await search(api, school.token, q="Pyhton", lang="EN", first=5)
    assert factories.PYTHON in uris(typo)


async def test_keyset_pages_have_no_gaps_or_duplicates(api: Api, school: Partner) -> None:
    everything = await search(api, school.token, q="forklift", lang="EN", first=60)
    assert not everything["pageInfo"]["hasNextPage"]
    assert len(everything["edges"]) > 10
    collected: list[str] = []
    after = None
    while True:
        page = await search(api, school.token, q="forklift", lang="EN", first=4, after=after)
        collected += uris(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert collected == uris(everything)
    scores = [e["score"] for e in everything["edges"]]
    assert scores == sorted(scores, reverse=True)


async def test_browse_without_search_and_filters(api: Api, school: Partner) -> None:
    page = await search(api, school.token, first=3, type="KNOWLEDGE")
    assert len(page["edges"]) == 3
    assert all(e["node"]["skillType"] == "KNOWLEDGE" for e in page["edges"])
    second = await search(
        api, school.token, first=3, type="KNOWLEDGE", after=page["pageInfo"]["endCursor"]
    )
    assert not set(uris(page)) & set(uris(second))
    transversal = await search(
        api, school.token, q="teams", collection="TRANSVERSAL", lang="EN", first=10
    )
    assert factories.TEAMWORK in uris(transversal)


async def test_bad_cursor_and_page_size(api: Api, school: Partner) -> None:
    body = await api.gql(school.token, SEARCH, {"q": "python", "after": "%%%"})
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    page = await search(api, school.token, first=100000)
    assert len(page["edges"]) == 100
    long = await api.gql(school.token, SEARCH, {"q": "x" * 201})
    assert long["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"


async def test_occupation_and_competence_lookup(api: Api, school: Partner) -> None:
    query = """query($uri: String!, $occupation: String!) {
      competence(uri: $uri) { uri label(lang: NL) { text } description(lang: EN) { text } }
      occupation(uri: $occupation) {
        label(lang: NL) { text language } essential { uri } optional { uri } }
    }"""
    software_developer = (
        "http://data.europa.eu/esco/occupation/f2b15a0e-e65a-438a-affb-29b9d50b77d1"
    )
    body = await api.gql(
        school.token, query, {"uri": factories.PYTHON, "occupation": software_developer}
    )
    assert body["data"]["competence"]["label"]["text"] == "Python (computerprogrammering)"
    assert body["data"]["competence"]["description"]["text"]
    occupation = body["data"]["occupation"]
    assert occupation["label"] == {"text": "software ontwikkelaar", "language": "nl"}
    essential = {c["uri"] for c in occupation["essential"]}
    optional = {c["uri"] for c in occupation["optional"]}
    assert len(essential) > 5 and optional and not essential & optional
    unknown = await api.gql(school.token, query, {"uri": "http://nope", "occupation": "http://no"})
    assert unknown["data"]["competence"] is None


# --- The domain layer directly (service.taxonomy.search), on the shared ESCO database ----------

CRITICAL_THINKING = "http://data.europa.eu/esco/skill/7dd94ad3-13d6-43fe-8b94-51fcbf67ced9"
SOFTWARE_DEVELOPER = "http://data.europa.eu/esco/occupation/f2b15a0e-e65a-438a-affb-29b9d50b77d1"


async def test_search_exact_label_in_dutch_or_english(session: AsyncSession) -> None:
    dutch = await search_competences(session, text="in teams werken", lang="nl", first=3)
    top = dutch.items[0]
    assert (top.competence.uri, top.label, top.label_lang) == (
        factories.TEAMWORK,
        "in teams werken",
        "nl",
    )
    assert top.score >= 4 * TIER  # exact tier
    english = await search_competences(session, text="work in teams", lang="nl", first=3)
    top = english.items[0]
    assert top.competence.uri == factories.TEAMWORK
    assert (top.matched_label, top.label, top.label_lang) == (
        "work in teams",
        "in teams werken",
        "nl",
    )
    fallback = await search_competences(session, text="operate forklift", lang="nl", first=3)
    assert (fallback.items[0].label, fallback.items[0].label_lang) == ("operate forklift", "en")


async def test_search_ignores_case_and_accents(session: AsyncSession) -> None:
    for query in ("KRITISCH DENKEN", "kritisch  denken ", "Critical Thinking"):
        page = await search_competences(session, text=query, lang="nl", first=5)
        assert page.items[0].competence.uri == CRITICAL_THINKING, query
    plain = await search_competences(session, text="prepare canapes", lang="en", first=3)
    assert plain.items[0].matched_label == "prepare canapés"
    assert plain.items[0].score >= 4 * TIER
    accented = await search_competences(session, text="Écologie", lang="nl", first=10)
    unaccented = await search_competences(session, text="ecologie", lang="nl", first=10)
    assert [h.competence.id for h in accented.items] == [h.competence.id for h in unaccented.items]
    assert accented.items[0].matched_label == "ecologie"
    dutch_accent = await search_competences(session, text="firewallregels definieren", lang="nl")
    assert dutch_accent.items[0].matched_label == "firewallregels definiëren"


async def test_search_ranks_prefix_then_word_prefix_then_fuzzy(session: AsyncSession) -> None:
    page = await search_competences(session, text="samenwerk", lang="nl", first=100)
    tiers = [h.score // TIER for h in page.items]
    assert tiers == sorted(tiers, reverse=True)
    assert tiers[0] == 3 and 2 in tiers and 0 in tiers
    for hit in page.items:
        norm = (hit.matched_label or "").lower()
        if hit.score // TIER == 3:
            assert norm.startswith("samenwerk")
        elif hit.score // TIER == 2:
            assert " samenwerk" in norm and not norm.startswith("samenwerk")
        else:
            assert "samenwerk" not in norm  # fuzzy hits only


async def test_search_tolerates_typos(session: AsyncSession) -> None:
    page = await search_competences(session, text="progamming", lang="en", first=20)
    assert page.items and all(h.score < TIER for h in page.items)  # no substring hit
    assert "computer programming" in {h.matched_label for h in page.items}
    typo = await search_competences(session, text="Pyhton", lang="en", first=5)
    assert factories.PYTHON in {h.competence.uri for h in typo.items}
    nothing = await search_competences(session, text="xqzvwk", lang="en")
    assert nothing.items == [] and not nothing.has_next_page and nothing.end_cursor is None


async def test_search_short_text_matches_prefixes_only(session: AsyncSession) -> None:
    page = await search_competences(session, text="Ja", lang="en", first=100)
    assert len(page.items) >= 5
    assert page.items[0].score // TIER == 3  # label prefix first
    for hit in page.items:
        words = (hit.matched_label or "").lower().split()
        assert any(w.startswith("ja") for w in words), hit.matched_label


async def test_search_filters(session: AsyncSession) -> None:
    digital = await search_competences(
        session, text="data", lang="en", collection="digital", first=50
    )
    ids = [h.competence.id for h in digital.items]
    assert len(ids) == 50
    members = (
        await session.execute(
            sql(
                "SELECT count(*) FROM competence_collections "
                "WHERE collection = 'digital' AND competence_id = ANY(:ids)"
            ),
            {"ids": ids},
        )
    ).scalar_one()
    assert members == 50
    knowledge = await search_competences(
        session, text="manage", skill_type="knowledge", reuse_level="cross_sector", first=30
    )
    assert knowledge.items
    assert {(h.competence.skill_type, h.competence.reuse_level) for h in knowledge.items} == {
        ("knowledge", "cross_sector")
    }
    groups = await search_competences(
        session, text="communicatie", concept_type="skill_group", first=30
    )
    assert groups.items and {h.competence.concept_type for h in groups.items} == {"skill_group"}
    both = await search_competences(session, text="communicatie", concept_type=None, first=100)
    assert {h.competence.concept_type for h in both.items} == {"skill", "skill_group"}


async def walk(session: AsyncSession, query: str | None, first: int, **filters: str) -> list[int]:
    collected: list[int] = []
    after = None
    for _ in range(200):
        page = await search_competences(
            session, text=query, lang="en", first=first, after=after, **filters
        )
        collected += [h.competence.id for h in page.items]
        if not page.has_next_page:
            assert page.end_cursor == (page.items[-1].cursor if page.items else None)
            return collected
        assert page.end_cursor == page.items[-1].cursor
        after = page.end_cursor
    raise AssertionError("pagination does not end")


async def test_keyset_pages_cross_tiers_without_gaps(session: AsyncSession) -> None:
    everything = await search_competences(session, text="forklift", lang="en", first=100)
    assert not everything.has_next_page
    scores = [h.score for h in everything.items]
    assert scores == sorted(scores, reverse=True)
    assert max(scores) >= TIER > min(scores)  # substring hits, then fuzzy ones
    expected = [h.competence.id for h in everything.items]
    assert len(expected) > 12
    for first in (1, 4, 7):
        assert await walk(session, "forklift", first) == expected


async def test_browse_without_text_in_id_order(session: AsyncSession) -> None:
    ids = await walk(session, None, 20, skill_type="knowledge", reuse_level="transversal")
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    expected = (
        await session.execute(
            sql(
                "SELECT count(*) FROM competences WHERE concept_type = 'skill' "
                "AND skill_type = 'knowledge' AND reuse_level = 'transversal'"
            )
        )
    ).scalar_one()
    assert len(ids) == expected > 40  # more than two pages


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        "not-base64!",
        base64.urlsafe_b64encode(b"abc").decode(),
        base64.urlsafe_b64encode(b"1:99999999999").decode(),
        base64.urlsafe_b64encode(b"-1:5").decode(),
        base64.urlsafe_b64encode(b"1:2:3").decode(),
        base64.urlsafe_b64encode("1:٣".encode()).decode(),
    ],
)
async def test_malformed_cursor(session: AsyncSession, cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        await search_competences(session, text="python", after=cursor)


async def test_search_cursor_is_not_a_browse_cursor(session: AsyncSession) -> None:
    page = await search_competences(session, text="python", lang="en", first=1)
    with pytest.raises(InvalidCursor):
        await search_competences(session, text=None, after=page.end_cursor)


async def test_lookups_and_pick_label(session: AsyncSession) -> None:
    by_uri = await competences_by_uri(session, [factories.TEAMWORK, factories.FORKLIFT, "x:y"])
    assert set(by_uri) == {factories.TEAMWORK, factories.FORKLIFT}
    teamwork = by_uri[factories.TEAMWORK]
    assert teamwork.preferred_labels == {"en": "work in teams", "nl": "in teams werken"}
    assert (teamwork.concept_type, teamwork.reuse_level) == ("skill", "transversal")
    by_id = await competences_by_id(session, [teamwork.id, 0])
    assert by_id == {teamwork.id: teamwork}
    assert pick_label(teamwork.preferred_labels, "nl") == ("in teams werken", "nl")
    assert pick_label(by_uri[factories.FORKLIFT].preferred_labels, "nl") == (
        "operate forklift",
        "en",
    )
    assert pick_label({"de": "Teamarbeit"}, "nl") == ("Teamarbeit", "de")
    occupation = await occupation_by_uri(session, SOFTWARE_DEVELOPER)
    assert occupation is not None
    assert occupation.preferred_labels["nl"] == "software ontwikkelaar"
    assert len(occupation.essential_ids) > 5 and occupation.optional_ids
    assert not set(occupation.essential_ids) & set(occupation.optional_ids)
    python = (await competences_by_uri(session, [factories.PYTHON]))[factories.PYTHON]
    assert python.id in occupation.essential_ids + occupation.optional_ids
    assert await occupation_by_uri(session, "http://nope") is None
