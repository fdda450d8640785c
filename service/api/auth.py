"""Who is calling, for GraphQL and REST alike: a bearer JWT, or a share link's token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.state import AppState, app_state
from service.auth.principal import Principal
from service.auth.resolve import resolve_principal
from service.consent.service import SHARE_TOKEN_PREFIX, share_link_principal
from service.errors import Unauthenticated


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authenticate(state: AppState, session: AsyncSession, token: str) -> Principal:
    """Raises Unauthenticated. A share link is looked up on every request, so a revoked or
    expired one stops working at once; anything else must be a valid JWT of a known caller."""
    if token.startswith(SHARE_TOKEN_PREFIX):
        principal = await share_link_principal(session, token)
        if principal is None:
            raise Unauthenticated
        return principal
    claims = await state.verifier.verify(token)
    return await resolve_principal(session, claims, state.settings)


@asynccontextmanager
async def rest_transaction(
    request: Request, cost: int
) -> AsyncIterator[tuple[AsyncSession, Principal]]:
    """A REST call: authenticated, charged ``cost`` against the caller's rate limit, in one
    transaction that is committed when the block ends, before the response is sent."""
    state = app_state(request)
    async with state.sessions() as session:
        principal = await charged_principal(state, session, request, cost)
        yield session, principal
        await session.commit()


async def charged_principal(
    state: AppState, session: AsyncSession, request: Request, cost: int
) -> Principal:
    """The caller of a REST request, once ``cost`` is charged to its rate limit."""
    token = bearer(request)
    if token is None:
        raise Unauthenticated
    principal = await authenticate(state, session, token)
    await state.limiter.spend(principal, cost)
    return principal
