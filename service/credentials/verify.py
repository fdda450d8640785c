"""Verifying a credential: signature, key, validity period, revocation, claim by claim.

``check_credential`` needs no database: given a way to find keys (a JWK Set is enough) and,
optionally, status lists, anyone can run it. ``verify_online`` adds what only this service
knows: its current keys, its status lists, and what became of each claim since.

The input is whatever someone posted. Every problem becomes a reason in the report; nothing
here raises on a malformed credential.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.claims.views import ClaimView, load_claims
from service.credentials import integrity, status
from service.credentials.clr import credential_id, endorsement_credential_id
from service.credentials.exports import ExportRecord
from service.credentials.i18n import Language, competence_label, text
from service.credentials.issuer import Issuer
from service.credentials.keys import SigningKey
from service.models import Claim, ClaimEndorsement, CredentialExport
from service.models.enums import ClaimStatus

log = logging.getLogger(__name__)

ACCEPTED_TYPES = {
    "ClrCredential",
    "AchievementCredential",
    "OpenBadgeCredential",
    "EndorsementCredential",
}
MAX_NESTED = 2000
MAX_INDEX = 2**31  # positions and list numbers are PostgreSQL integers
MAX_DEPTH = 40  # a ClrCredential of this service nests about 10 levels
MAX_ALIKE = 3  # id-less objects with the same values in one list (3! orderings to try)


class Status(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    ERASED = "erased"
    WITHDRAWN = "withdrawn"  # the holder revoked the whole export
    UNKNOWN = "unknown"  # no status this service can vouch for


@dataclass
class CredentialCheck:
    credential_id: str | None
    types: list[str]
    name: str | None
    issuer_id: str | None
    issuer_name: str | None
    competence_uri: str | None = None
    level: str | None = None
    scale: str | None = None  # known for the service's own record of an export
    valid_from: str | None = None
    valid_until: str | None = None
    signature_valid: bool | None = False  # None: looked up by export id, no JSON to check
    issuer_key_known: bool = False
    expired: bool = False
    not_yet_valid: bool = False
    revoked: bool | None = None  # None: its status list could not be consulted
    status: Status = Status.UNKNOWN
    status_list: str | None = None
    status_index: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.signature_valid is not False
            and self.issuer_key_known
            and not self.expired
            and not self.not_yet_valid
            and self.revoked is False
            and self.status in (Status.ACTIVE, Status.SUPERSEDED)
        )


@dataclass
class Verification:
    credential: CredentialCheck
    claims: list[CredentialCheck]
    export_id: uuid.UUID | None = None
    matches_export: bool | None = None  # the exact JSON the export handed out

    @property
    def verified(self) -> bool:
        return self.credential.ok and all(claim.ok for claim in self.claims)


KeyLookup = Callable[[str, str | None], SigningKey | None]  # (verificationMethod, issuer id)
StatusLookup = Callable[[str, int], bool | None]  # (status list URL, index) -> bit


DIGITS = re.compile(r"[0-9]{1,10}")


def _digits(value: str) -> bool:
    """ASCII digits only: str.isdigit() accepts "²", which int() then refuses."""
    return DIGITS.fullmatch(value) is not None


def _shape_problem(value: Any, depth: int = 0) -> str | None:
    """Refuse, before any JSON-LD processing, the shapes that make RDF canonicalization
    explode (it has no work limit): caller-chosen blank-node ids and JSON-LD keywords, which
    can build graphs, and many indistinguishable nodes side by side, which it permutes."""
    if depth > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("@") and key != "@context":
                return f"the JSON-LD keyword {key} is not accepted here"
            if key != "@context":
                found = _shape_problem(item, depth + 1)
                if found:
                    return found
        return None
    if isinstance(value, list):
        alike: dict[str, int] = {}
        for item in value:
            if isinstance(item, dict) and "id" not in item:
                scalars = {k: v for k, v in item.items() if not isinstance(v, (dict, list))}
                key = repr(sorted(scalars.items(), key=lambda kv: kv[0]))
                alike[key] = alike.get(key, 0) + 1
                if alike[key] > MAX_ALIKE:
                    return "too many indistinguishable objects in one list"
            found = _shape_problem(item, depth + 1)
            if found:
                return found
        return None
    if isinstance(value, str) and value.startswith("_:"):
        return "blank node identifiers are not accepted"
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _types(document: Mapping[str, Any]) -> list[str]:
    value = document.get("type")
    if isinstance(value, str):
        return [value]
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []


def _issuer(document: Mapping[str, Any]) -> tuple[str | None, str | None]:
    issuer = document.get("issuer")
    if isinstance(issuer, str):
        return issuer, None
    if isinstance(issuer, dict):
        return _text(issuer.get("id")), _text(issuer.get("name"))
    return None, None


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _competence(document: Mapping[str, Any]) -> tuple[str | None, str | None]:
    subject = document.get("credentialSubject")
    if not isinstance(subject, dict):
        return None, None
    achievement = subject.get("achievement")
    uri = None
    if isinstance(achievement, dict) and isinstance(achievement.get("alignment"), list):
        for alignment in achievement["alignment"]:
            if isinstance(alignment, dict) and _text(alignment.get("targetUrl")):
                uri = alignment["targetUrl"]
                break
    level = None
    results = subject.get("result")
    if isinstance(results, list) and results and isinstance(results[0], dict):
        level = _text(results[0].get("value"))
    return uri, level


def check_credential(
    document: Any, keys: KeyLookup, now: datetime, statuses: StatusLookup | None = None
) -> CredentialCheck:
    """One credential on its own (a CLR's nested credentials are checked by ``check``)."""
    if not isinstance(document, dict):
        return CredentialCheck(None, [], None, None, None, errors=["not a JSON object"])
    issuer_id, issuer_name = _issuer(document)
    uri, level = _competence(document)
    check = CredentialCheck(
        credential_id=_text(document.get("id")),
        types=_types(document),
        name=_text(document.get("name")),
        issuer_id=issuer_id,
        issuer_name=issuer_name,
        competence_uri=uri,
        level=level,
        valid_from=_text(document.get("validFrom")),
        valid_until=_text(document.get("validUntil")),
    )
    if "VerifiableCredential" not in check.types or not ACCEPTED_TYPES & set(check.types):
        check.errors.append("not a ClrCredential, AchievementCredential or EndorsementCredential")
    proof = integrity.single_proof(document)
    method = _text(proof.get("verificationMethod")) if proof is not None else None
    key = keys(method, issuer_id) if method else None
    check.issuer_key_known = key is not None
    if key is None:
        check.errors.append("the proof's key is not one of the issuer's published keys")
    try:
        result = integrity.verify(document, lambda _m: key.public_key if key else None)
    except Exception as exc:  # untrusted input into a third-party JSON-LD processor
        # The type only: the message may quote the credential, which names a person.
        log.info("credential could not be processed as JSON-LD: %s", type(exc).__name__)
        result = integrity.ProofCheck(False, method, "not valid JSON-LD")
    check.signature_valid = result.valid
    if not result.valid and key is not None and result.error:
        check.errors.append(result.error)
    valid_from, valid_until = _instant(check.valid_from), _instant(check.valid_until)
    if valid_from is None:
        check.errors.append("validFrom is missing or not a date-time with a time zone")
    elif valid_from > now:
        check.not_yet_valid = True
        check.errors.append("not valid yet")
    if check.valid_until is not None and valid_until is None:
        check.errors.append("validUntil is not a date-time with a time zone")
    elif valid_until is not None and valid_until < now:
        check.expired = True
        check.errors.append("expired")
    _status_entry(check, document.get("credentialStatus"), statuses)
    return check


def _status_entry(check: CredentialCheck, entry: Any, statuses: StatusLookup | None) -> None:
    if not isinstance(entry, dict) or entry.get("type") != "BitstringStatusListEntry":
        check.errors.append("no BitstringStatusListEntry")
        return
    url, index = _text(entry.get("statusListCredential")), _text(entry.get("statusListIndex"))
    if (
        url is None
        or index is None
        or not _digits(index)
        or entry.get("statusPurpose") != ("revocation")
    ):
        check.errors.append("the status entry is incomplete")
        return
    if len(index) > 10 or int(index) >= MAX_INDEX:
        check.errors.append("statusListIndex is out of range")
        return
    check.status_list, check.status_index = url, int(index)
    bit = statuses(url, int(index)) if statuses is not None else None
    check.revoked = bit
    if bit:
        check.status = Status.REVOKED
        check.errors.append("revoked")
    elif bit is False:
        check.status = Status.ACTIVE


def check(
    document: Any, keys: KeyLookup, now: datetime, statuses: StatusLookup | None = None
) -> Verification:
    """A ClrCredential and each credential in it, or a single credential."""
    problem = _shape_problem(document)
    if problem is not None:
        refused = CredentialCheck(None, [], None, None, None, errors=[problem])
        return Verification(refused, [])
    outer = check_credential(document, keys, now, statuses)
    nested: list[CredentialCheck] = []
    if isinstance(document, dict) and "ClrCredential" in outer.types:
        subject = document.get("credentialSubject")
        inner = subject.get("verifiableCredential") if isinstance(subject, dict) else None
        items = inner if isinstance(inner, list) else [inner] if isinstance(inner, dict) else []
        if len(items) > MAX_NESTED:
            outer.errors.append(f"more than {MAX_NESTED} nested credentials")
            items = []
        nested = [check_credential(item, keys, now, statuses) for item in items]
    return Verification(outer, nested)


def issuer_keys(issuer: Issuer) -> KeyLookup:
    """This service's keys, for methods under its DIDs whose DID is the credential's issuer."""

    def lookup(method: str, issuer_id: str | None) -> SigningKey | None:
        did, _, kid = method.partition("#")
        if not kid or did != issuer_id or issuer.owns(did) is False:
            return None
        return issuer.keys.get(kid)

    return lookup


async def verify_online(
    session: AsyncSession, issuer: Issuer, document: Any, now: datetime
) -> Verification:
    """``check`` with this service's keys and status lists, then each claim's fate since."""
    prefix = issuer.status_list_url(0)[:-1]
    wanted: set[tuple[int, int]] = set()

    def collect(url: str, index: int) -> bool | None:
        suffix = url[len(prefix) :] if url.startswith(prefix) else ""
        if _digits(suffix) and int(suffix) < MAX_INDEX:
            wanted.add((int(suffix), index))
        return None

    # CPU-bound (canonicalization): off the event loop, so other requests go on meanwhile.
    verification = await asyncio.to_thread(check, document, issuer_keys(issuer), now, collect)
    found = await status.holders(session, wanted)
    pairs = [(h.citizen_id, h.claim_id) for h in found.values() if h.claim_id is not None]
    endorsed = [
        (h.citizen_id, h.endorsement_id) for h in found.values() if h.endorsement_id is not None
    ]
    revoked_endorsements = (
        {
            endorsement_id: revoked_at
            for endorsement_id, revoked_at in await session.execute(
                select(ClaimEndorsement.endorsement_id, ClaimEndorsement.revoked_at).where(
                    tuple_(ClaimEndorsement.citizen_id, ClaimEndorsement.endorsement_id).in_(
                        endorsed
                    )
                )
            )
        }
        if endorsed
        else {}
    )
    claims = (
        {
            c.claim_id: c
            for c in await load_claims(session, tuple_(Claim.citizen_id, Claim.claim_id).in_(pairs))
        }
        if pairs
        else {}
    )
    for item in [verification.credential, *verification.claims]:
        _settle(item, found, claims, prefix, revoked_endorsements)
    export_id = _export_id(verification.credential.credential_id)
    if export_id is not None:
        exists = await session.scalar(
            select(CredentialExport.id).where(CredentialExport.id == export_id)
        )
        verification.export_id = exists
    return verification


def _settle(
    item: CredentialCheck,
    found: Mapping[tuple[int, int], status.Holder],
    claims: Mapping[uuid.UUID, ClaimView],
    prefix: str,
    endorsements: Mapping[uuid.UUID, datetime | None],
) -> None:
    if item.status_list is None or item.status_index is None:
        return
    if not item.signature_valid:  # what became of a claim is told only about genuine copies
        return
    suffix = item.status_list[len(prefix) :] if item.status_list.startswith(prefix) else ""
    holder = found.get((int(suffix), item.status_index)) if _digits(suffix) else None
    if holder is None:
        item.errors.append("the status entry is not one this service issued")
        return
    if holder.withdrawn:
        item.revoked, item.status = True, Status.ERASED
        item.errors.append("erased at the holder's request")
        return
    if holder.export_revoked:
        item.revoked, item.status = True, Status.WITHDRAWN
        item.errors.append("the holder withdrew this export")
        return
    if holder.endorsement_id is not None:
        if holder.endorsement_id not in endorsements:
            item.revoked, item.status = True, Status.ERASED
        elif endorsements[holder.endorsement_id] is not None:
            item.revoked, item.status = True, Status.REVOKED
            item.errors.append("revoked by its endorser")
        else:
            item.revoked, item.status = False, Status.ACTIVE
        return
    if holder.claim_id is None:  # an export's own position
        item.revoked, item.status = False, Status.ACTIVE
        return
    claim = claims.get(holder.claim_id)
    if claim is None:
        item.revoked, item.status = True, Status.ERASED
        return
    item.revoked = claim.status is ClaimStatus.REVOKED
    item.status = Status(claim.status.value)
    if item.revoked:
        item.errors.append("revoked")


def _export_id(credential_id: str | None) -> uuid.UUID | None:
    if credential_id is None or not credential_id.startswith("urn:uuid:"):
        return None
    try:
        return uuid.UUID(credential_id[len("urn:uuid:") :])
    except ValueError:
        return None


def export_verification(
    record: ExportRecord, issuer: Issuer, now: datetime, language: Language
) -> Verification:
    """What the verification page shows for an export id: the service's own record of what it
    signed, and what became of each claim since."""
    export = record.export
    outer = CredentialCheck(
        credential_id=f"urn:uuid:{export.id}",
        types=["VerifiableCredential", "ClrCredential"],
        name=None,
        issuer_id=issuer.did,
        issuer_name=issuer.name,
        valid_from=integrity.timestamp(export.created_at),
        valid_until=integrity.timestamp(export.valid_until),
        signature_valid=None,
        issuer_key_known=issuer.keys.get(export.key_id) is not None,
        expired=export.valid_until < now,
        revoked=record.revoked_at is not None,
        status=Status.WITHDRAWN if record.revoked_at is not None else Status.ACTIVE,
    )
    if record.revoked_at is not None:
        outer.errors.append("the holder withdrew this export")
    if not outer.issuer_key_known:
        outer.errors.append("the key that signed this export is no longer published")
    if outer.expired:
        outer.errors.append("expired")
    held = {claim.claim_id: claim for claim in record.claims}
    claims = []
    for claim_id in record.claim_ids:
        claim = held.get(claim_id)
        if claim is None:
            claims.append(
                CredentialCheck(
                    None,
                    [],
                    None,
                    None,
                    None,
                    signature_valid=None,
                    issuer_key_known=True,
                    revoked=True,
                    status=Status.ERASED,
                )
            )
            continue
        assert claim.issuer is not None
        item = CredentialCheck(
            credential_id=credential_id(export.id, claim.claim_id),
            types=["VerifiableCredential", "AchievementCredential"],
            name=competence_label(claim.competence.preferred_labels, language),
            issuer_id=issuer.organisation_did(claim.issuer.id),
            issuer_name=claim.issuer.name,
            competence_uri=claim.competence.uri,
            level=claim.proficiency_level,
            scale=claim.proficiency_scale,
            valid_from=outer.valid_from,
            signature_valid=None,
            issuer_key_known=outer.issuer_key_known,
            revoked=outer.revoked or claim.status is ClaimStatus.REVOKED,
            status=Status.WITHDRAWN if outer.revoked else Status(claim.status.value),
        )
        if item.status is Status.EXPIRED:
            item.expired = True
        claims.append(item)
    claims += _endorsement_checks(record, issuer, outer, language)
    return Verification(outer, claims, export_id=export.id, matches_export=None)


def _endorsement_checks(
    record: ExportRecord, issuer: Issuer, outer: CredentialCheck, language: Language
) -> list[CredentialCheck]:
    """The export's EndorsementCredentials as the service recorded them, and their fate:
    revoked by the endorser, or gone with an erased citizen."""
    given = {e.endorsement_id: (claim, e) for claim in record.claims for e in claim.endorsements}
    checks = []
    for endorsement_id in record.endorsement_ids:
        found = given.get(endorsement_id)
        if found is None:
            checks.append(
                CredentialCheck(
                    None,
                    ["VerifiableCredential", "EndorsementCredential"],
                    None,
                    None,
                    None,
                    signature_valid=None,
                    issuer_key_known=True,
                    revoked=True,
                    status=Status.ERASED,
                )
            )
            continue
        claim, endorsement = found
        revoked = endorsement.revoked_at is not None
        label = competence_label(claim.competence.preferred_labels, language)
        checks.append(
            CredentialCheck(
                credential_id=endorsement_credential_id(record.export.id, endorsement_id),
                types=["VerifiableCredential", "EndorsementCredential"],
                name=text(language, "credential.endorsement", competence=label),
                issuer_id=issuer.organisation_did(endorsement.endorser.id),
                issuer_name=endorsement.endorser.name,
                competence_uri=claim.competence.uri,
                valid_from=outer.valid_from,
                signature_valid=None,
                issuer_key_known=outer.issuer_key_known,
                revoked=outer.revoked or revoked,
                status=Status.WITHDRAWN
                if outer.revoked
                else Status.REVOKED
                if revoked
                else Status.ACTIVE,
            )
        )
    return checks
