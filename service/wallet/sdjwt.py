"""The passport as an IETF SD-JWT VC (``dc+sd-jwt``), issued with the reference ``sd-jwt``
implementation (openwallet-foundation-labs/sd-jwt-python) and signed by the service's
Ed25519 key (EdDSA).

Every verified competence is one array element disclosed on its own: the ESCO concept and its
label, who vouched for it (name, kind, enterprise number, the organisation's DID), how it was
assessed, in which setting, the level and the dates, and a ``status`` of its own in the Token
Status List, so a verifier who sees two competences learns nothing of the others and can check
that each still stands. The holder's name, when the citizen chose one for exports, is a
disclosable claim too. ``cnf`` binds the credential to the wallet's key; the ``status`` at the
top is the credential's own (set when the citizen withdraws the export or is erased).

The type (``vct``) is a URL of this service, which serves its type metadata document there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.issuer import SDJWTIssuer

from service.claims.views import ClaimView
from service.credentials.clr import ExportRequest
from service.credentials.i18n import Language, competence_label, text
from service.credentials.issuer import Issuer
from service.wallet import tokenstatus

FORMAT = "dc+sd-jwt"
TYP = "dc+sd-jwt"
TYPE_PATH = "/credentials/types/competence-passport"
CONFIGURATION_ID = "CompetencePassport_dc+sd-jwt"
COMPETENCE_FIELDS = (
    "label",
    "esco_uri",
    "issuer",
    "assessment_method",
    "learning_context",
    "level",
    "acquired_on",
    "last_used_on",
    "valid_until",
)


def vct(base_url: str) -> str:
    return base_url + TYPE_PATH


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _seconds(value: datetime) -> int:
    return int(value.astimezone(UTC).timestamp())


def competence(issuer: Issuer, request: ExportRequest, claim: ClaimView) -> dict[str, Any]:
    """One competence as the wallet shows it and a verifier reads it, codes not words (the
    type metadata names them in both languages)."""
    assert claim.issuer is not None
    position = request.positions[claim.claim_id]
    vouched: dict[str, Any] = {
        "id": issuer.organisation_did(claim.issuer.id),
        "name": claim.issuer.name,
        "kind": claim.issuer.kind,
    }
    number = request.enterprise_numbers.get(claim.issuer.id)
    if number:
        vouched["enterprise_number"] = number
    item: dict[str, Any] = {
        "label": competence_label(claim.competence.preferred_labels, request.language),
        "esco_uri": claim.competence.uri,
        "issuer": vouched,
        "assessment_method": claim.assessment_method,
        "learning_context": claim.learning_context,
        "acquired_on": _day(claim.acquired_on),
        "status": tokenstatus.reference(issuer, position.status_list, position.index),
    }
    if claim.proficiency_scale is not None and claim.proficiency_level is not None:
        item["level"] = {"scale": claim.proficiency_scale, "value": claim.proficiency_level}
    if claim.last_used_on is not None:
        item["last_used_on"] = _day(claim.last_used_on)
    if claim.valid_until is not None:
        item["valid_until"] = _day(claim.valid_until)
    return item


def sign(issuer: Issuer, request: ExportRequest, holder_jwk: dict[str, Any]) -> str:
    """The SD-JWT with every disclosure, as the credential endpoint hands it to the wallet
    (compact, ``~``-separated, ending in ``~``). CPU-bound: run it in a thread."""
    key = issuer.keys.active
    assert key.private_key is not None
    claims: dict[Any, Any] = {
        "iss": issuer.base_url,
        "iat": _seconds(request.created),
        "nbf": _seconds(request.created),
        "exp": _seconds(request.valid_until),
        "vct": vct(issuer.base_url),
        "status": tokenstatus.reference(
            issuer, request.export_position.status_list, request.export_position.index
        ),
        "competences": [SDObj(competence(issuer, request, claim)) for claim in request.claims],
    }
    if request.holder_name:
        claims[SDObj("name")] = request.holder_name
    made = SDJWTIssuer(
        claims,
        JWK.from_pyca(key.private_key),
        holder_key=JWK(**holder_jwk),
        sign_alg="EdDSA",
        # No decoys: the library would put them in every nested object of each competence.
        add_decoy_claims=False,
        extra_header_parameters={"typ": TYP, "kid": key.kid},
    )
    issuance: str = made.sd_jwt_issuance
    return issuance


def _labels(key: str) -> list[dict[str, str]]:
    return [{"locale": lang.value, "label": text(lang, key)} for lang in Language]


@cache
def type_metadata(base_url: str) -> dict[str, Any]:
    """The SD-JWT VC Type Metadata of ``vct``: names, and how each claim is shown, in Dutch
    and English; competences are always disclosed one by one."""
    claims: list[dict[str, Any]] = [
        {"path": ["name"], "display": _labels("wallet.claim.name"), "sd": "always"},
        {"path": ["competences"], "display": _labels("wallet.claim.competences"), "sd": "never"},
        {
            "path": ["competences", None],
            "display": _labels("wallet.claim.competence"),
            "sd": "always",
        },
    ]
    claims += [
        {"path": ["competences", None, field], "display": _labels(f"wallet.claim.{field}")}
        for field in COMPETENCE_FIELDS
    ]
    return {
        "vct": vct(base_url),
        "name": text(Language.EN, "wallet.type_name"),
        "description": text(Language.EN, "wallet.type_description"),
        "display": [
            {
                "locale": lang.value,
                "name": text(lang, "wallet.type_name"),
                "description": text(lang, "wallet.type_description"),
            }
            for lang in Language
        ],
        "claims": claims,
    }
