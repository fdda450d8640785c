"""Webhook signing secrets at rest: sealed with AES-256-GCM under a key of the service's own.

The dispatcher signs with the secret itself, so it cannot be kept as a one-way hash the way a
password is. Sealed, a copy of the database alone (a backup, a replica, a leaked dump) gives
no way to forge a subscriber's webhooks. The subscription's id is the associated data, so a
sealed secret copied into another row does not open there.

The key is derived (HKDF-SHA256) from ``PASSPORT_WEBHOOK_SECRETS_KEY``; the stored form is
versioned ("v1:" + base64url of nonce and ciphertext) so the key can be rotated later.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1:"
_NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """A stored secret that this key cannot open: another key sealed it, or it was altered."""


def new_secret() -> str:
    """A Standard Webhooks secret: "whsec_" and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class SecretBox:
    def __init__(self, key_material: bytes) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"passport/webhook-secrets/v1"
        ).derive(key_material)
        self._aead = AESGCM(key)

    def seal(self, secret: str, subscription_id: uuid.UUID) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), subscription_id.bytes)
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, subscription_id: uuid.UUID) -> str:
        if not stored.startswith(_VERSION):
            raise SecretUnreadable("not a sealed secret")
        try:
            raw = base64.urlsafe_b64decode(stored[len(_VERSION) :])
            plain = self._aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], subscription_id.bytes
            )
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise SecretUnreadable("the secret does not open with this key") from exc
        return plain.decode()
