"""Who signs, under which names: the service's did:web, the vouching organisations' DIDs,
verification methods, status-list and verification URLs. One place for every identifier."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import base58

from service.credentials.documents import MULTIKEY_V1
from service.credentials.keys import KeyRing

DID_V1 = "https://www.w3.org/ns/did/v1"


def export_code(export_id: uuid.UUID) -> str:
    """The short form of an export id in the verification URL (22 characters or fewer)."""
    return base58.b58encode(export_id.bytes).decode()


def verification_url(base_url: str, export_id: uuid.UUID) -> str:
    """The page behind an export's QR code: short enough to type from paper."""
    return f"{base_url}/v/{export_code(export_id)}"


def parse_export_id(value: str) -> uuid.UUID | None:
    """An export named by its id or by its short code; None when it is neither."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return export_id_from_code(value)


def export_id_from_code(code: str) -> uuid.UUID | None:
    if not 1 <= len(code) <= 24:
        return None
    try:
        raw = base58.b58decode(code)
    except ValueError:
        return None
    return uuid.UUID(bytes=raw) if len(raw) == 16 else None


@dataclass(frozen=True)
class Issuer:
    """The service as credential issuer. It signs on behalf of the organisations that vouched:
    each has a DID under the service's own (``did:web:host:organisations:<id>``) whose DID
    document, served here, lists the service's keys. A verifier that resolves did:web thus
    finds the key, and sees from the DID document that the service controls it."""

    base_url: str
    name: str
    keys: KeyRing

    @property
    def did(self) -> str:
        host = urlsplit(self.base_url).netloc
        return "did:web:" + quote(host, safe="")

    def organisation_did(self, organisation_id: uuid.UUID) -> str:
        return f"{self.did}:organisations:{organisation_id}"

    def method(self, did: str, kid: str | None = None) -> str:
        return f"{did}#{kid or self.keys.active.kid}"

    def status_list_url(self, list_id: int) -> str:
        return f"{self.base_url}/credentials/status/{list_id}"

    def verification_url(self, export_id: uuid.UUID) -> str:
        return verification_url(self.base_url, export_id)

    def did_document(self, did: str) -> dict[str, Any]:
        """Each key is listed under the DID that controls it, this one: a verifier follows a
        method's ``controller`` to the DID document that must authorize it for
        assertionMethod. The service's control of an organisation's DID is said once, at the
        top (``controller``), as DID Core has it."""
        methods = [
            {
                "id": self.method(did, key.kid),
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key.multibase,
            }
            for key in self.keys.keys
        ]
        document: dict[str, Any] = {
            "@context": [DID_V1, MULTIKEY_V1],
            "id": did,
            "verificationMethod": methods,
            "assertionMethod": [m["id"] for m in methods],
        }
        if did != self.did:
            document["controller"] = self.did
        return document

    def owns(self, did: str) -> uuid.UUID | bool:
        """For a DID of this service: True for its own, the organisation id for an
        organisation's; False for any other DID."""
        if did == self.did:
            return True
        prefix = f"{self.did}:organisations:"
        if did.startswith(prefix):
            try:
                return uuid.UUID(did[len(prefix) :])
            except ValueError:
                return False
        return False
