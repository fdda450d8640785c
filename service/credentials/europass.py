"""The passport as a Europass credential: a European Learning Model (ELM v3) European Digital
Credential, generic profile (``edc-generic-full``).

The citizen is the ``Person``; each verified claim is a ``LearningAchievement`` titled by its
ESCO competence, specified by a ``LearningAchievementSpecification`` whose ``LearningOutcome``
names the ESCO skill (``relatedESCOSkill``), awarded by an ``AwardingProcess`` of the vouching
organisation (its legal name, enterprise number and country) on the day it was acquired, and
proven by a ``LearningAssessment`` (how it was assessed, the level as its grade). When it was
last used and until when it is valid are notes. The issuer is the service, with its legal
identifier (``PASSPORT_EUROPASS_ISSUER_ID``).

It is not sealed: Europass wants a qualified electronic seal (JAdES) of the operator, which
this service does not hold (README, "Europass"). The document is checked against the
official SHACL shapes in the tests; its JSON-LD uses only the shipped ELM contexts.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from functools import cache
from importlib import resources
from typing import Any

import orjson
import typst
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.principal import Principal
from service.citizens.service import export_name
from service.claims.views import ClaimView
from service.credentials import integrity
from service.credentials.documents import ELM_EDC_AP, VC_V1
from service.credentials.exports import ACTIVE_ONLY, NOTHING_TO_EXPORT, enterprise_numbers
from service.credentials.i18n import Language, competence_label, day, level_text, moment, text
from service.credentials.issuer import Issuer
from service.errors import InvalidState
from service.passports.service import read_own_passport

ELM_CONTEXT = [VC_V1, ELM_EDC_AP]
MEDIA_TYPE = "application/ld+json"
AUTHORITY = "http://publications.europa.eu/resource/authority"
SNB = "http://data.europa.eu/snb"
LANGUAGES = {Language.NL: ("NLD", "Nederlands"), Language.EN: ("ENG", "English")}
GENERIC_PROFILE = f"{SNB}/credential/e34929035b"
SHAPES = f"{SNB}/model/ap/edc-generic-full"
ESCO_SKILLS = "http://data.europa.eu/esco/concept-scheme/skills"
IMAGE_ROWS = 25  # the picture lists this many competences, then says how many more


def _concept(iri: str, scheme: str, label: str | None = None, lang: str = "en") -> dict[str, Any]:
    concept: dict[str, Any] = {
        "id": iri,
        "type": "Concept",
        "inScheme": {"id": scheme, "type": "ConceptScheme"},
    }
    if label:
        concept["prefLabel"] = {lang: label}
    return concept


def _language(lang: Language) -> dict[str, Any]:
    code, name = LANGUAGES[lang]
    return _concept(f"{AUTHORITY}/language/{code}", f"{AUTHORITY}/language", name)


def _belgium() -> dict[str, Any]:
    return _concept(f"{AUTHORITY}/country/BEL", f"{AUTHORITY}/country", "Belgium")


def _day(value: date) -> str:
    return integrity.timestamp(datetime.combine(value, time.min, tzinfo=UTC))


class _Ids:
    """Node ids of one export: stable within it, unrelated across exports."""

    def __init__(self, export_id: uuid.UUID) -> None:
        self.export_id = export_id

    def __call__(self, kind: str, *key: object) -> str:
        name = ":".join([kind, *map(str, key)])
        return f"urn:epass:{kind}:{uuid.uuid5(self.export_id, name)}"


def _organisation(
    ids: _Ids, node_id: str, name: str, lang: str, number: str | None, identifier_path: str
) -> dict[str, Any]:
    organisation: dict[str, Any] = {
        "id": node_id,
        "type": "Organisation",
        "legalName": {lang: name},
        "location": {
            "id": ids("location", node_id),
            "type": "Location",
            "address": {
                "id": ids("address", node_id),
                "type": "Address",
                "countryCode": _belgium(),
            },
        },
    }
    if number:
        organisation[identifier_path] = {
            "id": ids("legalIdentifier", node_id),
            "type": "LegalIdentifier",
            "notation": number,
            "spatial": _belgium(),
        }
    return organisation


def _note(ids: _Ids, key: str, lang: str, words: str) -> dict[str, Any]:
    return {"id": ids("note", key), "type": "Note", "noteLiteral": {lang: words}}


def _achievement(
    ids: _Ids,
    issuer: Issuer,
    claim: ClaimView,
    language: Language,
    enterprise_numbers: dict[uuid.UUID, str],
) -> dict[str, Any]:
    assert claim.issuer is not None
    lang = language.value
    label = competence_label(claim.competence.preferred_labels, language)
    awarding = {
        "id": ids("awardingProcess", claim.claim_id),
        "type": "AwardingProcess",
        "awardingBody": _organisation(
            ids,
            issuer.organisation_did(claim.issuer.id),
            claim.issuer.name,
            lang,
            enterprise_numbers.get(claim.issuer.id),
            "registration",
        ),
        "awardingDate": _day(claim.acquired_on),
    }
    method = text(language, f"assessment.{claim.assessment_method}")
    grade = level_text(language, claim.proficiency_scale, claim.proficiency_level) or method
    notes = [
        _note(
            ids,
            f"setting:{claim.claim_id}",
            lang,
            text(language, f"learning.{claim.learning_context}"),
        )
    ]
    dated = (("last_used_on", claim.last_used_on), ("valid_until", claim.valid_until))
    for key, moment_of in dated:
        if moment_of is not None:
            words = f"{text(language, f'wallet.claim.{key}')}: {day(language, moment_of)}"
            notes.append(_note(ids, f"{key}:{claim.claim_id}", lang, words))
    return {
        "id": ids("learningAchievement", claim.claim_id),
        "type": "LearningAchievement",
        "title": {lang: label},
        "awardedBy": awarding,
        "specifiedBy": {
            "id": ids("learningAchievementSpecification", claim.competence.uri),
            "type": "LearningAchievementSpecification",
            "title": {lang: label},
            "learningOutcome": {
                "id": ids("learningOutcome", claim.competence.uri),
                "type": "LearningOutcome",
                "title": {lang: label},
                "relatedESCOSkill": _concept(claim.competence.uri, ESCO_SKILLS, label, lang),
            },
        },
        "provenBy": {
            "id": ids("learningAssessment", claim.claim_id),
            "type": "LearningAssessment",
            "title": {lang: method},
            "grade": _note(ids, f"grade:{claim.claim_id}", lang, grade),
            "awardedBy": awarding,
        },
        "additionalNote": notes,
    }


@cache
def _template() -> str:
    return str(resources.files("service.credentials") / "templates" / "europass.typ")


def display_image(
    claims: Sequence[ClaimView], language: Language, holder: str | None, created: datetime
) -> bytes:
    """The first page a wallet shows, as a PNG: title, holder, and the competences."""
    rows = [
        {
            "competence": competence_label(c.competence.preferred_labels, language),
            "issuer": c.issuer.name if c.issuer else "",
            "date": day(language, c.acquired_on),
        }
        for c in claims[:IMAGE_ROWS]
    ]
    more = max(0, len(claims) - IMAGE_ROWS)
    data = {
        "lang": language.value,
        "title": text(language, "wallet.type_name"),
        "holder": holder,
        "issued": moment(language, created),
        "rows": rows,
        "more": more,
        "more_text": f"+ {more}",
    }
    fonts = [str(resources.files("service.credentials") / "fonts")]
    png: bytes = typst.compile(
        _template(),
        format="png",
        ppi=96,
        sys_inputs={"data": orjson.dumps(data).decode()},
        font_paths=fonts,
        ignore_system_fonts=True,
    )
    return png


def europass_credential(
    issuer: Issuer,
    claims: Sequence[ClaimView],
    *,
    language: Language,
    holder_name: str | None,
    issuer_legal_id: str | None,
    enterprise_numbers: dict[uuid.UUID, str],
    created: datetime,
    export_id: uuid.UUID,
) -> dict[str, Any]:
    """The ELM v3 credential. CPU-bound (the picture is typeset): run it in a thread."""
    ids = _Ids(export_id)
    lang = language.value
    person: dict[str, Any] = {
        "id": ids("person", "holder"),
        "type": "Person",
        "hasClaim": [
            _achievement(ids, issuer, claim, language, enterprise_numbers) for claim in claims
        ],
    }
    if holder_name:
        person["fullName"] = {lang: holder_name}
    image = display_image(claims, language, holder_name, created)
    title = text(language, "wallet.type_name")
    stamp = integrity.timestamp(created)
    return {
        "@context": ELM_CONTEXT,
        "id": f"urn:credential:{export_id}",
        "type": ["VerifiableCredential", "EuropeanDigitalCredential"],
        "credentialProfiles": _concept(GENERIC_PROFILE, f"{SNB}/credential/25831c2", "Generic"),
        "displayParameter": {
            "id": ids("displayParameter", 1),
            "type": "DisplayParameter",
            "title": {lang: title},
            "description": {lang: text(language, "wallet.type_description")},
            "language": _language(language),
            "primaryLanguage": _language(language),
            "individualDisplay": {
                "id": ids("individualDisplay", 1),
                "type": "IndividualDisplay",
                "language": _language(language),
                "displayDetail": {
                    "id": ids("displayDetail", 1),
                    "type": "DisplayDetail",
                    "image": {
                        "id": ids("mediaObject", 1),
                        "type": "MediaObject",
                        "content": base64.b64encode(image).decode(),
                        "contentEncoding": _concept(
                            f"{SNB}/encoding/6146cde7dd", f"{SNB}/encoding/25831c2", "base64"
                        ),
                        "contentType": _concept(
                            f"{AUTHORITY}/file-type/PNG", f"{AUTHORITY}/file-type", "PNG"
                        ),
                    },
                    "page": 1,
                },
            },
        },
        "credentialSchema": {"id": SHAPES, "type": "ShaclValidator2017"},
        "credentialSubject": person,
        "issuer": _organisation(
            ids,
            issuer.did,
            issuer.name,
            lang,
            issuer_legal_id or issuer.did,
            "eIDASIdentifier",
        ),
        "issuanceDate": stamp,
        "issued": stamp,
        "validFrom": stamp,
    }


async def export_europass(
    session: AsyncSession,
    principal: Principal,
    *,
    hmac_key: bytes,
    issuer: Issuer,
    language: Language,
    issuer_legal_id: str | None,
) -> dict[str, Any]:
    """The citizen's verified competences as an ELM v3 credential: a read of their passport,
    in their access log (``exportEuropass``)."""
    passport = await read_own_passport(
        session, principal, hmac_key, ACTIVE_ONLY, operation="exportEuropass"
    )
    claims = [claim for pc in passport.competences for claim in pc.claims]
    if passport.citizen_id is None or not claims:
        raise InvalidState(NOTHING_TO_EXPORT)
    holder_name = await export_name(session, passport.citizen_id) or principal.display_name
    numbers = await enterprise_numbers(session, claims)
    created = clock.now().replace(microsecond=0)
    return await asyncio.to_thread(
        europass_credential,
        issuer,
        claims,
        language=language,
        holder_name=holder_name,
        issuer_legal_id=issuer_legal_id,
        enterprise_numbers=numbers,
        created=created,
        export_id=uuid.uuid4(),
    )
