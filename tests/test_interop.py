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


# --- Endorsements: OB 3.0 EndorsementCredentials inside the export's AchievementCredentials ---

HIDE = """mutation($id: ID!) { hideEndorsement(id: $id) { __typename } }"""
FORMAL_ENDORSEMENT = "formal-1edtech-ghpages/ob_v3p0_endorsementcredential-jsonschema1.json"


def endorsements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every EndorsementCredential of an export."""
    return [c for c in nested(document) if "EndorsementCredential" in c["type"]]


def achievements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in nested(document) if "AchievementCredential" in c["type"]]


async def endorsed_export(
    api: Api, school: Partner, employer: Partner
) -> tuple[dict[str, Any], list[dict[str, Any]], str, Partner]:
    """An export whose first claim two organisations endorsed; a third endorsement, hidden by
    the citizen, stays out. Returns the export, the claims, the citizen's token, one endorser."""
    from tests.citizen_api import grant
    from tests.test_endorsements import coach, endorse

    _, token, claims = await passport_with(api, school, employer)
    endorsers = [await coach(api), await coach(api)]
    for partner in endorsers:
        await grant(
            api, token, granteeKind="ORGANISATION", organisationId=str(partner.organisation_id)
        )
        made = await endorse(api, partner, claims[0]["id"], statement="Leads the data team")
        assert made["__typename"] == "ClaimEndorsed", made
    hidden = await endorse(api, endorsers[1], claims[2]["id"], statement="Kept to myself")
    await api.gql(token, HIDE, {"id": hidden["endorsement"]["id"]})
    return await export(api, token), claims, token, endorsers[0]


async def test_endorsements_are_exported_and_verified_by_digital_bazaar(
    api: Api, school: Partner, employer: Partner
) -> None:
    document, _, _, _ = await endorsed_export(api, school, employer)
    found = endorsements(document)
    assert len(found) == 2  # the hidden one is not handed out
    # right after the credential they endorse
    inner = nested(document)
    at = next(i for i, c in enumerate(inner) if c["id"] == found[0]["credentialSubject"]["id"])
    endorsed = inner[at]
    assert inner[at + 1 : at + 3] == found
    for item in found:
        assert item["type"] == ["VerifiableCredential", "EndorsementCredential"]
        assert item["credentialSubject"]["id"] == endorsed["id"]  # it endorses that credential
        assert item["credentialSubject"]["endorsementComment"] == "Leads the data team"
        assert item["issuer"]["id"] != endorsed["issuer"]["id"]
    # every credential of the export, the endorsements among them, each on its own too
    documents = await independent.published(api.http, [document])
    report = independent.digital_bazaar([document], documents)
    [outer] = report["results"]
    assert outer["valid"] and outer["nestedAllValid"], failures(outer)
    assert len(outer["nested"]) == 5
    alone = [r for r in outer["nested"] if "EndorsementCredential" in r["type"]]
    assert len(alone) == 2
    for result in alone:
        assert result["valid"] and result["allProofsVerified"], failures(result)
        [entry] = result["status"]["entries"]
        assert entry["statusListCredentialResult"]["valid"], entry  # the endorser's own list
        assert result["status"]["revoked"] is False
    # and the service's own verifier checks them like every credential in the export
    report = (await api.http.post("/verify", json={"credential": document})).json()
    assert report["verified"] is True, report
    checked = [c["type"][-1] for c in report["claims"]]
    assert checked.count("EndorsementCredential") == 2


async def test_a_revoked_endorsement_is_revoked_for_digital_bazaar(
    api: Api, school: Partner, employer: Partner
) -> None:
    from tests.test_endorsements import REVOKE_ENDORSEMENT

    document, _, _, endorser = await endorsed_export(api, school, employer)
    given = await api.gql(
        endorser.token, "{ endorsementsGiven { edges { node { endorsement { id } } } } }"
    )
    [edge] = given["data"]["endorsementsGiven"]["edges"]
    revoked = await api.gql(
        endorser.token,
        REVOKE_ENDORSEMENT,
        {"input": {"endorsementId": edge["node"]["endorsement"]["id"], "reason": "left the job"}},
    )
    assert revoked["data"]["revokeEndorsement"]["endorsement"]["status"] == "REVOKED"
    found = endorsements(document)
    documents = await independent.published(api.http, found)
    report = independent.digital_bazaar(found, documents)
    flags = sorted(result["status"]["revoked"] for result in report["results"])
    assert flags == [False, True]
    assert all(result["verified"] for result in report["results"])  # signatures still hold
    checked = (await api.http.post("/verify", json={"credential": document})).json()
    statuses = [c["status"] for c in checked["claims"] if c["type"][-1] == "EndorsementCredential"]
    assert sorted(statuses) == ["active", "revoked"]


async def test_openbadgeslib_verifies_the_endorsed_credential_and_each_endorsement(
    api: Api, school: Partner, employer: Partner
) -> None:
    document, _, _, _ = await endorsed_export(api, school, employer)
    documents = await independent.published(api.http, [document])
    # the full OB 3.0 check of every AchievementCredential, the endorsed one among them
    for credential in achievements(document):
        independent.openbadgeslib_achievement(credential, documents)
    state = api.http._transport.app.state.passport  # type: ignore[attr-defined]
    pem = state.issuer.keys.active.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for item in endorsements(document):
        independent.openbadgeslib_proof(item, pem)
    independent.openbadgeslib_proof(document, pem)


@needs_specs
async def test_endorsements_satisfy_the_endorsement_schemas(
    api: Api, school: Partner, employer: Partner
) -> None:
    document, _, _, _ = await endorsed_export(api, school, employer)
    formal = str(
        __import__("json").loads((independent.SPECS / "schemas" / FORMAL_ENDORSEMENT).read_text())[
            "$id"
        ]
    )
    for item in endorsements(document):
        assert item["credentialSchema"][0]["id"].endswith(
            "ob_v3p0_endorsementcredential_schema.json"
        )
        assert independent.schema_errors(item, item["credentialSchema"][0]["id"]) == []
        assert independent.schema_errors(item, formal) == []
    # the achievements beside them and the CLR that holds them all still satisfy theirs
    achievement = independent.formal_ob_schema_id()
    for credential in achievements(document):
        assert independent.schema_errors(credential, achievement) == []
        assert independent.schema_errors(credential, credential["credentialSchema"][0]["id"]) == []
    assert independent.schema_errors(document, document["credentialSchema"][0]["id"]) == []
