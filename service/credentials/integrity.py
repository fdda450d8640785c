"""W3C Data Integrity proofs with the ``eddsa-rdfc-2022`` cryptosuite (vc-di-eddsa §3.3).

The document and the proof options are canonicalized with RDFC-1.0 (pyld's URDNA2015) and
``sha256(proof options) || sha256(document)`` is signed with Ed25519. Contexts come only from
the shipped files (``documents.load_document``).

pyld has no "safe mode": a property that no context defines is silently left out of the RDF,
and so out of what the signature covers. ``lost_properties`` finds such properties; a
document that has any is neither signed nor accepted.
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
from pyld import jsonld

from service.credentials.documents import load_document

CRYPTOSUITE = "eddsa-rdfc-2022"
PROOF_TYPE = "DataIntegrityProof"
OPTIONS = {
    "algorithm": "URDNA2015",
    "format": "application/n-quads",
    "documentLoader": load_document,
}


class UnsignableDocument(ValueError):
    """The document is not valid JSON-LD under the shipped contexts, or would lose terms."""


def canonize(document: Mapping[str, Any]) -> str:
    try:
        result: str = jsonld.normalize(dict(document), dict(OPTIONS))
    except jsonld.JsonLdError as exc:
        raise UnsignableDocument(_reason(exc)) from exc
    return result


def _reason(exc: jsonld.JsonLdError) -> str:
    cause = exc.details.get("cause") if isinstance(exc.details, dict) else None
    while isinstance(cause, jsonld.JsonLdError):
        exc = cause
        cause = exc.details.get("cause") if isinstance(exc.details, dict) else None
    return str(exc.args[0]) if exc.args else exc.type


def timestamp(at: datetime) -> str:
    """XML Schema dateTime in UTC, to the second, as the specs' examples write it."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expand(document: Mapping[str, Any]) -> list[Any]:
    """Expanded once per document: both the lost-term check and canonicalization use it."""
    try:
        expanded: list[Any] = jsonld.expand(dict(document), {"documentLoader": load_document})
    except jsonld.JsonLdError as exc:
        raise UnsignableDocument(_reason(exc)) from exc
    lost = _lost(document, expanded)
    if lost:
        raise UnsignableDocument(f"terms no context defines: {', '.join(sorted(lost)[:5])}")
    return expanded


def _digest(document: Mapping[str, Any]) -> bytes:
    """SHA-256 of the RDFC-1.0 canonical form; refuses a document that would lose terms."""
    expanded = _expand(document)
    try:
        canonical: str = jsonld.normalize(expanded, dict(OPTIONS))
    except jsonld.JsonLdError as exc:
        raise UnsignableDocument(_reason(exc)) from exc
    return hashlib.sha256(canonical.encode()).digest()


def _hash_data(document: Mapping[str, Any], options: Mapping[str, Any]) -> bytes:
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    config = {k: v for k, v in options.items() if k != "proofValue"}
    config["@context"] = document.get("@context")
    return _digest(config) + _digest(unsigned)


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
        data = _hash_data(document, proof)
    except UnsignableDocument as exc:
        return ProofCheck(False, method, str(exc))
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return ProofCheck(False, method, "the signature does not match the credential")
    return ProofCheck(True, method)


def lost_properties(document: Mapping[str, Any]) -> set[str]:
    """Names of properties that JSON-LD expansion would drop (see the module docstring)."""
    try:
        expanded = jsonld.expand(dict(document), {"documentLoader": load_document})
    except jsonld.JsonLdError as exc:
        raise UnsignableDocument(_reason(exc)) from exc
    return _lost(document, expanded)


def _lost(document: Mapping[str, Any], expanded: list[Any]) -> set[str]:
    """Each value of the JSON (an id, a type, a literal) must come out of expansion as one
    value; when some did not, the names that compaction does not give back are the lost."""
    if _count_json(document) == _count_expanded(expanded):
        return set()
    return (_names(document) - _expanded_names(document, expanded)) or {"(unnamed values)"}


def _count_json(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_count_json(v) for k, v in value.items() if k != "@context")
    if isinstance(value, list):
        return sum(_count_json(v) for v in value)
    return 0 if value is None else 1


def _count_expanded(value: Any) -> int:
    if isinstance(value, list):
        return sum(_count_expanded(v) for v in value)
    if not isinstance(value, dict):
        return 1
    if "@value" in value:
        return 1
    count = len(value.get("@type", [])) + (1 if "@id" in value else 0)
    return count + sum(_count_expanded(v) for k, v in value.items() if k not in ("@id", "@type"))


def _names(value: Any) -> set[str]:
    if isinstance(value, dict):
        own = {k for k in value if k != "@context"}
        return own.union(*(_names(v) for k, v in value.items() if k != "@context"))
    if isinstance(value, list):
        return set().union(*(_names(v) for v in value))
    return set()


def _expanded_names(document: Mapping[str, Any], expanded: list[Any]) -> set[str]:
    """The property names that survive: compacting the expansion with the document's own
    context gives them back under the names the document used."""
    options = {"documentLoader": load_document}
    compacted = jsonld.compact(expanded, {"@context": document.get("@context")}, options)
    return _names(compacted)
