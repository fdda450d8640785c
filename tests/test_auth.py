"""Authentication: every bad token is a 401 with nothing executed; revoked clients lose access."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.auth.keys import DevKey
from tests import factories
from tests.conftest import make_partner
from tests.graphql_client import Api
from tests.test_claims_api import ISSUE

QUERY = "{ issuedClaims(first: 1) { edges { cursor } } }"


def _b64(data: Mapping[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def assert_401(api: Api, token: str | None) -> None:
    response = await api.post(token, QUERY)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_missing_and_garbage_tokens(api: Api) -> None:
    await assert_401(api, None)
    await assert_401(api, "not-a-jwt")
    await assert_401(api, "a.b.c")
    await assert_401(api, "x" * 10000)


async def test_alg_none_is_refused(api: Api) -> None:
    header = {"alg": "none", "typ": "at+jwt", "kid": api.key.kid}
    claims = jwt.decode(api.admin(), options={"verify_signature": False})
    await assert_401(api, f"{_b64(header)}.{_b64(claims)}.")


async def test_foreign_key_and_wrong_claims(api: Api) -> None:
    stranger = DevKey(Ed25519PrivateKey.generate(), api.key.kid)  # same kid, other key
    forged = jwt.encode(
        {
            "sub": "x",
            "scope": "admin",
            "iss": api.settings.dev_token_issuer,
            "aud": api.settings.oidc_audience,
            "iat": 0,
            "exp": 2**31,
        },
        stranger.private_key,
        algorithm="EdDSA",
        headers={"kid": api.key.kid, "typ": "at+jwt"},
    )
    await assert_401(api, forged)
    await assert_401(api, api.token(subject="a", scopes=["admin"], extra={"iss": "https://evil"}))
    await assert_401(api, api.token(subject="a", scopes=["admin"], extra={"aud": "other-service"}))
    await assert_401(api, api.token(subject="a", scopes=["admin"], lifetime=timedelta(minutes=-5)))


async def test_wrong_type_header(api: Api) -> None:
    token = jwt.encode(
        {
            "sub": "a",
            "scope": "admin",
            "iss": api.settings.dev_token_issuer,
            "aud": api.settings.oidc_audience,
            "iat": 0,
            "exp": 2**31,
        },
        api.key.private_key,
        algorithm="EdDSA",
        headers={"kid": api.key.kid, "typ": "JWT"},
    )
    await assert_401(api, token)


async def test_unknown_client_and_citizen_without_valid_number(api: Api) -> None:
    await assert_401(api, api.client("never-registered", "claims:write"))
    await assert_401(api, api.citizen("85073003329"))


@pytest.mark.parametrize("status", ["SUSPENDED", "DELETED"])
async def test_suspended_or_deleted_client_loses_access_on_next_request(
    api: Api, status: str
) -> None:
    partner = await make_partner(api)
    assert (await api.post(partner.token, QUERY)).status_code == 200
    mutation = """mutation($c: String!, $s: ClientStatus!) {
      setClientStatus(clientId: $c, status: $s) { __typename } }"""
    await api.gql(api.admin(), mutation, {"c": partner.client_id, "s": status})
    await assert_401(api, partner.token)
    response = await api.post(
        partner.token, ISSUE, {"input": factories.claim_input(factories.insz())}
    )
    assert response.status_code == 401


async def test_suspended_organisation_loses_access(api: Api) -> None:
    partner = await make_partner(api)
    mutation = (
        "mutation($id: ID!) { setOrganisationStatus(id: $id, status: SUSPENDED) { __typename } }"
    )
    await api.gql(api.admin(), mutation, {"id": str(partner.organisation_id)})
    await assert_401(api, partner.token)


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
