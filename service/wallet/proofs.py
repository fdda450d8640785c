"""Key proofs of possession (OpenID4VCI 1.0 appendix F.1, proof type ``jwt``).

A wallet proves it holds the key a credential will be bound to by signing a JWT whose header
has ``typ`` ``openid4vci-proof+jwt`` and names the key (``jwk``, or ``kid`` as a did:jwk or
did:key URL, which resolve without a network), and whose payload has ``aud`` = this credential
issuer, ``iat`` close to now and ``nonce`` = a ``c_nonce`` the nonce endpoint gave. The
signature is checked by PyJWT; whether the nonce is fresh and unspent is the caller's question
(it is in the database).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import base58
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm
from jwt.exceptions import InvalidTokenError, PyJWKError

from service import canonical
from service.credentials.keys import ED25519_PUB_MULTICODEC, key_from_multibase
from service.wallet.errors import OAuthError

PROOF_TYP = "openid4vci-proof+jwt"
# What the issuer metadata lists as proof_signing_alg_values_supported.
PROOF_ALGORITHMS = ("ES256", "ES384", "EdDSA")
MAX_SKEW_SECONDS = 300  # how far a proof's iat may be from the server's clock
P256_PUB_MULTICODEC = b"\x80\x24"  # p256-pub (0x1200) as an unsigned varint
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


@dataclass(frozen=True)
class HolderKey:
    """The key a credential is bound to, as a public JWK and as the DID that names it."""

    jwk: dict[str, Any]
    did: str
    nonce: str

    @property
    def rfc7638_id(self) -> str:
        return rfc7638_jwk_id(self.jwk)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_members(jwk: dict[str, Any]) -> dict[str, Any]:
    """The members that make the public key (RFC 7638), nothing else."""
    members = _THUMBPRINT_MEMBERS.get(jwk.get("kty", ""))
    if members is None or any(not isinstance(jwk.get(m), str) for m in members):
        raise ValueError("only EC and OKP public keys are accepted")
    return {m: jwk[m] for m in members}


def rfc7638_jwk_id(jwk: dict[str, Any]) -> str:
    return _b64url(hashlib.sha256(canonical.dumps(public_members(jwk))).digest())


def did_jwk(jwk: dict[str, Any]) -> str:
    """did:jwk of a public key: its members, as JSON, base64url."""
    return "did:jwk:" + _b64url(canonical.dumps(public_members(jwk)))


def _resolve_kid(kid: str) -> tuple[dict[str, Any], str]:
    """A did:jwk or did:key URL as (public JWK, DID); nothing that needs the network."""
    did = kid.split("#", 1)[0]
    if did.startswith("did:jwk:"):
        document = json.loads(_b64url_decode(did.removeprefix("did:jwk:")))
        if not isinstance(document, dict):
            raise ValueError("did:jwk holds no JWK")
        return public_members(document), did
    if did.startswith("did:key:z"):
        multibase = did.removeprefix("did:key:")
        raw = base58.b58decode(multibase[1:])
        if raw.startswith(ED25519_PUB_MULTICODEC):
            ed = key_from_multibase(multibase)
            if ed is None:
                raise ValueError("not an Ed25519 did:key")
            return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw[2:])}, did
        if raw.startswith(P256_PUB_MULTICODEC) and len(raw) == 35:
            point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw[2:])
            found: dict[str, Any] = ECAlgorithm.to_jwk(point, as_dict=True)
            return public_members(found), did
        raise ValueError("did:key of a key type this issuer does not bind to")
    raise ValueError("kid must be a did:jwk or did:key URL")


def _holder(header: dict[str, Any]) -> tuple[dict[str, Any], str]:
    named = [name for name in ("jwk", "kid", "x5c") if name in header]
    if len(named) != 1:
        raise OAuthError("invalid_proof", "the proof header must name its key by jwk or kid")
    if "x5c" in header:
        raise OAuthError("invalid_proof", "x5c key proofs are not supported; use jwk or kid")
    try:
        if "jwk" in header:
            given = header["jwk"]
            if not isinstance(given, dict) or "d" in given:
                raise ValueError("jwk must be a public key")
            jwk = public_members(given)
            return jwk, did_jwk(jwk)
        kid = header["kid"]
        if not isinstance(kid, str) or len(kid) > 4096:
            raise ValueError("kid must be a DID URL")
        return _resolve_kid(kid)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_proof", f"the proof's key cannot be used: {exc}") from None


def verify_proof(token: object, *, audience: str, now: datetime) -> HolderKey:
    """The holder's key from one ``jwt`` key proof, its signature, type, audience and time
    checked; raises OAuthError ``invalid_proof``. The nonce is returned, not checked."""
    if not isinstance(token, str) or len(token) > 16_384:
        raise OAuthError("invalid_proof", "a jwt proof must be a compact JWT")
    try:
        header = jwt.get_unverified_header(token)
    except InvalidTokenError:
        raise OAuthError("invalid_proof", "the proof is not a JWT") from None
    if header.get("typ") != PROOF_TYP:
        raise OAuthError("invalid_proof", f"the proof's typ must be {PROOF_TYP}")
    algorithm = header.get("alg")
    if algorithm not in PROOF_ALGORITHMS:
        raise OAuthError("invalid_proof", f"proof alg must be one of {', '.join(PROOF_ALGORITHMS)}")
    jwk, did = _holder(header)
    try:
        key = PyJWK(jwk, algorithm=algorithm).key
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            options={"require": ["aud", "iat", "nonce"], "verify_iat": False},
        )
    except jwt.InvalidAudienceError:
        raise OAuthError("invalid_proof", "the proof's aud is not this credential issuer") from None
    except jwt.InvalidSignatureError:
        raise OAuthError("invalid_proof", "the proof's signature does not verify") from None
    except (InvalidTokenError, PyJWKError) as exc:
        raise OAuthError("invalid_proof", f"the proof does not verify: {exc}") from None
    issued = claims.get("iat")
    if not isinstance(issued, int | float) or abs(now.timestamp() - issued) > MAX_SKEW_SECONDS:
        raise OAuthError("invalid_proof", "the proof's iat is not close to now")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise OAuthError("invalid_nonce", "the proof carries no c_nonce")
    return HolderKey(jwk=jwk, did=did, nonce=nonce)
