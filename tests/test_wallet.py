"""The OpenID4VCI issuer driven by hand (Python): the happy paths checked with the ``sd-jwt``
reference implementation, and every way a wallet can be refused, each a clear OAuth error with
nothing issued."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from jwcrypto.jwk import JWK
from sd_jwt.holder import SDJWTHolder
from sd_jwt.verifier import SDJWTVerifier
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service import clock
from tests import factories
from tests.citizen_api import ERASE
from tests.graphql_client import Api, Partner
from tests.test_claims_api import REVOKE, issue
from tests.test_credentials import bearer, passport_with
from tests.wallet_keys import WalletKey

PRE_AUTH = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
SD_JWT = "CompetencePassport_dc+sd-jwt"
LDP = "CompetencePassport_ldp_vc"
CREATE_OFFER = """mutation($input: CreateCredentialOfferInput) {
  createCredentialOffer(input: $input) { __typename
    ... on CredentialOfferCreated { offer { id uri txCode expiresAt qrCodeSvg
      credentialConfigurationIds competences { uri } } }
    ... on Error { code message } } }"""
EXPORTS = "{ me { exports(first: 50) { edges { node { id format credentials } } } } }"
LOG = "{ me { accessLog(first: 50) { edges { node { operation competences { uri } } } } } }"


def offer_object(uri: str) -> dict[str, Any]:
    assert uri.startswith("openid-credential-offer://?credential_offer=")
    document: dict[str, Any] = json.loads(parse_qs(urlsplit(uri).query)["credential_offer"][0])
    return document


async def make_offer(api: Api, token: str, **given: Any) -> tuple[str, str]:
    """(pre-authorized code, tx_code) of a new offer, over REST."""
    response = await api.http.post(
        "/passports/me/credential-offers", json=given, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    grant = offer_object(body["credentialOfferUri"])["grants"][PRE_AUTH]
    return grant["pre-authorized_code"], body["txCode"]


async def redeem(api: Api, code: str, tx_code: str | None) -> httpx.Response:
    form = {"grant_type": PRE_AUTH, "pre-authorized_code": code}
    if tx_code is not None:
        form["tx_code"] = tx_code
    return await api.http.post("/oid4vci/token", data=form)


async def access_token(api: Api, token: str, **given: Any) -> str:
    code, tx_code = await make_offer(api, token, **given)
    response = await redeem(api, code, tx_code)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"
    return str(response.json()["access_token"])


async def nonce(api: Api) -> str:
    response = await api.http.post("/oid4vci/nonce")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    return str(response.json()["c_nonce"])


def audience(api: Api) -> str:
    return api.settings.base_url


async def ask(api: Api, access: str, body: dict[str, Any]) -> httpx.Response:
    return await api.http.post("/oid4vci/credential", json=body, headers=bearer(access))


async def exports(api: Api, token: str) -> list[dict[str, Any]]:
    body = await api.gql(token, EXPORTS)
    return [edge["node"] for edge in body["data"]["me"]["exports"]["edges"]]


def issuer_key(api: Api) -> JWK:
    state = api.http._transport.app.state.passport  # type: ignore[attr-defined]
    return JWK.from_pyca(state.issuer.keys.active.public_key)


async def test_metadata_names_the_endpoints_and_formats(api: Api) -> None:
    issuer = (await api.http.get("/.well-known/openid-credential-issuer")).json()
    base = api.settings.base_url
    assert issuer["credential_issuer"] == base
    assert issuer["nonce_endpoint"] == f"{base}/oid4vci/nonce"
    configurations = issuer["credential_configurations_supported"]
    assert configurations[SD_JWT]["format"] == "dc+sd-jwt"
    assert configurations[LDP]["format"] == "ldp_vc"
    for configuration in configurations.values():
        assert configuration["proof_types_supported"]["jwt"]["proof_signing_alg_values_supported"]
    server = (await api.http.get("/.well-known/oauth-authorization-server")).json()
    assert server["token_endpoint"] == f"{base}/oid4vci/token"
    assert server["pre-authorized_grant_anonymous_access_supported"] is True
    vct = configurations[SD_JWT]["vct"]
    metadata = (await api.http.get(urlsplit(vct).path)).json()
    assert metadata["vct"] == vct
    assert {d["locale"] for d in metadata["display"]} == {"nl", "en"}


async def test_an_sd_jwt_vc_end_to_end_with_the_reference_implementation(
    api: Api, school: Partner, employer: Partner
) -> None:
    _, token, _ = await passport_with(api, school, employer)
    created = await api.gql(token, CREATE_OFFER, {"input": {"language": "NL"}})
    offer = created["data"]["createCredentialOffer"]["offer"]
    assert offer["qrCodeSvg"].startswith("<svg") and len(offer["txCode"]) == 6
    assert offer["credentialConfigurationIds"] == [SD_JWT, LDP]
    grant = offer_object(offer["uri"])["grants"][PRE_AUTH]
    assert grant["tx_code"] == {
        "input_mode": "numeric",
        "length": 6,
        "description": grant["tx_code"]["description"],
    }
    response = await redeem(api, grant["pre-authorized_code"], offer["txCode"])
    assert response.status_code == 200, response.text
    access = response.json()["access_token"]
    holder = WalletKey()
    proof = holder.proof(audience=audience(api), nonce=await nonce(api))
    answer = await ask(
        api, access, {"credential_configuration_id": SD_JWT, "proofs": {"jwt": [proof]}}
    )
    assert answer.status_code == 200, answer.text
    [issued] = answer.json()["credentials"]
    sd_jwt = issued["credential"]
    header = jwt.get_unverified_header(sd_jwt.split("~")[0])
    assert (header["typ"], header["alg"]) == ("dc+sd-jwt", "EdDSA")

    # The reference implementation: the issuer's signature, then a presentation of two of the
    # three competences with key binding, verified with the expected audience and nonce.
    verified = SDJWTVerifier(sd_jwt, lambda iss, header: issuer_key(api)).get_verified_payload()
    assert verified["cnf"]["jwk"] == holder.public_jwk | {"kty": "EC"}
    assert len(verified["competences"]) == 3
    assert verified["vct"].endswith("/credentials/types/competence-passport")
    first = verified["competences"][0]
    assert {"label", "esco_uri", "issuer", "assessment_method", "acquired_on", "status"} <= set(
        first
    )
    holder_side = SDJWTHolder(sd_jwt)
    holder_side.create_presentation(
        {"competences": [True, True, False]},
        nonce="n-123",
        aud="https://verifier.example",
        holder_key=JWK.from_pyca(holder.private),
        sign_alg="ES256",
    )
    shown = SDJWTVerifier(
        holder_side.sd_jwt_presentation,
        lambda iss, header: issuer_key(api),
        expected_aud="https://verifier.example",
        expected_nonce="n-123",
    ).get_verified_payload()
    assert len(shown["competences"]) == 2
    assert {c["esco_uri"] for c in shown["competences"]} < {
        c["esco_uri"] for c in verified["competences"]
    }
    # one read, in the citizen's access log, and one export of the new format
    log = await api.gql(token, LOG)
    operations = [edge["node"]["operation"] for edge in log["data"]["me"]["accessLog"]["edges"]]
    assert operations.count("walletCredentialSdJwt") == 1
    assert [e["format"] for e in await exports(api, token)] == ["DC_SD_JWT"]


async def test_a_revoked_claim_is_marked_in_the_status_list_token(
    api: Api, school: Partner, employer: Partner
) -> None:
    _, token, claims = await passport_with(api, school, employer)
    access = await access_token(api, token)
    holder = WalletKey()
    proof = holder.proof(audience=audience(api), nonce=await nonce(api))
    answer = await ask(
        api, access, {"credential_configuration_id": SD_JWT, "proofs": {"jwt": [proof]}}
    )
    sd_jwt = answer.json()["credentials"][0]["credential"]
    payload = SDJWTVerifier(sd_jwt, lambda iss, header: issuer_key(api)).get_verified_payload()
    revoked = await api.gql(
        school.token, REVOKE, {"input": {"claimId": claims[0]["id"], "reason": "entered in error"}}
    )
    assert revoked["data"]["revokeClaim"]["__typename"] == "ClaimRevoked"

    async def bit(reference: dict[str, Any]) -> int:
        response = await api.http.get(urlsplit(reference["status_list"]["uri"]).path)
        assert response.headers["content-type"] == "application/statuslist+jwt"
        key = api.http._transport.app.state.passport.issuer.keys.active.public_key  # type: ignore[attr-defined]
        token_claims = jwt.decode(response.text, key, algorithms=["EdDSA"])
        assert token_claims["sub"] == reference["status_list"]["uri"]
        lst = token_claims["status_list"]["lst"]
        raw = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
        index = reference["status_list"]["idx"]
        return (raw[index // 8] >> (index % 8)) & 1

    flags = [await bit(c["status"]) for c in payload["competences"]]
    assert sorted(flags) == [0, 0, 1]
    assert await bit(payload["status"]) == 0  # the credential itself stands


async def test_an_ldp_vc_bound_to_the_holder_did_and_a_batch_of_distinct_keys(
    api: Api, school: Partner, employer: Partner
) -> None:
    _, token, _ = await passport_with(api, school, employer)
    access = await access_token(api, token)
    c_nonce = await nonce(api)
    keys = [WalletKey(), WalletKey()]
    proofs = [key.proof(audience=audience(api), nonce=c_nonce) for key in keys]
    answer = await ask(api, access, {"credential_configuration_id": LDP, "proofs": {"jwt": proofs}})
    assert answer.status_code == 200, answer.text
    documents = [item["credential"] for item in answer.json()["credentials"]]
    subjects = [d["credentialSubject"]["id"] for d in documents]
    assert all(s.startswith("did:jwk:") for s in subjects) and len(set(subjects)) == 2
    for document in documents:
        inner = document["credentialSubject"]["verifiableCredential"]
        assert {c["credentialSubject"]["id"] for c in inner} == {
            document["credentialSubject"]["id"]
        }
        report = (await api.http.post("/verify", json={"credential": document})).json()
        assert report["verified"], report
    # the same offer does not give the same format twice, but does give the other one
    again = await ask(
        api,
        access,
        {
            "credential_configuration_id": LDP,
            "proofs": {"jwt": [WalletKey().proof(audience=audience(api), nonce=await nonce(api))]},
        },
    )
    assert again.json()["error"] == "credential_request_denied"
    other = await ask(
        api,
        access,
        {
            "credential_configuration_id": SD_JWT,
            "proofs": {"jwt": [WalletKey().proof(audience=audience(api), nonce=await nonce(api))]},
        },
    )
    assert other.status_code == 200, other.text


async def test_an_offer_of_chosen_competences_issues_only_those(
    api: Api, school: Partner, employer: Partner
) -> None:
    _, token, _ = await passport_with(api, school, employer)
    access = await access_token(api, token, competenceUris=[factories.SQL])
    proof = WalletKey().proof(audience=audience(api), nonce=await nonce(api))
    answer = await ask(
        api, access, {"credential_configuration_id": SD_JWT, "proofs": {"jwt": [proof]}}
    )
    payload = SDJWTVerifier(
        answer.json()["credentials"][0]["credential"], lambda iss, header: issuer_key(api)
    ).get_verified_payload()
    assert [c["esco_uri"] for c in payload["competences"]] == [factories.SQL]


# --- refusals: each a clear OAuth error, and nothing issued --------------------------------


@pytest.fixture
async def citizen(api: Api, school: Partner, employer: Partner) -> str:
    _, token, _ = await passport_with(api, school, employer)
    return token


async def test_a_replayed_pre_authorized_code_is_refused(api: Api, citizen: str) -> None:
    code, tx_code = await make_offer(api, citizen)
    assert (await redeem(api, code, tx_code)).status_code == 200
    replay = await redeem(api, code, tx_code)
    assert replay.status_code == 400
    assert replay.json() == {
        "error": "invalid_grant",
        "error_description": "the pre-authorized code was already used",
    }
    assert (await redeem(api, "pwc_" + "x" * 43, tx_code)).json()["error"] == "invalid_grant"


async def test_a_wrong_tx_code_is_refused_and_three_spend_the_offer(api: Api, citizen: str) -> None:
    code, tx_code = await make_offer(api, citizen)
    wrong = "000000" if tx_code != "000000" else "111111"
    refused = await redeem(api, code, wrong)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert "tx_code" in refused.json()["error_description"]
    assert (await redeem(api, code, None)).json()["error"] == "invalid_request"
    assert (await redeem(api, code, tx_code)).status_code == 200  # a typo is forgiven
    code, tx_code = await make_offer(api, citizen)
    for _ in range(3):
        assert (await redeem(api, code, wrong)).json()["error"] == "invalid_grant"
    spent = await redeem(api, code, tx_code)
    assert spent.json()["error"] == "invalid_grant"
    assert "too many" in spent.json()["error_description"]


async def test_an_expired_offer_is_refused(
    api: Api, citizen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, tx_code = await make_offer(api, citizen)
    real = clock.now
    later = real() + timedelta(minutes=api.settings.wallet_offer_minutes)
    monkeypatch.setattr(clock, "now", lambda: later)
    expired = await redeem(api, code, tx_code)
    assert expired.json() == {
        "error": "invalid_grant",
        "error_description": "the credential offer has expired",
    }


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("wrong_nonce", "invalid_nonce"),
        ("spent_nonce", "invalid_nonce"),
        ("wrong_audience", "invalid_proof"),
        ("another_key", "invalid_proof"),
        ("wrong_typ", "invalid_proof"),
        ("no_proof", "invalid_proof"),
        ("unsupported_format", "unsupported_credential_format"),
        ("unknown_configuration", "unknown_credential_configuration"),
        ("same_key_twice", "invalid_proof"),
    ],
)
async def test_a_bad_credential_request_issues_nothing(
    api: Api, citizen: str, case: str, error: str
) -> None:
    access = await access_token(api, citizen)
    key, c_nonce = WalletKey(), await nonce(api)
    good = key.proof(audience=audience(api), nonce=c_nonce)
    body: dict[str, Any] = {"credential_configuration_id": SD_JWT, "proofs": {"jwt": [good]}}
    if case == "wrong_nonce":
        body["proofs"]["jwt"] = [key.proof(audience=audience(api), nonce="pwn_" + "n" * 43)]
    elif case == "spent_nonce":
        other = await access_token(api, citizen)
        assert (await ask(api, other, body)).status_code == 200
    elif case == "wrong_audience":
        body["proofs"]["jwt"] = [key.proof(audience="https://elsewhere.example", nonce=c_nonce)]
    elif case == "another_key":
        body["proofs"]["jwt"] = [
            WalletKey().proof(audience=audience(api), nonce=c_nonce, header_jwk=key.public_jwk)
        ]
    elif case == "wrong_typ":
        body["proofs"]["jwt"] = [key.proof(audience=audience(api), nonce=c_nonce, typ="JWT")]
    elif case == "no_proof":
        del body["proofs"]
    elif case == "unsupported_format":
        body = {"format": "jwt_vc_json", "proof": {"proof_type": "jwt", "jwt": good}}
    elif case == "unknown_configuration":
        body["credential_configuration_id"] = "Diploma_mso_mdoc"
    elif case == "same_key_twice":
        body["proofs"]["jwt"] = [good, good]
    before = await exports(api, citizen)
    refused = await ask(api, access, body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == error, refused.json()
    assert refused.headers["cache-control"] == "no-store"
    assert await exports(api, citizen) == before
    if case != "spent_nonce":  # the access token and the nonce still work after a refusal
        assert (
            await ask(
                api, access, {"credential_configuration_id": SD_JWT, "proofs": {"jwt": [good]}}
            )
        ).status_code == 200


async def test_the_credential_endpoint_wants_the_access_token(api: Api, citizen: str) -> None:
    proof = WalletKey().proof(audience=audience(api), nonce=await nonce(api))
    body = {"credential_configuration_id": SD_JWT, "proofs": {"jwt": [proof]}}
    for headers in ({}, bearer("pwt_" + "t" * 43)):
        refused = await api.http.post("/oid4vci/credential", json=body, headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_token"
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_the_token_endpoint_speaks_oauth(api: Api) -> None:
    wrong_grant = await api.http.post("/oid4vci/token", data={"grant_type": "password"})
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    as_json = await api.http.post("/oid4vci/token", json={"grant_type": PRE_AUTH})
    assert as_json.json()["error"] == "invalid_request"
    twice = await api.http.post(
        "/oid4vci/token",
        content=f"grant_type={PRE_AUTH}&pre-authorized_code=a&pre-authorized_code=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert twice.json()["error"] == "invalid_request"


async def test_an_offer_needs_something_to_offer(api: Api, school: Partner) -> None:
    token = api.citizen(factories.insz())
    empty = await api.gql(token, CREATE_OFFER)
    assert empty["data"]["createCredentialOffer"]["code"] == "INVALID_STATE"
    insz = factories.insz()
    await issue(api, school, factories.claim_input(insz))
    unknown = await api.gql(
        api.citizen(insz), CREATE_OFFER, {"input": {"competenceUris": ["http://x.org/none"]}}
    )
    assert unknown["data"]["createCredentialOffer"]["code"] == "VALIDATION_FAILED"
    partner = await api.gql(school.token, CREATE_OFFER)
    assert partner["data"]["createCredentialOffer"]["code"] == "NOT_AUTHORIZED"


async def test_erasure_takes_the_offers_and_revokes_what_went_to_wallets(
    api: Api, school: Partner, employer: Partner, engine: AsyncEngine
) -> None:
    _, token, _ = await passport_with(api, school, employer)
    code, tx_code = await make_offer(api, token)
    access = (await redeem(api, code, tx_code)).json()["access_token"]
    proof = WalletKey().proof(audience=audience(api), nonce=await nonce(api))
    answer = await ask(
        api, access, {"credential_configuration_id": SD_JWT, "proofs": {"jwt": [proof]}}
    )
    sd_jwt = answer.json()["credentials"][0]["credential"]
    payload = SDJWTVerifier(sd_jwt, lambda iss, header: issuer_key(api)).get_verified_payload()
    data = await api.http.get("/me/export", headers=bearer(token))
    [offer] = data.json()["credentialOffers"]
    assert offer["redeemedAt"] is not None and "txCode" not in offer
    assert (await api.gql(token, ERASE))["data"]["requestErasure"][
        "__typename"
    ] == "ErasureCompleted"
    async with engine.connect() as conn:
        for table in ("credential_offers", "credential_offer_codes", "wallet_access_tokens"):
            left = await conn.scalar(
                text(f"SELECT count(*) FROM {table} WHERE offer_id = :o"),
                {"o": offer["id"]},
            )
            assert left == 0, table
    # the wallet's credential and every competence in it now read as revoked
    for reference in [payload["status"], *(c["status"] for c in payload["competences"])]:
        response = await api.http.get(urlsplit(reference["status_list"]["uri"]).path)
        lst = jwt.decode(response.text, options={"verify_signature": False})["status_list"]["lst"]
        raw = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
        index = reference["status_list"]["idx"]
        assert (raw[index // 8] >> (index % 8)) & 1 == 1
    refused = await ask(
        api, access, {"credential_configuration_id": LDP, "proofs": {"jwt": [proof]}}
    )
    assert refused.status_code == 401
