"""What a wallet reads before it asks: the credential issuer metadata (OpenID4VCI 1.0
section 12.2), the OAuth authorization server metadata (RFC 8414) of the same host, and the
JWT VC issuer metadata that names the SD-JWT VC signing keys.

The service is its own authorization server: it only redeems pre-authorized codes, so it has
no authorization endpoint, and a wallet needs no client registration (anonymous access).
"""

from __future__ import annotations

from typing import Any

from service.credentials.clr import CLR_CONTEXT
from service.credentials.i18n import Language, text
from service.credentials.issuer import Issuer
from service.wallet import sdjwt
from service.wallet.proofs import PROOF_ALGORITHMS

PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
LDP_FORMAT = "ldp_vc"
LDP_CONFIGURATION_ID = "CompetencePassport_ldp_vc"
CONFIGURATIONS = (sdjwt.CONFIGURATION_ID, LDP_CONFIGURATION_ID)
FORMAT_OF = {sdjwt.CONFIGURATION_ID: sdjwt.FORMAT, LDP_CONFIGURATION_ID: LDP_FORMAT}
CRYPTOSUITE = "eddsa-rdfc-2022"


def token_endpoint(base_url: str) -> str:
    return f"{base_url}/oid4vci/token"


def credential_endpoint(base_url: str) -> str:
    return f"{base_url}/oid4vci/credential"


def nonce_endpoint(base_url: str) -> str:
    return f"{base_url}/oid4vci/nonce"


def _display(key: str) -> list[dict[str, Any]]:
    return [{"name": text(lang, key), "locale": lang.value} for lang in Language]


def _proof_types() -> dict[str, Any]:
    return {"jwt": {"proof_signing_alg_values_supported": list(PROOF_ALGORITHMS)}}


def _claims() -> list[dict[str, Any]]:
    """The claims description (OpenID4VCI 1.0 appendix B.2), as the type metadata names them."""
    described = sdjwt.type_metadata("")["claims"]
    return [
        {
            "path": claim["path"],
            "display": [{"name": d["label"], "locale": d["locale"]} for d in claim["display"]],
        }
        for claim in described
    ]


def credential_issuer_metadata(issuer: Issuer, batch_size: int) -> dict[str, Any]:
    base = issuer.base_url
    metadata: dict[str, Any] = {
        "credential_issuer": base,
        "authorization_servers": [base],
        "credential_endpoint": credential_endpoint(base),
        "nonce_endpoint": nonce_endpoint(base),
        "display": _display("wallet.issuer_name"),
        "credential_configurations_supported": {
            sdjwt.CONFIGURATION_ID: {
                "format": sdjwt.FORMAT,
                "vct": sdjwt.vct(base),
                "cryptographic_binding_methods_supported": ["jwk"],
                "credential_signing_alg_values_supported": ["EdDSA"],
                "proof_types_supported": _proof_types(),
                "credential_metadata": {
                    "display": _display("wallet.type_name"),
                    "claims": _claims(),
                },
            },
            LDP_CONFIGURATION_ID: {
                "format": LDP_FORMAT,
                "credential_definition": {
                    "@context": CLR_CONTEXT,
                    "type": ["VerifiableCredential", "ClrCredential"],
                },
                "cryptographic_binding_methods_supported": ["did:jwk", "did:key"],
                "credential_signing_alg_values_supported": [CRYPTOSUITE],
                "proof_types_supported": _proof_types(),
                "credential_metadata": {"display": _display("wallet.type_name")},
            },
        },
    }
    if batch_size > 1:
        metadata["batch_credential_issuance"] = {"batch_size": batch_size}
    return metadata


def authorization_server_metadata(issuer: Issuer) -> dict[str, Any]:
    base = issuer.base_url
    return {
        "issuer": base,
        "token_endpoint": token_endpoint(base),
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "pre-authorized_grant_anonymous_access_supported": True,
    }


def jwt_vc_issuer_metadata(issuer: Issuer) -> dict[str, Any]:
    """SD-JWT VC's JWT VC Issuer Metadata: the keys that sign under ``iss``."""
    return {"issuer": issuer.base_url, "jwks": issuer.keys.jwks()}


def offer_object(base_url: str, pre_authorized_code: str, tx_code_length: int) -> dict[str, Any]:
    """The credential offer object (OpenID4VCI 1.0 section 4.1.1), by value."""
    return {
        "credential_issuer": base_url,
        "credential_configuration_ids": list(CONFIGURATIONS),
        "grants": {
            PRE_AUTHORIZED_GRANT: {
                "pre-authorized_code": pre_authorized_code,
                "tx_code": {
                    "input_mode": "numeric",
                    "length": tx_code_length,
                    "description": "The code the Competence Passport shows you",
                },
            }
        },
    }
