"""Signing and verification without the service: the spec's test vectors, the shipped
contexts, and a verifier that has only the published keys and the JSON."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import base58
import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyld import jsonld
from referencing import Registry, Resource

from service.credentials import integrity, rdf
from service.credentials.documents import FILES
from service.credentials.keys import KeyRing, key_from_multibase, public_keyring, rotate
from service.credentials.verify import check_credential
from tests import factories
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue

SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs"
SHIPPED = Path(__file__).resolve().parents[1] / "service" / "credentials" / "contexts"
needs_specs = pytest.mark.skipif(not SPECS.is_dir(), reason="../shared/specs is not beside")


@needs_specs
def test_shipped_contexts_are_the_published_ones() -> None:
    sums: dict[str, str] = {}
    for line in (SPECS / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name] = digest
    for name in FILES.values():
        digest = hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest()
        assert sums[f"contexts/{name}"] == digest, name


@needs_specs
@pytest.mark.parametrize("suite", ["obv3p0", "clrv2p0"])
def test_signing_reproduces_the_official_test_vector(suite: str) -> None:
    vector = json.loads(
        (SPECS / f"examples/test-vectors/{suite}/eddsa-rdfc-2022-test-vector.json").read_text()
    )
    credential = vector["signedCredential"]
    proof = credential["proof"][0] if isinstance(credential["proof"], list) else credential["proof"]
    seed = bytes.fromhex(vector["keyPair"]["privateKeyHex"])[:32]
    unsigned = {k: v for k, v in credential.items() if k != "proof"}
    assert (
        integrity.canonize(unsigned)
        == (SPECS / f"examples/test-vectors/{suite}/document-canon.txt").read_text()
    )
    signed = integrity.sign(
        unsigned,
        Ed25519PrivateKey.from_private_bytes(seed),
        proof["verificationMethod"],
        proof["created"],
    )
    assert signed["proof"][0]["proofValue"] == vector["expected"]["proofValue"]


def _key_in_method(method: str) -> Any:
    fragment = method.rsplit("#", 1)[-1].rsplit(":", 1)[-1]
    return key_from_multibase(fragment)


@needs_specs
@pytest.mark.parametrize(
    ("example", "valid"),
    [
        ("clr20/valid/simple.json", True),
        ("ob30/valid/simple.json", True),
        ("ob30/valid/complete.json", True),
        ("ob30/valid/simple-did-key-method.json", True),
        ("ob30/invalid/simple-err-proof-value.json", False),
        ("ob30/invalid/simple-err-context.json", False),
        ("ob30/invalid/simple-err-type.json", False),
        ("ob30/invalid/simple-err-credential-subject-type.json", False),
        ("ob30/invalid/simple-err-proof-method.json", False),
    ],
)
def test_official_examples_verify_as_the_validator_says(example: str, valid: bool) -> None:
    document = json.loads((SPECS / "examples" / example).read_text())
    assert integrity.verify(document, _key_in_method).valid is valid


def test_a_term_no_context_defines_is_neither_signed_nor_accepted() -> None:
    key = Ed25519PrivateKey.generate()
    document: dict[str, Any] = {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        ],
        "id": "urn:uuid:7c7f9d4e-4b2e-4f0a-9a53-2d6f0c5b9e11",
        "type": ["VerifiableCredential", "AchievementCredential"],
        "issuer": {"id": "did:example:issuer", "type": ["Profile"], "name": "X"},
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "achievement": {
                "id": "urn:uuid:0f6a0a3c-0f0a-4a51-9a1e-0b1e0f0a0a0a",
                "type": ["Achievement"],
                "name": "n",
                "description": "d",
                "criteria": {"narrative": "c"},
                "unheardOf": "silently dropped by JSON-LD",
            },
        },
    }
    assert integrity.lost_properties(document) == {"unheardOf"}
    with pytest.raises(integrity.UnsignableDocument):
        integrity.sign(document, key, "did:example:issuer#k", "2026-01-01T00:00:00Z")
    clean = copy.deepcopy(document)
    del clean["credentialSubject"]["achievement"]["unheardOf"]
    signed = integrity.sign(clean, key, "did:example:issuer#k", "2026-01-01T00:00:00Z")
    signed["credentialSubject"]["achievement"]["unheardOf"] = "added after signing"
    result = integrity.verify(signed, lambda _: key.public_key())
    assert not result.valid and "unheardOf" in (result.error or "")


def test_rotation_publishes_old_keys_and_signs_with_the_new() -> None:
    first = rotate({"keys": []})
    second = rotate(first, retire_after=0)  # the old key keeps only its public part
    ring = KeyRing.from_jwks(second)
    assert ring.active.kid == second["keys"][0]["kid"]
    old = ring.get(first["keys"][0]["kid"])
    assert old is not None and old.private_key is None
    assert [k["kid"] for k in ring.jwks()["keys"]] == [k["kid"] for k in second["keys"]]
    assert all("d" not in k for k in ring.jwks()["keys"])


# A third party's verifier: pyld, the published contexts, cryptography and base58, the JWK Set
# fetched once, and the JSON. None of this service's code.
def _standalone_verify(document: dict[str, Any], jwks: dict[str, Any]) -> bool:
    contexts = {url: json.loads((SHIPPED / name).read_text()) for url, name in FILES.items()}

    def loader(url: str, options: Any = None) -> dict[str, Any]:
        return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(contexts[url])}

    def canon(doc: dict[str, Any]) -> bytes:
        options = {
            "algorithm": "URDNA2015",
            "format": "application/n-quads",
            "documentLoader": loader,
        }
        return hashlib.sha256(jsonld.normalize(doc, options).encode()).digest()

    proof = dict(document["proof"][0])
    signature = base58.b58decode(proof.pop("proofValue")[1:])
    kid = proof["verificationMethod"].split("#")[1]
    keys = public_keyring(jwks)
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    data = canon({**proof, "@context": document["@context"]}) + canon(unsigned)
    try:
        keys[kid].verify(signature, data)
    except Exception:
        return False
    return True


async def test_anyone_verifies_an_export_with_only_the_published_key(
    api: Api, school: Partner
) -> None:
    insz = factories.insz()
    await issue(api, school, factories.claim_input(insz))
    response = await api.http.get(
        "/passports/me/credential", headers={"Authorization": f"Bearer {api.citizen(insz)}"}
    )
    document = response.json()
    jwks = (await api.http.get("/.well-known/jwks.json")).json()
    assert _standalone_verify(document, jwks)
    inner = document["credentialSubject"]["verifiableCredential"][0]
    assert _standalone_verify(inner, jwks)
    inner["credentialSubject"]["achievement"]["name"] = "Something else"
    assert not _standalone_verify(inner, jwks)
    assert not _standalone_verify(document, jwks)
    # The DID documents name the same keys as Multikeys.
    did = (await api.http.get("/.well-known/did.json")).json()
    org_did = (await api.http.get(f"/organisations/{school.organisation_id}/did.json")).json()
    assert inner["issuer"]["id"] == org_did["id"] and org_did["controller"] == did["id"]
    assert org_did["verificationMethod"][0]["controller"] == org_did["id"]
    method = org_did["verificationMethod"][0]
    assert (
        method["id"]
        == document["credentialSubject"]["verifiableCredential"][0]["proof"][0][
            "verificationMethod"
        ]
    )
    assert key_from_multibase(method["publicKeyMultibase"]) is not None


@needs_specs
async def test_exports_satisfy_the_published_json_schemas(api: Api, school: Partner) -> None:
    insz = factories.insz()
    await issue(api, school, factories.claim_input(insz))
    await issue(api, school, factories.claim_input(insz, factories.SQL, proficiency=None))
    document = (
        await api.http.get(
            "/passports/me/credential",
            headers={"Authorization": f"Bearer {api.token(subject=insz, extra={'name': 'Jan'})}"},
        )
    ).json()
    schemas = [json.loads(p.read_text()) for p in (SPECS / "schemas").glob("*.json")]
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )
    for credential in [document, *document["credentialSubject"]["verifiableCredential"]]:
        schema_id = credential["credentialSchema"][0]["id"]
        validator = jsonschema.Draft201909Validator(registry.contents(schema_id), registry=registry)
        errors = [e.message for e in validator.iter_errors(credential)]
        assert errors == [], errors


def _flips(body: bytes, stride: int) -> list[bytes]:
    return [body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :] for i in range(0, len(body), stride)]


async def test_flipping_any_byte_of_a_signed_credential_fails(api: Api, school: Partner) -> None:
    """Every byte of one AchievementCredential, and every thirteenth byte of the CLR around it:
    each change either breaks the JSON or fails verification."""
    insz = factories.insz()
    await issue(api, school, factories.claim_input(insz, evidence=[]))
    response = await api.http.get(
        "/passports/me/credential", headers={"Authorization": f"Bearer {api.citizen(insz)}"}
    )
    document = response.json()
    state = api.http._transport.app.state.passport  # type: ignore[attr-defined]
    from service.credentials.verify import issuer_keys

    keys = issuer_keys(state.issuer)
    now = datetime.now(UTC)
    inner = json.dumps(
        document["credentialSubject"]["verifiableCredential"][0], separators=(",", ":")
    ).encode()
    assert check_credential(json.loads(inner), keys, now).signature_valid
    outer = json.dumps(document, separators=(",", ":")).encode()
    accepted = broken = 0
    for body in _flips(inner, 1) + _flips(outer, 13):
        try:
            changed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            broken += 1
            continue
        if check_credential(changed, keys, now).signature_valid:
            accepted += 1
    assert accepted == 0
    assert broken < len(inner)  # most flips still parse, so most went through verification


# The compiled shapes (service/credentials/rdf.py) against plain pyld, the reference: the same
# canonical N-Quads, byte for byte, for real exports and for values chosen to be awkward.


async def test_compiled_canonical_forms_are_pyld_s(api: Api, school: Partner) -> None:
    insz = factories.insz()
    await issue(api, school, factories.claim_input(insz))
    await issue(api, school, factories.claim_input(insz, factories.SQL, proficiency=None))
    await issue(
        api,
        school,
        factories.claim_input(insz, factories.TEAMWORK, evidence=[], lastUsedOn=None),
    )
    token = api.token(subject=insz, extra={"given_name": "Jan", "family_name": "De Smet"})
    document = (
        await api.http.get("/passports/me/credential", headers={"Authorization": f"Bearer {token}"})
    ).json()
    assert document["credentialSubject"]["identifier"][0]["identityHash"] == "Jan De Smet"
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    for credential in [unsigned, document, *document["credentialSubject"]["verifiableCredential"]]:
        assert rdf.canonical_nquads(rdf.credential_nquads(credential)) == rdf.reference_canonical(
            credential
        )


# Control characters other than tab and newline are left out: pyld 3.3 writes them raw where
# RDFC-1.0 (pyoxigraph, and rdf-canonize 4+ that Digital Bazaar's verifier uses) escapes them;
# the service refuses them in every text it takes (service/validation.py).
AWKWARD = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"], include_characters="\t\n"),
    min_size=1,
    max_size=40,
)


@needs_specs
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=AWKWARD, narrative=AWKWARD, holder=AWKWARD, evidence=st.integers(0, 2))
def test_compiled_shapes_agree_with_pyld_on_any_text(
    name: str, narrative: str, holder: str, evidence: int
) -> None:
    vector = json.loads(
        (SPECS / "examples/test-vectors/obv3p0/eddsa-rdfc-2022-test-vector.json").read_text()
    )
    credential = copy.deepcopy(vector["signedCredential"])
    credential.pop("proof")
    credential["name"] = name
    credential["credentialSubject"]["achievement"]["criteria"] = {"narrative": narrative}
    credential["issuer"]["name"] = holder
    credential["evidence"] = [
        {"type": ["Evidence"], "name": f"{name} {n}", "narrative": narrative}
        for n in range(evidence)
    ]
    try:
        expected = rdf.reference_canonical(credential)
    except rdf.UnsafeDocument:
        with pytest.raises(rdf.UnsafeDocument):
            rdf.canonical_nquads(rdf.nquads(credential))
        return
    assert rdf.canonical_nquads(rdf.nquads(credential)) == expected


@needs_specs
def test_composed_clr_is_what_json_ld_gives_for_one_to_three_credentials() -> None:
    """Composition against plain JSON-LD: the same dataset (one canonicalizer for both), and
    pyld's own canonical form where the embedded credentials' proofs differ, as they always
    do in an export (identical proofs are where RDFC-1.0 implementations part ways)."""
    example = json.loads((SPECS / "examples/clr20/valid/simple.json").read_text())
    inner = example["credentialSubject"]["verifiableCredential"][0]
    for count in (1, 2, 3):
        clr = copy.deepcopy(example)
        clr.pop("proof")
        items = []
        for n in range(count):
            item = copy.deepcopy(inner)
            item["id"] = f"urn:uuid:0f6a0a3c-0f0a-4a51-9a1e-0b1e0f0a0a{n:02d}"
            item["name"] = f"credential {n}"
            items.append(item)
        clr["credentialSubject"]["verifiableCredential"] = items
        composed = rdf.canonical_nquads(rdf.credential_nquads(clr))
        assert composed == rdf.canonical(rdf.dataset(clr))
        for n, item in enumerate(items):
            item["proof"][0]["proofValue"] += "1" * (n + 1)
        composed = rdf.canonical_nquads(rdf.credential_nquads(clr))
        assert composed == rdf.reference_canonical(clr)
