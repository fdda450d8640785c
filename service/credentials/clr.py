"""A passport's verified claims as a signed CLR 2.0 ``ClrCredential`` holding one signed
Open Badges 3.0 ``AchievementCredential`` per claim (VC 2.0 data model).

The shape, field by field:

- each claim's issuer is the vouching organisation's Profile (its name, kind and enterprise
  number) under a DID that this service controls for it (``issuer.Issuer``);
- the Achievement is the ESCO concept: ``alignment`` points at its URI, ``achievementType``
  is ``Competency``; the level is a ``Result`` against a ``ResultDescription`` of its scale;
- how it was assessed is the first ``Evidence`` (genre ``assessment``), followed by the
  claim's own evidence; ``awardedDate`` is when it was acquired, ``activityEndDate`` when it
  was last used;
- every credential has a ``BitstringStatusListEntry`` and the published JSON schema;
- another organisation's endorsement of a claim is an Open Badges 3.0
  ``EndorsementCredential`` right after the claim's credential in the ClrSubject's
  ``verifiableCredential`` (the CLR schema takes any verifiable credential there): its subject
  is that AchievementCredential, its issuer the endorsing organisation under its DID, its
  ``endorsementComment`` the statement, ``awardedDate`` when it was given; signed, with a status
  entry in the endorser's own list, so revoking it revokes it in every export. Not inside the
  AchievementCredential's own ``endorsement``: there it would describe the credential inside
  itself, which strict verifiers (openbadgeslib) refuse as a re-description of the credential.

Self-declared competences are not in it: nobody but the citizen vouches for them, and a
signed credential would make them look verified. The PDF lists them apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from service.claims.views import ClaimView
from service.credentials import integrity
from service.credentials.documents import CLR_V2, OB_EXTENSIONS, OB_V3, VC_V2
from service.credentials.i18n import Language, competence_label, text
from service.credentials.issuer import Issuer
from service.credentials.status import Position
from service.endorsements.views import EndorsementView

OB_SCHEMA = (
    "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json"
)
ENDORSEMENT_SCHEMA = (
    "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_endorsementcredential_schema.json"
)
CLR_SCHEMA = (
    "https://purl.imsglobal.org/spec/clr/v2p0/schema/json/clr_v2p0_clrcredential_schema.json"
)
SCHEMA_TYPE = "1EdTechJsonSchemaValidator2019"
# The extensions context defines 1EdTechJsonSchemaValidator2019, the credentialSchema type:
# without it that type is an undefined term, which a safe-mode JSON-LD processor refuses.
ACHIEVEMENT_CONTEXT = [VC_V2, OB_V3, OB_EXTENSIONS]
CLR_CONTEXT = [VC_V2, CLR_V2, OB_V3, OB_EXTENSIONS]
ESCO = "ESCO"


@dataclass(frozen=True)
class ExportRequest:
    export_id: uuid.UUID
    created: datetime
    valid_until: datetime
    language: Language
    holder_name: str | None
    claims: Sequence[ClaimView]  # verified and active, with the endorsements to export
    positions: Mapping[uuid.UUID, Position]
    export_position: Position
    enterprise_numbers: Mapping[uuid.UUID, str]  # of the issuers and the endorsers
    holder_id: str | None = None  # the holder's DID, when a wallet proved it holds its key
    endorsement_positions: Mapping[uuid.UUID, Position] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """The holder's DID when a wallet is bound, else an id of this export only."""
        return self.holder_id or subject_id(self.export_id)


def credential_id(export_id: uuid.UUID, claim_id: uuid.UUID) -> str:
    """Stable within an export, distinct across exports (each export re-issues its claims)."""
    return f"urn:uuid:{uuid.uuid5(export_id, str(claim_id))}"


def endorsement_credential_id(export_id: uuid.UUID, endorsement_id: uuid.UUID) -> str:
    return f"urn:uuid:{uuid.uuid5(export_id, f'endorsement:{endorsement_id}')}"


def subject_id(export_id: uuid.UUID) -> str:
    """A holder id of this export only: two recruiters cannot link their copies by it."""
    return f"urn:uuid:{uuid.uuid5(export_id, 'subject')}"


def _instant(value: datetime) -> str:
    return integrity.timestamp(value)


