"""A small GraphQL client over the ASGI app, plus principals with real signed tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from service.auth.keys import DevKey
from service.auth.tokens import mint_dev_token
from service.settings import Settings


@dataclass
class Api:
    http: httpx.AsyncClient
    key: DevKey
    settings: Settings

    def token(self, **kwargs: Any) -> str:
        kwargs.setdefault("lifetime", timedelta(hours=1))
        return mint_dev_token(self.key, self.settings, **kwargs)

    def citizen(self, insz: str) -> str:
        return self.token(subject=insz)

    def client(self, client_id: str, *scopes: str) -> str:
        return self.token(subject=client_id, client_id=client_id, scopes=list(scopes))

    def admin(self) -> str:
        return self.token(subject="test-admin", scopes=["admin"])

    async def post(
        self, token: str | None, query: str, variables: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def gql(
        self, token: str | None, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        response = await self.post(token, query, variables)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@dataclass
class Partner:
    organisation_id: uuid.UUID
    client_id: str
    token: str
    name: str
