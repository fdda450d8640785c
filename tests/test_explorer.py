"""The explorable API of development: the URL `passport serve` prints opens GraphiQL, served from
files in the package (no CDN), and introspection needs no token; production has neither."""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from graphql import (
    build_client_schema,
    build_schema,
    get_introspection_query,
    lexicographic_sort_schema,
    parse,
    print_schema,
)

from service.app import create_app
from service.schema.cost import selection_depth
from service.settings import Environment, Settings
from tests.test_tokens import production_settings

ROOT = Path(__file__).resolve().parents[1]
VENDORED = ROOT / "service" / "api" / "graphiql"


@pytest.fixture(scope="module")
async def development(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The suite's app as development has it by default: the tools on."""
    defaults = settings.model_copy(update={"graphql_dev_tools": None})
    assert defaults.dev_tools
    app = create_app(defaults)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield http


def test_the_tools_are_on_in_development_and_off_in_production(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).dev_tools
    assert not Settings(data_dir=tmp_path, graphql_dev_tools=False).dev_tools
    production = production_settings(str(tmp_path))
    assert production.environment is Environment.PRODUCTION and not production.dev_tools
    with pytest.raises(ValueError, match="PASSPORT_GRAPHQL_DEV_TOOLS must be off"):
        production_settings(str(tmp_path), graphql_dev_tools=True)


async def test_the_printed_url_opens_graphiql_from_the_package(
    development: httpx.AsyncClient,
) -> None:
    page = await development.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "connect-src 'self'" in policy
    assert "GraphiQL" in page.text and "passport token demo" in page.text
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(loaded) == 6 and all(url.startswith("/graphql/explorer/") for url in loaded)
    assert "http://" not in page.text.replace("http://127.0.0.1", "")
    assert "https://" not in page.text
    sums: dict[str, str] = {}
    for line in (VENDORED / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        sums[name] = digest
    for url in loaded:
        name = url.rsplit("/", 1)[1]
        zipped = await development.get(url, headers={"Accept-Encoding": "gzip"})
        plain = await development.get(url, headers={"Accept-Encoding": "identity"})
        assert zipped.status_code == plain.status_code == 200, url
        assert zipped.content == plain.content  # httpx decodes Content-Encoding: gzip
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        assert plain.headers["content-type"].startswith(kind)
        if f"./{name}.gz" in sums:  # vendored: exactly the bytes shipped, checksum and all
            stored = (VENDORED / f"{name}.gz").read_bytes()
            assert hashlib.sha256(stored).hexdigest() == sums[f"./{name}.gz"]
            assert zipped.headers["content-encoding"] == "gzip"
            assert plain.content == gzip.decompress(stored)
            assert "content-encoding" not in plain.headers
    # Swagger UI would load from a CDN: not on by default.
    assert (await development.get("/docs")).status_code == 404
    bundle = (await development.get("/graphql/explorer/graphiql.min.js")).text
    assert "GraphiQL" in bundle and 'require("react")' in bundle
    unknown = await development.get("/graphql/explorer/../../pyproject.toml")
    assert unknown.status_code == 404


async def test_introspection_needs_no_token_in_development(
    development: httpx.AsyncClient,
) -> None:
    """What GraphiQL asks first, before anyone pasted a token, answers the committed schema."""
    query = get_introspection_query(
        descriptions=True, specified_by_url=True, input_value_deprecation=True
    )
    response = await development.post(
        "/graphql", json={"query": query, "operationName": "IntrospectionQuery"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    served = lexicographic_sort_schema(build_client_schema(body["data"]))
    committed = lexicographic_sort_schema(build_schema((ROOT / "schema.graphql").read_text()))
    assert print_schema(served) == print_schema(committed)
    with_a_stale_token = await development.post(
        "/graphql",
        json={"query": "{ __schema { queryType { name } } }"},
        headers={"Authorization": "Bearer expired-or-pasted-wrong"},
    )
    assert with_a_stale_token.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


@pytest.mark.parametrize(
    "query",
    [
        "{ me { passport { citizenId } } }",
        "{ __schema { queryType { name } } me { passport { citizenId } } }",
        "query { ...F } fragment F on Query { __typename }",
        "mutation { __typename }",
    ],
)
async def test_anything_more_than_the_schema_still_needs_a_token(
    development: httpx.AsyncClient, query: str
) -> None:
    response = await development.post("/graphql", json={"query": query})
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["reason"] == "missing"


async def test_production_serves_neither(settings: Settings) -> None:
    """The suite's app has production's GraphQL settings (tests/conftest.py)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.get("/graphql")).status_code == 405
            assert (await http.get("/graphql/explorer/graphiql.min.js")).status_code == 404
            schema = await http.post("/graphql", json={"query": "{ __schema { types { name } } }"})
            assert schema.status_code == 401


def test_the_vendored_files_are_package_data() -> None:
    """Every file the page needs is in the wheel, with its licence; the folder stays small."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["service.api"]
    shipped = [p.name for p in VENDORED.iterdir() if p.name != "update.sh"]
    for name in shipped:
        assert any(fnmatch.fnmatch(f"graphiql/{name}", pattern) for pattern in patterns), name
    for needed in ("LICENSE.graphiql", "LICENSE.react", "LICENSE.react-dom", "VERSIONS"):
        assert needed in shipped
    assert sum(p.stat().st_size for p in VENDORED.iterdir()) < 800 * 1024


async def test_schema_queries_may_nest_twice_as_deep_and_no_deeper(
    development: httpx.AsyncClient, settings: Settings
) -> None:
    """Enough for the standard introspection query (depth 14), not a way around the limit."""
    limit = 2 * settings.graphql_max_depth

    def nested(levels: int) -> str:
        inner = "name " + "ofType { name " * levels + "}" * levels
        return f"{{ __schema {{ types {{ fields {{ type {{ {inner} }} }} }} }} }}"

    fits, deeper = nested(limit - 4), nested(limit - 3)
    assert selection_depth(parse(fits), 100) == limit
    assert (await development.post("/graphql", json={"query": fits})).json().get("errors") is None
    errors = (await development.post("/graphql", json={"query": deeper})).json()["errors"]
    assert errors[0]["message"] == f"The operation exceeds the maximum depth of {limit}."
