"""When the database is out of reach or behind on migrations, answers are typed 503s, not 500s."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from service.app import create_app
from service.auth.keys import load_or_create_dev_key
from service.auth.tokens import mint_dev_token
from service.db.engine import database_unavailable
from service.settings import Settings
from tests.databases import create_database, drop_database, rendered, server_of


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_database_down_is_a_typed_503(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nothing",
        data_dir=tmp_path,
        insz_hmac_key=SecretStr("k" * 40),
    )
    key = load_or_create_dev_key(tmp_path)
    tokens = [
        mint_dev_token(
            key, settings, subject="client-c", client_id="client-c", scopes=["claims:write"]
        ),
        mint_dev_token(key, settings, subject="85073003328"),  # resolves without the database
    ]
    async for http in _client(create_app(settings)):
        for token in tokens:
            response = await http.post(
                "/graphql",
                json={"query": "{ me { passport { citizenId } } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 503
            assert response.headers["retry-after"] == "2"
            assert response.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
        ready = await http.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["database"] == "down"


async def test_not_ready_while_migrations_are_behind(database_url: str, tmp_path: Path) -> None:
    server = server_of(database_url)
    name = f"passport_unmigrated_{secrets.token_hex(4)}"
    url = await create_database(server, name)
    try:
        settings = Settings(
            database_url=rendered(url),
            data_dir=tmp_path,
            insz_hmac_key=SecretStr("k" * 40),
        )
        async for http in _client(create_app(settings)):
            ready = await http.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["migration"].startswith("None != ")
    finally:
        await drop_database(server, name)


def test_a_connection_asyncpg_saw_close_is_unavailable_through_any_wrapper() -> None:
    closed = asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed")
    wrapper = RuntimeError("the adapter's own error")
    wrapper.__cause__ = closed
    assert database_unavailable(closed) and database_unavailable(wrapper)
    assert not database_unavailable(asyncpg.InterfaceError("another operation is in progress"))
