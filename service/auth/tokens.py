"""Verifies bearer JWTs: issuer, audience, algorithm and token type pinned; keys from JWKS.

Header fields that point at keys (``jku``, ``x5u``, ``jwk``, ``x5c``) are never followed: keys come
only from the configured JWKS URL or, in development without an identity provider, the local
development key. No token lives longer than ``oidc_max_token_lifetime_seconds`` (exp - iat).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from time import monotonic
from time import time as wall_clock
from typing import Any

import httpx
import jwt
import structlog
from cachetools import LRUCache

from service.auth.keys import DevKey
from service.errors import AuthFailure, Unauthenticated
from service.settings import Settings

logger = structlog.get_logger(__name__)

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
LEEWAY_SECONDS = 30
MAX_TOKEN_BYTES = 8192


class JwksCache:
    """Keys by ``kid``, re-read once they reach their maximum age so withdrawn keys are dropped.

    The age is ``max_age_seconds`` or a smaller Cache-Control max-age of the JWKS response, never
    below ``min_refresh_seconds``; an unknown kid triggers at most one fetch per
    ``min_refresh_seconds`` too, so a storm of made-up kids cannot hammer the identity provider.
    If a refresh fails, the previous keys stay usable for ``grace_seconds`` past their age: an
    outage of the identity provider does not lock everyone out at once, yet a withdrawn key is
    never accepted beyond its age plus the grace period.
    """

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        min_refresh_seconds: float,
        max_age_seconds: float,
        grace_seconds: float,
    ) -> None:
        self._url = url
        self._http = http
        self._min_refresh = min_refresh_seconds
        self._max_age = max_age_seconds
        self._grace = grace_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at = float("-inf")
        self._ttl = max_age_seconds  # of the keys held, after Cache-Control
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def key(self, kid: str) -> jwt.PyJWK | None:
        age = monotonic() - self._loaded_at
        if kid in self._keys and age < self._ttl:
            return self._keys[kid]
        if kid in self._keys and self._lock.locked() and age < self._ttl + self._grace:
            return self._keys[kid]  # another request is refreshing: don't queue behind its fetch
        async with self._lock:
            now = monotonic()
            wanted = kid not in self._keys or now - self._loaded_at >= self._ttl
            if wanted and now - self._attempted_at >= self._min_refresh:
                await self._refresh()
            if monotonic() - self._loaded_at >= self._ttl + self._grace:
                return None
            return self._keys.get(kid)

    async def _refresh(self) -> None:
        self._attempted_at = monotonic()
        self.fetch_count += 1
        try:
            response = await self._http.get(self._url, timeout=5.0)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWKError, jwt.PyJWKSetError) as exc:
            logger.warning(
                "jwks_refresh_failed",
                error=type(exc).__name__,
                previous_keys_usable=self._attempted_at - self._loaded_at < self._ttl + self._grace,
            )
            return
        self._keys = {key.key_id: key for key in keys if key.key_id}
        self._loaded_at = self._attempted_at
        advertised = _cache_max_age(response.headers.get("cache-control", ""))
        self._ttl = max(self._min_refresh, min(self._max_age, advertised))


def _cache_max_age(cache_control: str) -> float:
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.strip('" ').isdigit():
            return float(value.strip('" '))
    return float("inf")


class TokenVerifier:
    def __init__(
        self, settings: Settings, *, dev_key: DevKey | None, http: httpx.AsyncClient | None
    ) -> None:
        self._settings = settings
        self._dev_key = dev_key if settings.dev_tokens_allowed else None
        # SHA-256 of a token -> its claims and key id; bounded, so a stream of valid tokens
        # cannot grow it without end (an invalid one is never kept).
        self._verified: LRUCache[bytes, tuple[dict[str, Any], str]] = LRUCache(
            settings.verified_token_cache or 1
        )
        self._keep = settings.verified_token_cache > 0
        self._jwks = (
            JwksCache(
                settings.oidc_jwks_url,
                http,
                min_refresh_seconds=settings.oidc_jwks_min_refresh_seconds,
                max_age_seconds=settings.oidc_jwks_max_age_seconds,
                grace_seconds=settings.oidc_jwks_stale_grace_seconds,
            )
            if settings.oidc_jwks_url and http is not None
            else None
        )

    @property
    def jwks(self) -> JwksCache | None:
        return self._jwks

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or Unauthenticated saying what is wrong with it. A token
        verified before is not verified again until it expires: its signature cannot change,
        and its key is asked for again (one the identity provider withdrew refuses it)."""
        digest = hashlib.sha256(token.encode()).digest()
        known = self._verified.get(digest)
        if known is not None:
            claims, kid = known
            if wall_clock() > claims["exp"] + LEEWAY_SECONDS:
                del self._verified[digest]
                raise Unauthenticated(AuthFailure.EXPIRED)
            if await self._key_still_published(kid):
                return dict(claims)
            del self._verified[digest]
        claims, kid = await self._verify(token)
        if self._keep:
            self._verified[digest] = (claims, kid)
        return dict(claims)

    async def _key_still_published(self, kid: str) -> bool:
        if self._dev_key is not None and kid == self._dev_key.kid:
            return True
        return self._jwks is not None and await self._jwks.key(kid) is not None

    async def _verify(self, token: str) -> tuple[dict[str, Any], str]:
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise Unauthenticated(
                AuthFailure.MALFORMED, f"not a JWT of at most {MAX_TOKEN_BYTES} bytes"
            )
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(AuthFailure.MALFORMED) from exc
        kid, typ = header.get("kid"), str(header.get("typ", "")).lower()
        if not isinstance(kid, str):
            raise Unauthenticated(AuthFailure.NO_KEY_ID)
        if self._dev_key is not None and kid == self._dev_key.kid:
            key: Any = self._dev_key.public_key
            issuer, algorithms = self._settings.dev_token_issuer, ["EdDSA"]
            if typ not in ACCESS_TOKEN_TYPES:
                raise Unauthenticated(AuthFailure.WRONG_TYPE)
        elif self._jwks is not None and self._settings.oidc_issuer:
            if typ not in {t.lower() for t in self._settings.oidc_token_types}:
                raise Unauthenticated(AuthFailure.WRONG_TYPE)
            found = await self._jwks.key(kid)
            if found is None:
                raise Unauthenticated(AuthFailure.UNKNOWN_KEY)
            key, issuer = found, self._settings.oidc_issuer
            algorithms = list(self._settings.oidc_algorithms)
            if found.algorithm_name not in algorithms:
                raise Unauthenticated(AuthFailure.ALGORITHM)
        elif self._dev_key is not None:
            # The usual development mishap: a token minted with another folder's key.
            raise Unauthenticated(
                AuthFailure.UNKNOWN_KEY,
                "unknown signing key: not this server's development key (minted with another"
                " data directory?)",
            )
        else:
            raise Unauthenticated(AuthFailure.UNKNOWN_KEY)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._settings.oidc_audience,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise _refusal(exc) from exc
        # jwt.decode refused an iat in the future, so no token outlives now + the maximum.
        longest = self._settings.oidc_max_token_lifetime_seconds
        if int(claims["exp"]) - int(claims["iat"]) > longest:
            raise Unauthenticated(
                AuthFailure.TOO_LONG_LIVED, f"token lifetime (exp - iat) over {longest} seconds"
            )
        return claims, kid


REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
# PyJWT's errors, most specific first (ExpiredSignatureError is an InvalidTokenError too).
_REFUSALS: list[tuple[type[jwt.PyJWTError], AuthFailure]] = [
    (jwt.ExpiredSignatureError, AuthFailure.EXPIRED),
    (jwt.ImmatureSignatureError, AuthFailure.NOT_YET_VALID),
    (jwt.InvalidAudienceError, AuthFailure.WRONG_AUDIENCE),
    (jwt.InvalidIssuerError, AuthFailure.WRONG_ISSUER),
    (jwt.MissingRequiredClaimError, AuthFailure.MISSING_CLAIM),
    (jwt.InvalidSignatureError, AuthFailure.BAD_SIGNATURE),
    (jwt.InvalidAlgorithmError, AuthFailure.ALGORITHM),
]


def _refusal(exc: jwt.PyJWTError) -> Unauthenticated:
    for kind, reason in _REFUSALS:
        if isinstance(exc, kind):
            if isinstance(exc, jwt.MissingRequiredClaimError) and exc.claim in REQUIRED_CLAIMS:
                return Unauthenticated(reason, f"the token has no {exc.claim} claim")
            return Unauthenticated(reason)
    return Unauthenticated(AuthFailure.MALFORMED)


def mint_dev_token(
    dev_key: DevKey,
    settings: Settings,
    *,
    subject: str,
    scopes: list[str] | None = None,
    client_id: str | None = None,
    lifetime: timedelta | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A development access token (RFC 9068 shape), signed by the local key.

    Without scopes and client_id it is a citizen's token and carries the citizen scope, as one
    from the citizen portal would; the lifetime defaults to the longest the verifier accepts.
    """
    if scopes is None and client_id is None:
        scopes = [settings.citizen_scope]
    if lifetime is None:
        lifetime = timedelta(seconds=settings.oidc_max_token_lifetime_seconds)
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
