"""Production token verification against an identity provider's JWKS (served over HTTP).

The attacks (forged, stale, malformed tokens, an unknown-kid storm) are in
tests/test_token_attacks.py, sent over HTTP in both development and identity-provider mode."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import SecretStr
from structlog.testing import capture_logs

from service.auth import tokens
from service.auth.tokens import TokenVerifier
from service.errors import AuthFailure, Unauthenticated
from service.settings import Environment, Settings

ISSUER = "https://idp.example.test/realms/passport"
JWKS_URL = ISSUER + "/protocol/openid-connect/certs"


class FakeIdp:
    """An identity provider's JWKS endpoint, answered in-process by httpx.MockTransport."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.published: dict[str, rsa.RSAPrivateKey] = {"k1": self.key}
        self.cache_control: str | None = None
        self.failing = False
        self.requests = 0

    def jwks(self) -> dict[str, object]:
        return {
            "keys": [
                {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": kid, "alg": "RS256"}
                for kid, key in self.published.items()
            ]
        }

    def withdraw_k1(self) -> None:
        """Key rotation: k1 is no longer listed, a new k2 is."""
        self.published = {"k2": rsa.generate_private_key(public_exponent=65537, key_size=2048)}

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.requests += 1
        if self.failing:
            return httpx.Response(503)
        headers = {"cache-control": self.cache_control} if self.cache_control else {}
        return httpx.Response(200, json=self.jwks(), headers=headers)

    def token(self, kid: str = "k1", **overrides: object) -> str:
        now = datetime.now(UTC)
        claims: dict[str, object] = {
            "iss": ISSUER,
            "aud": "competence-passport",
            "sub": "85073003328",
            "iat": now,
            "exp": now + timedelta(minutes=5),
        }
        claims.update(overrides)
        return jwt.encode(
            claims, self.key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"}
        )


class Clock:
    """Stands in for time.monotonic in the JWKS cache."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def idp() -> FakeIdp:
    return FakeIdp()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(tokens, "monotonic", clock)
    return clock


def production_settings(tmp: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": Environment.PRODUCTION,
        "database_url": "postgresql://unused/unused",
        "insz_hmac_key": SecretStr("k" * 40),
        "webhook_secrets_key": SecretStr("w" * 40),
        "oidc_issuer": ISSUER,
        "oidc_jwks_url": JWKS_URL,
        "oidc_audience": "competence-passport",
        "oidc_jwks_min_refresh_seconds": 60,
        "data_dir": Path(tmp),
        "public_base_url": "https://passport.example.org",
        "signing_keys_file": Path(tmp) / "signing-keys.json",
    }
    return Settings(**{**values, **overrides})


async def test_idp_tokens_verify_and_keys_are_cached(idp: FakeIdp, tmp_path: object) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)) as http:
        verifier = TokenVerifier(production_settings(str(tmp_path)), dev_key=None, http=http)
        claims = await verifier.verify(idp.token())
        assert claims["sub"] == "85073003328"
        await verifier.verify(idp.token())
        assert idp.requests == 1


async def test_withdrawn_key_stops_being_accepted_after_max_age(
    idp: FakeIdp, tmp_path: object, clock: Clock
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)) as http:
        verifier = TokenVerifier(production_settings(str(tmp_path)), dev_key=None, http=http)
        token = idp.token()
        await verifier.verify(token)
        idp.withdraw_k1()
        clock.now += 599
        await verifier.verify(token)  # cached keys are still young enough
        assert idp.requests == 1
        clock.now += 2
        with pytest.raises(Unauthenticated):
            await verifier.verify(token)
        assert idp.requests == 2


async def test_smaller_cache_control_max_age_is_honoured_down_to_the_min_refresh(
    idp: FakeIdp, tmp_path: object, clock: Clock
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)) as http:
        verifier = TokenVerifier(production_settings(str(tmp_path)), dev_key=None, http=http)
        token = idp.token()
        idp.cache_control = "public, max-age=120"
        await verifier.verify(token)
        clock.now += 119
        await verifier.verify(token)
        assert idp.requests == 1
        idp.cache_control = "no-cache, max-age=0"  # below the 60 s min refresh interval
        clock.now += 2
        await verifier.verify(token)
        assert idp.requests == 2
        clock.now += 59
        await verifier.verify(token)
        assert idp.requests == 2
        clock.now += 2
        await verifier.verify(token)
        assert idp.requests == 3


async def test_failed_refresh_keeps_the_old_keys_for_the_grace_period_only(
    idp: FakeIdp, tmp_path: object, clock: Clock
) -> None:
    settings = production_settings(str(tmp_path), oidc_jwks_stale_grace_seconds=300)
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)) as http:
        verifier = TokenVerifier(settings, dev_key=None, http=http)
        token = idp.token()
        await verifier.verify(token)
        idp.failing = True
        clock.now += 601
        with capture_logs() as logs:
            await verifier.verify(token)
        assert logs == [
            {
                "event": "jwks_refresh_failed",
                "log_level": "warning",
                "error": "HTTPStatusError",
                "previous_keys_usable": True,
            }
        ]
        clock.now += 30
        await verifier.verify(token)
        assert idp.requests == 2  # retried at most once per min refresh interval
        clock.now += 268  # 899 s after the keys were read: 600 max age + 300 grace - 1
        await verifier.verify(token)
        assert idp.requests == 3
        clock.now += 2
        with pytest.raises(Unauthenticated):
            await verifier.verify(token)
        assert idp.requests == 3
        idp.failing = False
        clock.now += 60
        await verifier.verify(token)
        assert idp.requests == 4


async def test_token_lifetime_is_bounded(idp: FakeIdp, tmp_path: object) -> None:
    now = datetime.now(UTC)
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)) as http:
        settings = production_settings(str(tmp_path))
        limit = settings.oidc_max_token_lifetime_seconds
        verifier = TokenVerifier(settings, dev_key=None, http=http)
        await verifier.verify(idp.token(iat=now, exp=now + timedelta(seconds=limit)))
        for token in (
            idp.token(iat=now, exp=now + timedelta(seconds=limit + 1)),
            idp.token(iat=now - timedelta(hours=2), exp=now + timedelta(minutes=5)),
            idp.token(iat=now + timedelta(hours=2), exp=now + timedelta(hours=2, minutes=5)),
        ):
            with pytest.raises(Unauthenticated):
                await verifier.verify(token)


async def test_production_refuses_development_tokens(tmp_path: object) -> None:
    from service.auth.keys import load_or_create_dev_key
    from service.auth.tokens import mint_dev_token

    settings = production_settings(str(tmp_path))
    key = load_or_create_dev_key(Path(str(tmp_path)))
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(404))
    ) as http:
        verifier = TokenVerifier(settings, dev_key=key, http=http)
        with pytest.raises(Unauthenticated):
            await verifier.verify(mint_dev_token(key, settings, subject="x", scopes=["admin"]))


def test_production_settings_refuse_defaults() -> None:
    with pytest.raises(ValueError, match="PASSPORT_INSZ_HMAC_KEY"):
        Settings(
            environment=Environment.PRODUCTION,
            database_url="postgresql://x/y",
            oidc_issuer=ISSUER,
            oidc_jwks_url=JWKS_URL,
        )


async def test_a_slow_refresh_does_not_hold_up_other_requests(
    idp: FakeIdp, tmp_path: object, clock: Clock
) -> None:
    """Once keys are due for a refresh, one request fetches; the others keep the known keys."""
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        if idp.requests:  # the first fetch is answered at once
            await release.wait()
        return idp.handler(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as http:
        verifier = TokenVerifier(production_settings(str(tmp_path)), dev_key=None, http=http)
        token = idp.token()
        await verifier.verify(token)
        clock.now += 601  # past the maximum age, within the grace period
        refreshing = asyncio.create_task(verifier.verify(token))
        await asyncio.sleep(0.01)
        others = [verifier.verify(token) for _ in range(20)]
        done = await asyncio.wait_for(asyncio.gather(*others), timeout=1)
        assert len(done) == 20 and not refreshing.done()
        release.set()
        await refreshing
        assert idp.requests == 2


async def test_a_verified_token_is_not_verified_again_until_it_expires(
    idp: FakeIdp, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = 0
    real = jwt.decode

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal decoded
        decoded += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counting)
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)) as http:
        verifier = TokenVerifier(production_settings(str(tmp_path)), dev_key=None, http=http)
        token = idp.token()
        first = await verifier.verify(token)
        first["sub"] = "changed by a caller"  # callers get copies: the cache stays whole
        assert (await verifier.verify(token))["sub"] == "85073003328"
        assert decoded == 1
        # past its expiry (and the leeway) it is refused without a signature check
        expiry = first["exp"] + tokens.LEEWAY_SECONDS + 1
        monkeypatch.setattr(tokens, "wall_clock", lambda: expiry)
        with pytest.raises(Unauthenticated) as refused:
            await verifier.verify(token)
        assert refused.value.reason is AuthFailure.EXPIRED
        assert decoded == 1
