"""Process-wide resources, created at startup and reached through the FastAPI app state."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request

from service.auth.ratelimit import RateLimiter
from service.auth.tokens import TokenVerifier
from service.credentials.issuer import Issuer
from service.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    verifier: TokenVerifier
    schema: strawberry.Schema
    hmac_key: bytes
    http: httpx.AsyncClient
    limiter: RateLimiter
    issuer: Issuer


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.passport
    return state
