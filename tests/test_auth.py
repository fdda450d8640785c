"""Authentication: registry-capped scopes, admin rules, token lifetime, claims to principals.

The corpus of bad, forged and revoked tokens is tests/test_token_attacks.py."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.resolve import resolve_principal
from service.auth.tokens import TokenVerifier
from service.errors import Unauthenticated
from service.logs import formatter
from service.models.enums import PrincipalKind
from service.settings import Settings
from tests import factories
from tests.conftest import make_partner
from tests.graphql_client import Api
from tests.test_claims_api import ISSUE
from tests.test_tokens import ISSUER, JWKS_URL, FakeIdp, production_settings

QUERY = "{ issuedClaims(first: 1) { edges { cursor } } }"


async def assert_401(api: Api, token: str | None, reason: str) -> httpx.Response:
    response = await api.post(token, QUERY)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": reason}
    return response


async def test_token_scopes_are_capped_by_the_registry(api: Api) -> None:
    """A client registered for passports:read cannot write claims even if its token says so."""
    partner = await make_partner(api, kind="PUBLIC_EMPLOYMENT_SERVICE", scopes=("PASSPORTS_READ",))
    token = api.client(partner.client_id, "claims:write", "admin")
    body = await api.gql(token, ISSUE, {"input": factories.claim_input(factories.insz())})
    assert body["data"]["issueClaim"]["__typename"] == "NotAuthorized"
    orgs = await api.gql(token, "{ organisations { id } }")
    assert orgs["errors"][0]["extensions"]["code"] == "NOT_AUTHORIZED"


async def test_admin_operations_need_admin(api: Api) -> None:
    partner = await make_partner(api)
    mutation = """mutation($input: RegisterOrganisationInput!) {
      registerOrganisation(input: $input) {
      __typename } }"""
    variables = {
        "input": {
            "kind": "EMPLOYER",
            "name": "X",
            "enterpriseNumber": factories.enterprise_number(),
        }
    }
    for token in (partner.token, api.citizen(factories.insz())):
        body = await api.gql(token, mutation, variables)
        assert body["data"]["registerOrganisation"]["__typename"] == "NotAuthorized"
    body = await api.gql(api.admin(), mutation, variables)
    assert body["data"]["registerOrganisation"]["__typename"] == "Organisation"
    again = await api.gql(api.admin(), mutation, variables)
    assert again["data"]["registerOrganisation"]["__typename"] == "Conflict"
    bad = {"input": {"kind": "EMPLOYER", "name": "X", "enterpriseNumber": "0403170702"}}
    invalid = await api.gql(api.admin(), mutation, bad)
    assert invalid["data"]["registerOrganisation"]["__typename"] == "ValidationFailed"


async def test_development_token_lifetime_is_bounded(api: Api) -> None:
    limit = api.settings.oidc_max_token_lifetime_seconds
    ok = api.token(subject="a", scopes=["admin"], lifetime=timedelta(seconds=limit))
    assert (await api.post(ok, QUERY)).status_code == 200
    response = await assert_401(
        api,
        api.token(subject="a", scopes=["admin"], lifetime=timedelta(seconds=limit + 1)),
        "too_long_lived",
    )
    assert f"over {limit} seconds" in response.headers["www-authenticate"]


async def test_a_refusal_explains_itself_and_is_logged_without_the_token(
    api: Api, tmp_path: Path
) -> None:
    """RFC 6750's challenge names the error, the answer and the log line the reason; the log
    line carries the request id, never the token or the national number in it."""
    from service.auth.keys import load_or_create_dev_key
    from service.auth.tokens import mint_dev_token

    citizen = factories.insz()
    expired = api.token(subject=citizen, lifetime=timedelta(seconds=-120))
    elsewhere = mint_dev_token(load_or_create_dev_key(tmp_path), api.settings, subject=citizen)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter())
    logging.getLogger().addHandler(handler)
    try:
        late = await api.http.post(
            "/graphql",
            json={"query": QUERY},
            headers={"Authorization": f"Bearer {expired}", "X-Request-ID": "req-expired-1"},
        )
        other = await assert_401(api, elsewhere, "unknown_key")
    finally:
        logging.getLogger().removeHandler(handler)
    assert late.status_code == 401
    assert late.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="token expired"'
    )
    assert late.json()["errors"][0]["message"] == (
        "a valid bearer token is required: token expired"
    )
    assert "another data directory" in other.headers["www-authenticate"]
    logged = stream.getvalue()
    refusals = [
        line for line in map(json.loads, logged.splitlines()) if line["event"] == "unauthenticated"
    ]
    assert [line["reason"] for line in refusals] == ["expired", "unknown_key"]
    assert refusals[0]["request_id"] == "req-expired-1"
    assert citizen not in logged and expired not in logged and elsewhere not in logged


async def test_rest_refusals_explain_themselves_too(api: Api) -> None:
    response = await api.http.get("/me/export", headers={"Authorization": "Basic eDp5"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"  # RFC 6750: no bearer, no error
    assert response.json()["reason"] == "not_bearer"
    wrong = api.token(subject=factories.insz(), extra={"aud": "another-service"})
    response = await api.http.get("/me/export", headers={"Authorization": f"Bearer {wrong}"})
    assert response.json()["detail"] == "wrong audience"
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="wrong audience"'
    )


async def _resolve(idp: FakeIdp, settings: Settings, session: AsyncSession, **claims: Any) -> Any:
    """An identity provider's token, verified and resolved as the GraphQL endpoint does."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)) as http:
        verified = await TokenVerifier(settings, dev_key=None, http=http).verify(
            idp.token(**claims)
        )
    return await resolve_principal(session, verified, settings)


