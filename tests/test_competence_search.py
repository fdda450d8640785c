"""Competence search over GraphQL: Dutch and English, accents, case, typos, keyset pages."""

from __future__ import annotations

from typing import Any

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
