"""Who is calling, for GraphQL and REST alike: a bearer JWT, or a share link's token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.state import AppState, app_state
from service.auth.principal import Lookup, Principal
from service.auth.resolve import resolve_principal
from service.consent.service import SHARE_TOKEN_PREFIX, share_link_principal
from service.errors import AuthFailure, Unauthenticated


def bearer(request: Request) -> str:
    """The bearer token of exactly one Authorization header, or Unauthenticated: with two,
    proxies and this service could each act on another one (RFC 9110 allows only one)."""
    sent = request.headers.getlist("authorization")
    if not sent:
        raise Unauthenticated(AuthFailure.MISSING)
    if len(sent) != 1:
        raise Unauthenticated(AuthFailure.SEVERAL_HEADERS)
    scheme, _, token = sent[0].partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthenticated(AuthFailure.NOT_BEARER)
    if not token.strip():
        raise Unauthenticated(AuthFailure.MISSING)
    return token.strip()


async def verified(state: AppState, token: str) -> Lookup:
    """The part of ``authenticate`` that needs no database, done now: a JWT's signature and
    claims (so a forged token is refused before its request costs anything else); returns the
    part that does, the caller's lookup. A share link has no signature: its lookup is the whole
    check, on every request, so a revoked or expired one stops working at once."""
    if token.startswith(SHARE_TOKEN_PREFIX):

        async def link(session: AsyncSession) -> Principal:
            principal = await share_link_principal(session, token)
            if principal is None:
                raise Unauthenticated(AuthFailure.UNKNOWN_LINK)
            return principal

        return link
    claims = await state.verifier.verify(token)
    return partial(resolve_principal, claims=claims, settings=state.settings)


async def authenticate(state: AppState, session: AsyncSession, token: str) -> Principal:
    """Raises Unauthenticated unless the token is a live share link or a valid JWT of a known
    caller."""
    lookup = await verified(state, token)
    return await lookup(session)


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
    principal = await authenticate(state, session, bearer(request))
    await state.limiter.spend(principal, cost)
    return principal