async def test_idp_admin_scope_needs_a_listed_subject(
    session: AsyncSession, tmp_path: Path
) -> None:
    idp = FakeIdp()
    settings = production_settings(str(tmp_path), admin_subjects=["staff-7"])
    for claims in (
        {"sub": "85073003328", "scope": "admin"},
        {"sub": "someone", "scope": "admin", "client_id": "admin-console"},
        {"sub": "staff-7", "client_id": "admin-console"},  # listed, but not asking for admin
        {"sub": "staff-7", "scope": "admin passport:citizen"},  # a citizen-facing token
    ):
        with pytest.raises(Unauthenticated):
            await _resolve(idp, settings, session, **claims)
    admin = await _resolve(
        idp, settings, session, sub="staff-7", scope="admin", client_id="admin-console"
    )
    assert admin.is_admin
    assert admin.subject == "staff-7"


async def test_development_admin_only_while_development_tokens_are_accepted(
    session: AsyncSession, api: Api, tmp_path: Path
) -> None:
    claims = jwt.decode(api.admin(), options={"verify_signature": False})
    assert (await resolve_principal(session, claims, api.settings)).is_admin
    configured = Settings(data_dir=tmp_path, oidc_issuer=ISSUER, oidc_jwks_url=JWKS_URL)
    with pytest.raises(Unauthenticated):
        await resolve_principal(session, claims, configured)


async def test_portal_citizen_token_with_client_id_is_a_citizen(
    session: AsyncSession, tmp_path: Path
) -> None:
    idp = FakeIdp()
    settings = production_settings(str(tmp_path), citizen_client_ids=["citizen-portal"])
    portal = await _resolve(
        idp, settings, session, sub="85.07.30-033.28", client_id="citizen-portal"
    )
    assert portal.is_citizen
    assert portal.insz == "85073003328"
    assert portal.subject == "citizen"
    scoped = await _resolve(
        idp, settings, session, client_id="mobile-app", scope="openid passport:citizen"
    )
    assert scoped.is_citizen
    for claims in (
        {"client_id": "citizen-portal", "scope": "admin"},  # refused, not downgraded
        {"client_id": "citizen-portal", "sub": "85073003329"},  # bad check digits
        {"client_id": "unregistered-app"},  # neither citizen-facing nor a registered client
    ):
        with pytest.raises(Unauthenticated):
            await _resolve(idp, settings, session, **claims)


async def test_registered_client_token_is_not_a_citizen(api: Api, session: AsyncSession) -> None:
    """A partner's token is resolved through the registry even when its sub is a valid number."""
    partner = await make_partner(api)
    token = api.token(subject="85073003328", client_id=partner.client_id, scopes=["claims:write"])
    claims = jwt.decode(token, options={"verify_signature": False})
    principal = await resolve_principal(session, claims, api.settings)
    assert principal.kind is PrincipalKind.PARTNER
    assert principal.organisation_id == partner.organisation_id
