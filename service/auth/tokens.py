"""Verifies bearer JWTs: issuer, audience, algorithm and token type pinned; keys from JWKS.

Header fields that point at keys (``jku``, ``x5u``, ``jwk``, ``x5c``) are never followed: keys come
only from the configured JWKS URL or, outside production, the local development key.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import structlog

from service.auth.keys import DevKey
from service.errors import Unauthenticated
from service.settings import Settings

logger = structlog.get_logger(__name__)

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
LEEWAY_SECONDS = 30
MAX_TOKEN_BYTES = 8192


class JwksCache:
    """Keys by ``kid``; an unknown kid triggers at most one fetch per refresh interval."""

    def __init__(self, url: str, http: httpx.AsyncClient, min_refresh_seconds: float) -> None:
        self._url = url
        self._http = http
        self._min_refresh = min_refresh_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def key(self, kid: str) -> jwt.PyJWK | None:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= self._min_refresh:
                await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        self.fetch_count += 1
        try:
            response = await self._http.get(self._url, timeout=5.0)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWKError, jwt.PyJWKSetError):
            logger.warning("jwks_refresh_failed")
            return
        self._keys = {key.key_id: key for key in keys if key.key_id}


class TokenVerifier:
    def __init__(
        self, settings: Settings, *, dev_key: DevKey | None, http: httpx.AsyncClient | None
    ) -> None:
        self._settings = settings
        self._dev_key = None if settings.is_production else dev_key
        self._jwks = (
            JwksCache(settings.oidc_jwks_url, http, settings.oidc_jwks_min_refresh_seconds)
            if settings.oidc_jwks_url and http is not None
            else None
        )

    @property
    def jwks(self) -> JwksCache | None:
        return self._jwks

    async def verify(self, token: str) -> dict[str, Any]:
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise Unauthenticated
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated from exc
        kid, typ = header.get("kid"), str(header.get("typ", "")).lower()
        if not isinstance(kid, str):
            raise Unauthenticated
        if self._dev_key is not None and kid == self._dev_key.kid:
            key: Any = self._dev_key.public_key
            issuer, algorithms = self._settings.dev_token_issuer, ["EdDSA"]
            if typ not in ACCESS_TOKEN_TYPES:
                raise Unauthenticated
        elif self._jwks is not None and self._settings.oidc_issuer:
            if typ not in {t.lower() for t in self._settings.oidc_token_types}:
                raise Unauthenticated
            found = await self._jwks.key(kid)
            if found is None:
                raise Unauthenticated
            key, issuer = found, self._settings.oidc_issuer
            algorithms = list(self._settings.oidc_algorithms)
            if found.algorithm_name not in algorithms:
                raise Unauthenticated
        else:
            raise Unauthenticated
        try:
            return jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._settings.oidc_audience,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated from exc


def mint_dev_token(
    dev_key: DevKey,
    settings: Settings,
    *,
    subject: str,
    scopes: list[str] | None = None,
    client_id: str | None = None,
    lifetime: timedelta = timedelta(hours=12),
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A development access token (RFC 9068 shape), signed by the local key."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": settings.dev_token_issuer,
        "aud": settings.oidc_audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    if client_id:
        claims["client_id"] = client_id
    claims.update(extra or {})
    return jwt.encode(
        claims,
        dev_key.private_key,
        algorithm="EdDSA",
        headers={"kid": dev_key.kid, "typ": "at+jwt"},
    )
