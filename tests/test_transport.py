"""The GraphQL transport: limits, refusals and masking, all before any resolver runs."""

from __future__ import annotations

from tests.conftest import StatementCounter
from tests.graphql_client import Api


async def test_get_and_graphiql_are_off(api: Api) -> None:
    response = await api.http.get("/graphql", params={"query": "{ __typename }"})
    assert response.status_code == 405


async def test_body_limits_and_shapes(api: Api) -> None:
    token = api.admin()
    headers = {"Authorization": f"Bearer {token}"}
    huge = "{ " + "__typename " * 100_000 + "}"  # 1.1 MB, past the 1 MiB limit
    response = await api.http.post("/graphql", json={"query": huge}, headers=headers)
    assert response.status_code == 413
    response = await api.http.post(
        "/graphql", content=b"{not json", headers={**headers, "content-type": "application/json"}
    )
    assert response.status_code == 400
    response = await api.http.post(
        "/graphql", json=[{"query": "{ __typename }"}] * 3, headers=headers
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BATCHING_NOT_SUPPORTED"
    response = await api.http.post("/graphql", json={"query": 42}, headers=headers)
    assert response.status_code == 400
    response = await api.http.post(
        "/graphql", json={"query": "{ __typename }", "variables": []}, headers=headers
    )
    assert response.status_code == 400
    response = await api.http.post(
        "/graphql", content=b"query", headers={**headers, "content-type": "text/plain"}
    )
    assert response.status_code == 415
    response = await api.http.post(
        "/graphql", json={"query": "fragment F on Query { __typename }"}, headers=headers
    )
    assert response.status_code == 400


ABUSE = {
    "depth": "{ " + "a { " * 50 + "b" + " }" * 50 + " }",
    "aliases": "{ " + " ".join(f"a{i}: __typename" for i in range(100)) + " }",
    "tokens": "{ " + "__typename " * 3000 + "}",
    "Cannot spread fragment": (
        "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
    ),
}


async def test_abuse_is_rejected_before_any_sql(
    api: Api, count_statements: StatementCounter
) -> None:
    token = api.admin()  # an admin token needs no registry lookup, so any SQL would be execution
    for expected, query in ABUSE.items():
        count_statements.statements.clear()
        response = await api.post(token, query)
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None
        assert any(expected.lower() in e["message"].lower() for e in body["errors"]), body["errors"]
        assert count_statements.count == 0, count_statements.statements


async def test_introspection_is_off(api: Api) -> None:
    body = (await api.post(api.admin(), "{ __schema { types { name } } }")).json()
    assert body["data"] is None
    assert "introspection" in body["errors"][0]["message"].lower()


async def test_health(api: Api) -> None:
    assert (await api.http.get("/health/live")).json() == {
        "status": "ok",
        "database": None,
        "migration": None,
    }
    ready = await api.http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["database"] == "up"
