"""Test-side wallet keys and key proofs (OpenID4VCI ``jwt`` proof type), made with PyJWT and
cryptography, for the Python tests that drive the issuer by hand (the negative cases)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm


@dataclass
class WalletKey:
    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return jwk

    def proof(
        self,
        *,
        audience: str,
        nonce: str | None,
        typ: str = "openid4vci-proof+jwt",
        header_jwk: dict[str, Any] | None = None,
        issued_at: int | None = None,
    ) -> str:
        payload: dict[str, Any] = {"aud": audience, "iat": issued_at or int(time.time())}
        if nonce is not None:
            payload["nonce"] = nonce
        headers = {"typ": typ, "jwk": header_jwk or self.public_jwk}
        return jwt.encode(payload, self.private, algorithm="ES256", headers=headers)
