"""The keys that sign exported credentials, and how they are published and rotated.

The keys live in one JWK Set file (``PASSPORT_SIGNING_KEYS_FILE``, a mounted Secret in
production). The first key that has its private part signs; every key in the file is
published (``/.well-known/jwks.json`` and the DID documents), so rotation is: put a new key
first, keep the old ones. An old key whose private part is removed from the file can no longer
sign but keeps every export it signed verifiable. `passport signing-key` writes such files.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import base58
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt import PyJWK
from jwt.algorithms import OKPAlgorithm
from jwt.exceptions import PyJWKError

from service import canonical

# The multicodec prefix of an Ed25519 public key (0xed, as an unsigned varint), which
# Multikey's publicKeyMultibase puts before the 32 key bytes.
ED25519_PUB_MULTICODEC = b"\xed\x01"
DEV_KEYS_FILE = "credential-signing-keys.json"


class KeyFileError(ValueError):
    """The signing-keys file is missing, unreadable or holds something other than Ed25519."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public_key: Ed25519PublicKey
    private_key: Ed25519PrivateKey | None = None  # None: retired, kept to verify old exports

    @property
    def raw_public(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def multibase(self) -> str:
        """Multikey ``publicKeyMultibase``: base58btc ("z") of the multicodec-prefixed key."""
        return "z" + base58.b58encode(ED25519_PUB_MULTICODEC + self.raw_public).decode()

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(self.public_key, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}


def rfc7638_kid(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint: a kid that names the key itself."""
    jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
    members = {name: jwk[name] for name in ("crv", "kty", "x")}
    digest = hashlib.sha256(canonical.dumps(members)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def key_from_multibase(value: str) -> Ed25519PublicKey | None:
    """A Multikey ``publicKeyMultibase`` as a key, or None when it is not an Ed25519 one."""
    if not value.startswith("z"):
        return None
    try:
        raw = base58.b58decode(value[1:])
    except ValueError:
        return None
    if len(raw) != 34 or not raw.startswith(ED25519_PUB_MULTICODEC):
        return None
    return Ed25519PublicKey.from_public_bytes(raw[2:])


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[SigningKey, ...]

    def __post_init__(self) -> None:
        if not any(key.private_key is not None for key in self.keys):
            raise KeyFileError("the signing keys include no private key to sign with")
        kids = [key.kid for key in self.keys]
        if len(set(kids)) != len(kids):
            raise KeyFileError("two signing keys have the same kid")

    @property
    def active(self) -> SigningKey:
        return next(key for key in self.keys if key.private_key is not None)

    def get(self, kid: str) -> SigningKey | None:
        return next((key for key in self.keys if key.kid == kid), None)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys]}

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any]) -> KeyRing:
        entries = document.get("keys")
        if not isinstance(entries, list) or not entries:
            raise KeyFileError('the signing keys must be a JWK Set: {"keys": [...]}')
        return cls(tuple(_parse(entry, n) for n, entry in enumerate(entries)))

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        try:
            document = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise KeyFileError(f"cannot read the signing keys in {path}: {exc}") from exc
        if not isinstance(document, dict):
            raise KeyFileError(f"{path} is not a JWK Set")
        return cls.from_jwks(document)


def _parse(entry: object, n: int) -> SigningKey:
    if not isinstance(entry, dict) or entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
        raise KeyFileError(f"key {n}: only Ed25519 (kty OKP, crv Ed25519) keys are used")
    try:
        key = PyJWK(entry, algorithm="EdDSA").key
    except PyJWKError as exc:
        raise KeyFileError(f"key {n}: {exc}") from exc
    if isinstance(key, Ed25519PrivateKey):
        public, private = key.public_key(), key
    elif isinstance(key, Ed25519PublicKey):
        public, private = key, None
    else:  # pragma: no cover - PyJWK returns one of the two for OKP/Ed25519
        raise KeyFileError(f"key {n}: not an Ed25519 key")
    kid = entry.get("kid") or rfc7638_kid(public)
    if not isinstance(kid, str) or not kid.replace("-", "").replace("_", "").isalnum():
        raise KeyFileError(f"key {n}: kid must be letters, digits, '-' and '_'")
    return SigningKey(kid=kid, public_key=public, private_key=private)


def new_private_jwk() -> dict[str, Any]:
    key = Ed25519PrivateKey.generate()
    jwk: dict[str, Any] = OKPAlgorithm.to_jwk(key, as_dict=True)
    return {**jwk, "kid": rfc7638_kid(key.public_key())}


def rotate(document: Mapping[str, Any], retire_after: int | None = None) -> dict[str, Any]:
    """A new key first; the others follow. ``retire_after``: keep private parts of only that
    many older keys (the rest stay published, public part only)."""
    older = [dict(entry) for entry in document.get("keys", [])]
    if retire_after is not None:
        for n, entry in enumerate(older):
            if n >= retire_after:
                entry.pop("d", None)
    return {"keys": [new_private_jwk(), *older]}


def load_or_create_dev_keyring(data_dir: Path) -> KeyRing:
    """Development: a key generated once and kept in data_dir, like the token key."""
    path = data_dir / DEV_KEYS_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"keys": [new_private_jwk()]}, indent=2))
        path.chmod(0o600)
    return KeyRing.load(path)


def public_keyring(jwks: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """kid -> key of a published JWK Set (what a verifier without this service's code needs)."""
    found: dict[str, Ed25519PublicKey] = {}
    entries: Iterable[Any] = jwks.get("keys", [])
    for n, entry in enumerate(entries):
        key = _parse({k: v for k, v in entry.items() if k != "d"}, n)
        found[key.kid] = key.public_key
    return found