def _day(value: date, end: bool = False) -> str:
    return _instant(datetime.combine(value, time.max if end else time.min, tzinfo=UTC))


def _status(issuer: Issuer, position: Position) -> dict[str, Any]:
    url = issuer.status_list_url(position.status_list)
    return {
        "id": f"{url}#{position.index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": str(position.index),
        "statusListCredential": url,
    }


def _identifiers(request: ExportRequest) -> list[dict[str, Any]]:
    if not request.holder_name:
        return []
    return [
        {
            "type": "IdentityObject",
            "identityType": "name",
            "hashed": False,
            "identityHash": request.holder_name,
        }
    ]


def _profile(
    issuer: Issuer, request: ExportRequest, organisation_id: uuid.UUID, name: str, kind: str
) -> dict[str, Any]:
    """An organisation as a credential's issuer: under the DID the service controls for it."""
    profile: dict[str, Any] = {
        "id": issuer.organisation_did(organisation_id),
        "type": ["Profile"],
        "name": name,
        "description": text(request.language, f"organisation.{kind}"),
    }
    number = request.enterprise_numbers.get(organisation_id)
    if number:
        profile["otherIdentifier"] = [
            {"type": "IdentifierEntry", "identifier": number, "identifierType": "identifier"}
        ]
    return profile


def endorsement_credential(
    issuer: Issuer, request: ExportRequest, claim: ClaimView, endorsement: EndorsementView
) -> dict[str, Any]:
    """Unsigned; ``sign_export`` signs it with the endorser's DID."""
    endorser = endorsement.endorser
    label = competence_label(claim.competence.preferred_labels, request.language)
    return {
        "@context": ACHIEVEMENT_CONTEXT,
        "id": endorsement_credential_id(request.export_id, endorsement.endorsement_id),
        "type": ["VerifiableCredential", "EndorsementCredential"],
        "name": text(request.language, "credential.endorsement", competence=label),
        "issuer": _profile(issuer, request, endorser.id, endorser.name, endorser.kind),
        "validFrom": _instant(request.created),
        "awardedDate": _instant(endorsement.endorsed_at),
        "credentialSubject": {
            "id": credential_id(request.export_id, claim.claim_id),
            "type": ["EndorsementSubject"],
            "endorsementComment": endorsement.statement,
        },
        "credentialStatus": _status(
            issuer, request.endorsement_positions[endorsement.endorsement_id]
        ),
        "credentialSchema": [{"id": ENDORSEMENT_SCHEMA, "type": SCHEMA_TYPE}],
    }


def achievement_credential(
    issuer: Issuer, request: ExportRequest, claim: ClaimView
) -> dict[str, Any]:
    """Unsigned; ``sign_export`` signs it."""
    assert claim.issuer is not None
    lang = request.language
    label = competence_label(claim.competence.preferred_labels, lang)
    description = competence_label(claim.competence.descriptions, lang) or label
    org = claim.issuer
    profile = _profile(issuer, request, org.id, org.name, org.kind)
    method = text(lang, f"assessment.{claim.assessment_method}")
    setting = text(lang, f"learning.{claim.learning_context}")
    narrative = text(lang, "credential.criteria", method=method, setting=setting)
    achievement: dict[str, Any] = {
        "id": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, claim.competence.uri)}",
        "type": ["Achievement"],
        "achievementType": "Competency",
        "name": label,
        "description": description,
        "criteria": {"narrative": narrative},
        "alignment": [
            {
                "type": ["Alignment"],
                "targetName": label,
                "targetUrl": claim.competence.uri,
                "targetType": "ceasn:Competency",
                "targetFramework": ESCO,
                "targetCode": claim.competence.uri.rsplit("/", 1)[-1],
            }
        ],
        "inLanguage": lang.value,
    }
    subject: dict[str, Any] = {
        "id": request.subject,
        "type": ["AchievementSubject"],
        "achievement": achievement,
    }
    identifiers = _identifiers(request)
    if identifiers:
        subject["identifier"] = identifiers
    if claim.proficiency_level is not None and claim.proficiency_scale is not None:
        level_id = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, claim.proficiency_scale)}"
        achievement["resultDescription"] = [
            {
                "id": level_id,
                "type": ["ResultDescription"],
                "name": text(lang, f"scale.{claim.proficiency_scale}"),
                "resultType": "PerformanceLevel",
            }
        ]
        subject["result"] = [
            {"type": ["Result"], "resultDescription": level_id, "value": claim.proficiency_level}
        ]
    if claim.last_used_on is not None:
        subject["activityEndDate"] = _day(claim.last_used_on)
    assessment: dict[str, Any] = {
        "type": ["Evidence"],
        "genre": "assessment",
        "name": method,
        "narrative": claim.context or narrative,
    }
    evidence = [assessment] + [
        {
            **({"id": item["url"]} if item.get("url") else {}),
            "type": ["Evidence"],
            "name": item["title"],
            "genre": text(lang, f"evidence.{item['kind']}"),
            **({"description": item["digest"]} if item.get("digest") else {}),
        }
        for item in claim.evidence
    ]
    document: dict[str, Any] = {
        "@context": ACHIEVEMENT_CONTEXT,
        "id": credential_id(request.export_id, claim.claim_id),
        "type": ["VerifiableCredential", "AchievementCredential"],
        "name": label,
        "issuer": profile,
        "validFrom": _instant(request.created),
        "awardedDate": _day(claim.acquired_on),
        "credentialSubject": subject,
        "evidence": evidence,
        "credentialStatus": _status(issuer, request.positions[claim.claim_id]),
        "credentialSchema": [{"id": OB_SCHEMA, "type": SCHEMA_TYPE}],
    }
    if claim.valid_until is not None:
        document["validUntil"] = _day(claim.valid_until, end=True)
    return document


