"""W3C Data Integrity proofs with the ``eddsa-rdfc-2022`` cryptosuite (vc-di-eddsa §3.3).

The document and the proof options are canonicalized with RDFC-1.0 and
``sha256(proof options) || sha256(document)`` is signed with Ed25519. JSON-LD runs in safe
mode (``rdf.expanded``): a document a standard verifier would read differently is neither
signed nor accepted. Signing uses the compiled shapes of ``rdf`` (fast); verifying tries them
first and falls back on plain pyld, the reference, before it calls a signature bad.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from service.credentials import rdf

CRYPTOSUITE = "eddsa-rdfc-2022"
PROOF_TYPE = "DataIntegrityProof"
UnsignableDocument = rdf.UnsafeDocument


def canonize(document: Mapping[str, Any]) -> str:
    """RDFC-1.0 canonical N-Quads of a document (embedded credentials composed)."""
    return rdf.canonical_nquads(rdf.credential_nquads(document))


def timestamp(at: datetime) -> str:
    """XML Schema dateTime in UTC, to the second, as the specs' examples write it."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parts(document: Mapping[str, Any], options: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    config = {k: v for k, v in options.items() if k != "proofValue"}
    config["@context"] = document.get("@context")
    return config, unsigned


def _hash_data(
    document: Mapping[str, Any],
    options: Mapping[str, Any],
    canon: Callable[[Mapping[str, Any]], str] = canonize,
) -> bytes:
    config, unsigned = _parts(document, options)
    return b"".join(hashlib.sha256(canon(part).encode()).digest() for part in (config, unsigned))


def sign(
    document: Mapping[str, Any],
    private_key: Ed25519PrivateKey,
    verification_method: str,
    created: str,
) -> dict[str, Any]:
    """The document with a proof; raises UnsignableDocument rather than sign a lossy one."""
    options = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": "assertionMethod",
    }
    signature = private_key.sign(_hash_data(document, options))
    proof = {**options, "proofValue": "z" + base58.b58encode(signature).decode()}
    # A set of one: the strict 1EdTech schemas require an array; VC 2.0 allows both.
    return {**document, "proof": [proof]}


def single_proof(document: Mapping[str, Any]) -> dict[str, Any] | None:
    """The document's one proof, whether written as an object or as a set of one."""
    proof = document.get("proof")
    if isinstance(proof, list) and len(proof) == 1:
        proof = proof[0]
    return proof if isinstance(proof, dict) else None


@dataclass(frozen=True)
class ProofCheck:
    valid: bool
    verification_method: str | None = None
    error: str | None = None


KeyResolver = Callable[[str], Ed25519PublicKey | None]


def verify(document: Mapping[str, Any], resolve_key: KeyResolver) -> ProofCheck:
    """Checks the document's one proof; every failure is a reason, never an exception."""
    proof = single_proof(document)
    if proof is None:
        return ProofCheck(False, error="the credential has no proof, or more than one")
    method = proof.get("verificationMethod")
    if not isinstance(method, str):
        return ProofCheck(False, error="the proof names no verificationMethod")
    if (
        proof.get("type") != PROOF_TYPE
        or proof.get("cryptosuite") != CRYPTOSUITE
        or proof.get("proofPurpose") != "assertionMethod"
    ):
        return ProofCheck(False, method, "not an eddsa-rdfc-2022 assertion proof")
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        return ProofCheck(False, method, "proofValue is not base58btc multibase")
    try:
        signature = base58.b58decode(value[1:])
    except ValueError:
        return ProofCheck(False, method, "proofValue is not base58btc multibase")
    key = resolve_key(method)
    if key is None:
        return ProofCheck(False, method, "the verification method is not a known key")
    try:
        if _verifies(key, signature, _hash_data(document, proof)):
            return ProofCheck(True, method)
        # The compiled canonical form is RDFC-1.0's; pyld's, the reference most verifiers
        # share, may differ on unusual graphs. Valid under either, the signature is valid.
        if _verifies(key, signature, _hash_data(document, proof, rdf.reference_canonical)):
            return ProofCheck(True, method)
    except UnsignableDocument as exc:
        return ProofCheck(False, method, str(exc))
    return ProofCheck(False, method, "the signature does not match the credential")


def _verifies(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def lost_properties(document: Mapping[str, Any]) -> set[str]:
    """Names of properties that JSON-LD expansion would drop (empty when none would)."""
    try:
        rdf.expanded(document)
    except UnsignableDocument as exc:
        message = str(exc)
        prefix = "terms no context defines: "
        if message.startswith(prefix):
            return set(message[len(prefix) :].split(", "))
        raise
    return set()
