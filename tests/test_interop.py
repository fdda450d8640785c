"""Every credential the service signs, checked by implementations that are not ours
(``tests/independent.py``): Digital Bazaar's JavaScript stack in JSON-LD safe mode,
openbadgeslib, and the official JSON schemas. Revocation (of a claim, of a whole export)
must show in those verifiers' own status checks."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tests import factories, independent
from tests.graphql_client import Api, Partner
from tests.test_claims_api import REVOKE, issue
from tests.test_credentials import bearer, export, passport_with

needs_specs = pytest.mark.skipif(
    not independent.SPECS.is_dir(), reason="../shared/specs is not beside the repository"
)
REVOKE_EXPORT = """mutation($id: ID!) { revokeExport(id: $id) { __typename
  ... on ExportRevoked { export { id revokedAt credentials } } ... on Error { message } } }"""


def nested(document: dict[str, Any]) -> list[dict[str, Any]]:
    inner: list[dict[str, Any]] = document["credentialSubject"]["verifiableCredential"]
    return inner


async def digital_bazaar(api: Api, document: dict[str, Any]) -> dict[str, Any]:
    documents = await independent.published(api.http, [document])
    report = independent.digital_bazaar([document], documents)
    [result] = report["results"]
    return result


def failures(result: dict[str, Any]) -> list[Any]:
    """Everything the harness found wrong, outer and nested, for an assertion message."""
    found = [] if result["valid"] else [(result["id"], result["errors"], result.get("status"))]
    for item in result.get("nested", []):
        if not item["valid"]:
            found.append((item["id"], item["errors"], item.get("status")))
    return found


async def test_digital_bazaar_verifies_every_credential_of_an_export(
    api: Api, school: Partner, employer: Partner
) -> None:
    _, token, _ = await passport_with(api, school, employer)
    document = await export(api, token)
    result = await digital_bazaar(api, document)
    assert result["valid"] and result["nestedAllValid"], failures(result)
    assert len(result["nested"]) == 3
    for item in [result, *result["nested"]]:
        assert item["allProofsVerified"]
        # its own status list verified, under the DID that issued the credential
        [entry] = item["status"]["entries"]
        assert entry["statusListCredentialResult"]["valid"], entry
        assert item["status"]["revoked"] is False


async def test_a_revoked_claim_is_revoked_for_digital_bazaar(
    api: Api, school: Partner, employer: Partner
) -> None:
    _, token, claims = await passport_with(api, school, employer)
    document = await export(api, token)
    revoked = await api.gql(
        school.token, REVOKE, {"input": {"claimId": claims[0]["id"], "reason": "entered in error"}}
    )
    assert revoked["data"]["revokeClaim"]["__typename"] == "ClaimRevoked"
    result = await digital_bazaar(api, document)
    flags = [item["status"]["revoked"] for item in result["nested"]]
    assert flags.count(True) == 1 and flags.count(False) == 2
    assert all(item["verified"] for item in result["nested"])  # signatures still hold
    assert result["status"]["revoked"] is False  # the export itself was not taken back


async def test_a_revoked_export_is_revoked_everywhere(
    api: Api, school: Partner, employer: Partner
) -> None:
    _, token, _ = await passport_with(api, school, employer)
    response = await api.http.get("/passports/me/credential", headers=bearer(token))
    document = response.json()
    code = response.headers["Location"].rsplit("/", 1)[1]
    answer = await api.gql(token, REVOKE_EXPORT, {"id": code})
    assert answer["data"]["revokeExport"]["__typename"] == "ExportRevoked"
    result = await digital_bazaar(api, document)
    assert result["status"]["revoked"] is True
    assert [item["status"]["revoked"] for item in result["nested"]] == [True] * 3
    # and the service's own verifier and page say so, outer and nested
    report = (await api.http.post("/verify", json={"credential": document})).json()
    assert report["verified"] is False and report["credential"]["revoked"] is True
    assert {claim["status"] for claim in report["claims"]} == {"withdrawn"}
    page = await api.http.get(f"/v/{code}?lang=en")
    assert "withdrew" in page.text


async def test_two_exports_of_one_claim_share_no_status_position(api: Api, school: Partner) -> None:
    insz = factories.insz()
    await issue(api, school, factories.claim_input(insz))
    token = api.citizen(insz)
    first, second = await export(api, token), await export(api, token)

    def positions(document: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            (
                c["credentialStatus"]["statusListCredential"],
                c["credentialStatus"]["statusListIndex"],
            )
            for c in [document, *nested(document)]
        }

    assert positions(first).isdisjoint(positions(second))


async def test_a_larger_export_verifies_with_digital_bazaar(api: Api, school: Partner) -> None:
    insz = factories.insz()
    for uri in factories.SKILLS:
        await issue(api, school, factories.claim_input(insz, uri))
    document = await export(api, api.citizen(insz), lang="nl")
    result = await digital_bazaar(api, document)
    assert result["valid"] and result["nestedAllValid"], failures(result)


async def test_openbadgeslib_verifies_each_achievement_and_the_clr(
    api: Api, school: Partner, employer: Partner
) -> None:
    _, token, _ = await passport_with(api, school, employer)
    document = await export(api, token)
    documents = await independent.published(api.http, [document])
    for credential in nested(document):
        independent.openbadgeslib_achievement(credential, documents)
    state = api.http._transport.app.state.passport  # type: ignore[attr-defined]
    pem = state.issuer.keys.active.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    independent.openbadgeslib_proof(document, pem)
    for credential in nested(document):
        independent.openbadgeslib_proof(credential, pem)


async def test_status_list_credentials_verify_on_their_own(api: Api, school: Partner) -> None:
    insz = factories.insz()
    await issue(api, school, factories.claim_input(insz))
    document = await export(api, api.citizen(insz))
    documents = await independent.published(api.http, [document])
    lists = [
        doc for doc in documents.values() if "BitstringStatusListCredential" in doc.get("type", [])
    ]
    assert len(lists) == 2  # the organisation's and the service's
    report = independent.digital_bazaar(lists, documents)
    assert report["allValid"], report["results"]


@needs_specs
async def test_exports_satisfy_the_strict_schemas(
    api: Api, school: Partner, employer: Partner
) -> None:
    _, token, _ = await passport_with(api, school, employer)
    document = await export(api, token)
    formal = independent.formal_ob_schema_id()
    assert independent.schema_errors(document, document["credentialSchema"][0]["id"]) == []
    for credential in nested(document):
        assert independent.schema_errors(credential, formal) == []
        assert independent.schema_errors(credential, credential["credentialSchema"][0]["id"]) == []


async def test_one_competence_vouched_twice_with_identical_evidence_verifies(
    api: Api, school: Partner, employer: Partner
) -> None:
    """The shape where RDF canonicalizers could part ways: two credentials about one
    competence (one Achievement node, merged) whose evidence and criteria are identical."""
    insz = factories.insz()
    same = [{"kind": "CERTIFICATE", "title": "Certificate", "url": "https://x.org/c"}]
    for partner in (school, employer):
        issued = await issue(api, partner, factories.claim_input(insz, evidence=same))
        assert issued["__typename"] == "ClaimIssued", issued
    document = await export(api, api.citizen(insz))
    result = await digital_bazaar(api, document)
    assert result["valid"] and result["nestedAllValid"], failures(result)
