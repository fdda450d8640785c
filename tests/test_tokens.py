"""Production token verification against an identity provider's JWKS (served over HTTP)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import SecretStr

from service.auth.tokens import TokenVerifier
from service.errors import Unauthenticated
from service.settings import Environment, Settings

ISSUER = "https://idp.example.test/realms/passport"
JWKS_URL = ISSUER + "/protocol/openid-connect/certs"


class FakeIdp:
    """An identity provider's JWKS endpoint, answered in-process by httpx.MockTransport."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.requests = 0

    def jwks(self) -> dict[str, object]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.requests += 1
        return httpx.Response(200, json=self.jwks())

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


def hs256_signed_with_public_key(idp: FakeIdp) -> str:
    """The classic key-confusion attack: HMAC keyed with the IdP's public key."""
    public_pem = idp.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": "k1"}
    claims = {
        "iss": ISSUER,
        "aud": "competence-passport",
        "sub": "85073003328",
        "iat": 0,
        "exp": 2**31,
    }
    signing_input = b".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=")
        for part in (header, claims)
    )
    signature = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


@pytest.fixture
async def idp() -> FakeIdp:
    return FakeIdp()


def production_settings(tmp: str) -> Settings:
    return Settings(
        environment=Environment.PRODUCTION,
        database_url="postgresql://unused/unused",
        insz_hmac_key=SecretStr("k" * 40),
        oidc_issuer=ISSUER,
        oidc_jwks_url=JWKS_URL,
        oidc_jwks_min_refresh_seconds=60,
        data_dir=Path(tmp),
    )


async def test_idp_tokens_verify_and_keys_are_cached(idp: FakeIdp, tmp_path: object) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)) as http:
        verifier = TokenVerifier(production_settings(str(tmp_path)), dev_key=None, http=http)
        claims = await verifier.verify(idp.token())
        assert claims["sub"] == "85073003328"
        await verifier.verify(idp.token())
        assert idp.requests == 1


async def test_unknown_kid_storm_fetches_at_most_once_per_interval(
    idp: FakeIdp, tmp_path: object
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)) as http:
        verifier = TokenVerifier(production_settings(str(tmp_path)), dev_key=None, http=http)
        started = time.monotonic()
        for i in range(200):
            with pytest.raises(Unauthenticated):
                await verifier.verify(idp.token(kid=f"unknown-{i}"))
        assert idp.requests == 1
        assert time.monotonic() - started < 5


async def test_idp_token_rules(idp: FakeIdp, tmp_path: object) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)) as http:
        verifier = TokenVerifier(production_settings(str(tmp_path)), dev_key=None, http=http)
        bad = [
            idp.token(iss="https://other-idp"),
            idp.token(aud="another-api"),
            idp.token(exp=datetime.now(UTC) - timedelta(minutes=5)),
            idp.token(nbf=datetime.now(UTC) + timedelta(minutes=5)),
            hs256_signed_with_public_key(idp),
        ]
        for token in bad:
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