def sign_export(issuer: Issuer, request: ExportRequest) -> dict[str, Any]:
    """The signed ClrCredential. CPU-bound (RDF canonicalization): run it in a thread."""
    key = issuer.keys.active
    assert key.private_key is not None
    created = _instant(request.created)
    credentials = []
    for claim in request.claims:
        assert claim.issuer is not None
        unsigned = achievement_credential(issuer, request, claim)
        method = issuer.method(issuer.organisation_did(claim.issuer.id))
        credentials.append(integrity.sign(unsigned, key.private_key, method, created))
        credentials += [
            integrity.sign(
                endorsement_credential(issuer, request, claim, endorsement),
                key.private_key,
                issuer.method(issuer.organisation_did(endorsement.endorser.id)),
                created,
            )
            for endorsement in claim.endorsements
        ]
    lang = request.language
    subject: dict[str, Any] = {
        "id": request.subject,
        "type": ["ClrSubject"],
        "verifiableCredential": credentials,
    }
    identifiers = _identifiers(request)
    if identifiers:
        subject["identifier"] = identifiers
    name = (
        text(lang, "credential.title_named", name=request.holder_name)
        if request.holder_name
        else text(lang, "credential.title")
    )
    clr: dict[str, Any] = {
        "@context": CLR_CONTEXT,
        "id": f"urn:uuid:{request.export_id}",
        "type": ["VerifiableCredential", "ClrCredential"],
        "name": name,
        "description": text(lang, "credential.description", url=issuer.base_url),
        "issuer": {"id": issuer.did, "type": ["Profile"], "name": issuer.name},
        "validFrom": created,
        "validUntil": _instant(request.valid_until),
        "credentialSubject": subject,
        "credentialStatus": _status(issuer, request.export_position),
        "credentialSchema": [{"id": CLR_SCHEMA, "type": SCHEMA_TYPE}],
    }
    return integrity.sign(clr, key.private_key, issuer.method(issuer.did), created)


def status_list_credential(
    issuer: Issuer,
    list_id: int,
    owner: uuid.UUID | None,
    encoded: str,
    at: datetime,
) -> dict[str, Any]:
    """Signed by the DID that issues the credentials it covers: an organisation's, or the
    service's own for the ClrCredentials (verifiers bind a list to its credentials' issuer)."""
    url = issuer.status_list_url(list_id)
    did = issuer.did if owner is None else issuer.organisation_did(owner)
    unsigned = {
        "@context": [VC_V2],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": did,
        "validFrom": _instant(at),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encoded,
        },
    }
    key = issuer.keys.active
    assert key.private_key is not None
    return integrity.sign(unsigned, key.private_key, issuer.method(did), _instant(at))
