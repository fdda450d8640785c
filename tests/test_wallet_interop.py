"""End to end on loopback with a wallet that is not ours (``tests/wallet_client.py``): the
service runs as a real HTTP server; ``@openid4vc/openid4vci`` takes a citizen's offer, gets a
token with the transaction code, proves its keys over a nonce and receives an SD-JWT VC and a
CLR; ``@sd-jwt/sd-jwt-vc`` verifies the SD-JWT VC (signature, type metadata, status) and a
presentation of two competences with key binding; the Token Status List marks a revoked
claim; Digital Bazaar's verifier checks the holder-bound CLR."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.settings import Settings
from tests import independent, wallet_client
from tests.graphql_client import Api, Partner
from tests.test_claims_api import REVOKE
from tests.test_credentials import passport_with

SD_JWT = "CompetencePassport_dc+sd-jwt"
LDP = "CompetencePassport_ldp_vc"


@pytest.fixture(scope="module")
def server(database_url: str, settings: Settings) -> Iterator[str]:
    assert settings.insz_hmac_key is not None
    with wallet_client.serving(
        database_url, settings.data_dir, settings.insz_hmac_key.get_secret_value()
    ) as base:
        yield base


async def offer(base: str, token: str, **given: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.post(
            "/passports/me/credential-offers",
            json=given,
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_wallet_takes_the_offer_and_verifies_what_it_got(
    api: Api, school: Partner, employer: Partner, server: str
) -> None:
    _, token, claims = await passport_with(api, school, employer)
    made = await offer(server, token)
    report = wallet_client.run(
        {
            "command": "issue",
            "offerUri": made["credentialOfferUri"],
            "txCode": made["txCode"],
            "copies": 2,
        }
    )
    assert report["version"] == "V1"  # the client read the metadata as OpenID4VCI 1.0
    sd = report["configurations"][SD_JWT]
    assert len(sd["credentials"]) == 2  # batch issuance: one copy per key
    for check, holder in zip(sd["checks"], sd["holders"], strict=True):
        assert check["verified"] and check["keyBinding"] and check["replayRefused"]
        assert check["header"]["typ"] == "dc+sd-jwt"
        assert check["typeMetadata"].endswith("/credentials/types/competence-passport")
        assert check["cnf"]["jwk"] == holder
        assert check["competences"] == 3 and len(check["presented"]) == 2
    assert sd["checks"][0]["cnf"] != sd["checks"][1]["cnf"]

    # The CLR, bound to each wallet key's did:jwk, verifies with Digital Bazaar's stack.
    clrs = report["configurations"][LDP]["credentials"]
    assert len(clrs) == 2
    for clr in clrs:
        assert clr["credentialSubject"]["id"].startswith("did:jwk:")
    async with httpx.AsyncClient(base_url=server) as http:
        documents = await independent.published(http, clrs)
    verdict = independent.digital_bazaar(clrs, documents)
    for result in verdict["results"]:
        assert result["valid"] and result["nestedAllValid"], result

    # A claim revoked by its issuer: the status list token marks it, the others stand.
    revoked = await api.gql(
        school.token, REVOKE, {"input": {"claimId": claims[0]["id"], "reason": "entered in error"}}
    )
    assert revoked["data"]["revokeClaim"]["__typename"] == "ClaimRevoked"
    state = wallet_client.run(
        {"command": "status", "issuer": server, "credential": sd["credentials"][0]}
    )
    statuses = sorted(c["status"] for c in state["competences"])
    assert statuses == [0, 0, 1], state
    assert state["credentialStatus"] == 0 and state["credentialValid"], state


async def test_a_withdrawn_export_fails_the_wallet_s_status_check(
    api: Api, school: Partner, employer: Partner, server: str
) -> None:
    _, token, _ = await passport_with(api, school, employer)
    made = await offer(server, token)
    report = wallet_client.run(
        {
            "command": "issue",
            "offerUri": made["credentialOfferUri"],
            "txCode": made["txCode"],
            "configurations": [SD_JWT],
        }
    )
    credential = report["configurations"][SD_JWT]["credentials"][0]
    exports = await api.gql(token, "{ me { exports(first: 5) { edges { node { id format } } } } }")
    [node] = [e["node"] for e in exports["data"]["me"]["exports"]["edges"]]
    assert node["format"] == "DC_SD_JWT"
    withdrawn = await api.gql(
        token, "mutation($id: ID!) { revokeExport(id: $id) { __typename } }", {"id": node["id"]}
    )
    assert withdrawn["data"]["revokeExport"]["__typename"] == "ExportRevoked"
    state = wallet_client.run({"command": "status", "issuer": server, "credential": credential})
    assert state["credentialStatus"] == 1 and not state["credentialValid"]
    assert "Status is not valid" in state["error"]
