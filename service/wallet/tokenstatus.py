"""IETF Token Status List (draft-ietf-oauth-status-list): the status of SD-JWT VCs.

The positions are the service's own status positions (``service/credentials/status.py``:
drawn at random, per export), read the same way as for the W3C Bitstring Status List; only
the encoding differs. Here one bit per token (``bits`` 1, 0 valid, 1 invalid), the status of
index 0 in the least significant bit of the first byte, the bytes compressed with zlib
(RFC 1950) and base64url-encoded, inside a JWT of ``typ`` ``statuslist+jwt`` whose ``sub`` is
the list's URL, signed by the service's key.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import jwt

from service.credentials.issuer import Issuer
from service.credentials.status import LIST_SIZE

STATUS_LIST_TYP = "statuslist+jwt"
MEDIA_TYPE = "application/statuslist+jwt"
TTL_SECONDS = 60  # how long a verifier may cache a list (as the Bitstring lists' max-age)


def status_list_url(issuer: Issuer, list_id: int) -> str:
    return f"{issuer.base_url}/credentials/token-status/{list_id}"


def reference(issuer: Issuer, list_id: int, index: int) -> dict[str, Any]:
    """The ``status`` claim of a Referenced Token."""
    return {"status_list": {"idx": index, "uri": status_list_url(issuer, list_id)}}


def encode(set_bits: Iterable[int], size: int = LIST_SIZE) -> str:
    """``lst``: base64url (no padding) of the zlib-compressed bytes, index 0 in bit 0."""
    packed = bytearray(size // 8)
    for index in set_bits:
        packed[index // 8] |= 1 << (index % 8)
    compressed = zlib.compress(bytes(packed), level=9)
    return base64.urlsafe_b64encode(compressed).rstrip(b"=").decode()


def status_list_token(issuer: Issuer, list_id: int, set_bits: Iterable[int], at: datetime) -> str:
    """The signed Status List Token, valid until a verifier should fetch it again."""
    key = issuer.keys.active
    assert key.private_key is not None
    issued = int(at.timestamp())
    payload = {
        "iss": issuer.base_url,
        "sub": status_list_url(issuer, list_id),
        "iat": issued,
        "exp": issued + 24 * 3600,
        "ttl": TTL_SECONDS,
        "status_list": {"bits": 1, "lst": encode(set_bits)},
    }
    headers = {"typ": STATUS_LIST_TYP, "kid": key.kid}
    return jwt.encode(payload, key.private_key, algorithm="EdDSA", headers=headers)
