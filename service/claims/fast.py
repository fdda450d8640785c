"""Reading bulk claim rows fast: msgspec structs, checked by the rules of ``rules.py``.

The pydantic models in ``rules.py`` are the rules of a claim's input; reading a row through
them costs about 70 µs, most of an upload's time. Here msgspec decodes a row straight from its
NDJSON bytes (or a CSV row's cells) into structs and the same rules are applied from the same
places: the text rules (``TextRule``: lengths and patterns), the plain-text, one-line and
meaningful checks of ``service.validation``, the INSZ check, the URL type, the date bounds,
the scales and their levels. The fast reader only ever *accepts*: any row it does not accept
whole (a refusal, or a spelling it does not take, such as snake_case keys, values with
surrounding blanks, or a Windows line end in a text) is read again by the pydantic models,
which accept it or say why not in the very words they always did. So a row's outcome never
depends on which reader ran; ``tests/test_fast_rows.py`` checks on generated rows that
whatever the fast reader accepts, the models accept with the same values and digest.

The same checks read a row given as a mapping (a CSV row's cells, ``issueClaims``' inputs):
``fast_mapping``. ``Checked`` is a row that passed, in the form the bulk loader writes, from
either reader.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType
from pydantic import TypeAdapter

from service import canonical
from service.claims.rules import (
    CONCEPT_URI,
    CONTEXT,
    EVIDENCE_DIGEST,
    EXTERNAL_REF,
    LEVEL,
    MAX_EVIDENCE,
    SCALE_LEVELS,
    IssueClaimInput,
    WebUrl,
    level_rank,
    not_future,
)
from service.identity.numbers import InvalidNumber, normalize_insz
from service.models.enums import AssessmentMethod, EvidenceKind, LearningContext, ProficiencyScale
from service.strict_json import written_keys
from service.validation import NAME, is_plain_text, meaningful, single_line


class Checked(msgspec.Struct, frozen=True):
    """A claim row that meets the rules, as the bulk loader needs it. A struct, not a frozen
    dataclass: one is made per uploaded row, and a struct is made some 15 times faster."""

    insz: str  # normalized
    competence_uri: str
    external_ref: str
    issuer_role: str | None
    assessment_method: str
    learning_context: str
    proficiency_scale: str | None
    proficiency_level: str | None
    proficiency_rank: int | None
    context: str | None
    evidence: list[dict[str, Any]]  # as stored: None fields left out
    acquired_on: date
    last_used_on: date | None
    valid_until: date | None
    body: dict[str, Any]  # what claim_digest hashes, but the citizen and supersedes

    def digest(self, citizen_id: uuid.UUID) -> bytes:
        """``service.claims.service.claim_digest`` of this row, not superseding anything."""
        body = {**self.body, "citizen": str(citizen_id), "supersedes": None}
        return hashlib.sha256(canonical.dumps_plain(body)).digest()  # strings and None only

    def claim_row(
        self,
        *,
        organisation_id: uuid.UUID,
        client_pk: uuid.UUID | None,
        citizen_id: uuid.UUID,
        claim_id: uuid.UUID,
        competence_id: int,
        recorded_at: datetime,
    ) -> dict[str, Any]:
        """``service.claims.service.claim_row`` of this row (a test holds them equal), its
        keys in the order of the table's columns (the loader copies its values as they are)."""
        return {
            "citizen_id": citizen_id,
            "claim_id": claim_id,
            "organisation_id": organisation_id,
            "client_id": client_pk,
            "issuer_role": self.issuer_role,
            "competence_id": competence_id,
            "proficiency_scale": self.proficiency_scale,
            "proficiency_level": self.proficiency_level,
            "proficiency_rank": self.proficiency_rank,
            "context": self.context,
            "assessment_method": self.assessment_method,
            "learning_context": self.learning_context,
            "evidence": self.evidence,
            "acquired_on": self.acquired_on,
            "last_used_on": self.last_used_on,
            "valid_until": self.valid_until,
            "recorded_at": recorded_at,
            "external_ref": self.external_ref,
            "supersedes_claim_id": None,
        }


def checked(spec: IssueClaimInput) -> Checked:
    """A row the pydantic models read."""
    proficiency = spec.proficiency
    return Checked(
        insz=spec.insz,
        competence_uri=spec.competence_uri,
        external_ref=spec.external_ref,
        issuer_role=spec.issuer_role,
        assessment_method=spec.assessment_method.value,
        learning_context=spec.learning_context.value,
        proficiency_scale=proficiency.scale.value if proficiency else None,
        proficiency_level=proficiency.level if proficiency else None,
        proficiency_rank=proficiency.rank if proficiency else None,
        context=spec.context,
        evidence=[item.model_dump(mode="json", exclude_none=True) for item in spec.evidence],
        acquired_on=spec.acquired_on,
        last_used_on=spec.last_used_on,
        valid_until=spec.valid_until,
        body=spec.model_dump(mode="json", exclude={"insz"}),
    )


# The structs take what partners send: camelCase keys, as in GraphQL. UNSET tells a key
# given as null from one not given, so the keys read can be counted (a repeated key is the
# slow reader's to refuse).
class _Proficiency(msgspec.Struct, forbid_unknown_fields=True):
    scale: str
    level: str


class _Evidence(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    kind: str
    title: str
    url: str | UnsetType | None = UNSET
    digest: str | UnsetType | None = UNSET
    issued_on: date | UnsetType | None = UNSET


class _Row(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    insz: str
    competence_uri: str
    external_ref: str
    assessment_method: str
    learning_context: str
    acquired_on: date
    last_used_on: date | UnsetType | None = UNSET
    valid_until: date | UnsetType | None = UNSET
    issuer_role: str | UnsetType | None = UNSET
    context: str | UnsetType | None = UNSET
    proficiency: _Proficiency | UnsetType | None = UNSET
    evidence: list[_Evidence] | UnsetType = UNSET


_REQUIRED_KEYS = 6
_DECODER = msgspec.json.Decoder(_Row)
_URL = TypeAdapter(WebUrl)
_METHODS = frozenset(m.value for m in AssessmentMethod) - {AssessmentMethod.SELF_ASSESSMENT.value}
_CONTEXTS = frozenset(c.value for c in LearningContext)
_KINDS = frozenset(k.value for k in EvidenceKind)


class _NotFast(Exception):
    """The fast reader does not accept this row; the models will read it."""


def _text(value: str) -> str:
    """Plain text as the models keep it, refusing what they would change (surrounding blanks
    they strip, Windows line ends they rewrite)."""
    if not value or value[0].isspace() or value[-1].isspace() or "\r" in value:
        if value == "":
            return value
        raise _NotFast
    if not is_plain_text(value):
        raise _NotFast
    return value


def _name(value: str) -> str:
    value = _text(value)
    if not NAME.holds(value):
        raise _NotFast
    try:
        return meaningful(single_line(value))
    except ValueError:
        raise _NotFast from None


def _date(value: date) -> date:
    try:
        not_future(value)
    except ValueError:
        raise _NotFast from None
    return value


@lru_cache(maxsize=4096)
def _web_url(value: str) -> str | None:
    """The URL as the models keep it, or None if they refuse it. Cached: an upload's
    evidence tends to name the same few pages."""
    try:
        return str(_URL.validate_python(value))
    except ValueError:
        return None


def _optional(value: Any) -> Any:
    return None if value is UNSET else value


def _evidence(item: _Evidence) -> tuple[dict[str, Any], dict[str, Any]]:
    """The item as stored (None left out) and as digested (every field)."""
    kind = item.kind.lower()
    if kind not in _KINDS:
        raise _NotFast
    url = _optional(item.url)
    if url is not None:
        url = _web_url(url)
        if url is None:
            raise _NotFast
    digest = _optional(item.digest)
    if digest is not None and not EVIDENCE_DIGEST.holds(digest):
        raise _NotFast
    if url is None and digest is None:
        raise _NotFast
    issued = _optional(item.issued_on)
    full = {
        "kind": kind,
        "title": _name(item.title),
        "url": url,
        "digest": digest,
        "issued_on": _date(issued).isoformat() if issued is not None else None,
    }
    return {k: v for k, v in full.items() if v is not None}, full


def _checked(row: _Row) -> Checked:
    try:
        insz = normalize_insz(row.insz) if row.insz.isdigit() else ""
    except InvalidNumber:
        raise _NotFast from None
    if insz != row.insz:
        raise _NotFast
    if not CONCEPT_URI.holds(row.competence_uri) or not EXTERNAL_REF.holds(row.external_ref):
        raise _NotFast
    method, learning = row.assessment_method.lower(), row.learning_context.lower()
    if method not in _METHODS or learning not in _CONTEXTS:
        raise _NotFast
    acquired = _date(row.acquired_on)
    last_used, valid_until = _optional(row.last_used_on), _optional(row.valid_until)
    if last_used is not None and (_date(last_used) < acquired):
        raise _NotFast
    if valid_until is not None and valid_until < acquired:
        raise _NotFast
    role = _optional(row.issuer_role)
    role = _name(role) if role is not None else None
    context = _optional(row.context)
    if context is not None and not CONTEXT.holds(_text(context)):
        raise _NotFast
    scale = level = rank = proficiency = None
    if (given := _optional(row.proficiency)) is not None:
        scale = ProficiencyScale(given.scale.lower()) if given.scale.lower() in _SCALES else None
        if scale is None or given.level != given.level.strip() or not LEVEL.holds(given.level):
            raise _NotFast
        levels = SCALE_LEVELS[scale]
        level = given.level.upper() if scale is ProficiencyScale.CEFR else given.level.lower()
        if level not in levels:
            raise _NotFast
        rank = level_rank(scale, level)
        proficiency = {"scale": scale.value, "level": level}
    items = _optional(row.evidence) or []
    if len(items) > MAX_EVIDENCE:
        raise _NotFast
    stored, digested = [], []
    for item in items:
        kept, full = _evidence(item)
        stored.append(kept)
        digested.append(full)
    body = {
        "competence_uri": row.competence_uri,
        "proficiency": proficiency,
        "context": context,
        "learning_context": learning,
        "evidence": digested,
        "acquired_on": acquired.isoformat(),
        "last_used_on": last_used.isoformat() if last_used is not None else None,
        "external_ref": row.external_ref,
        "issuer_role": role,
        "assessment_method": method,
        "valid_until": valid_until.isoformat() if valid_until is not None else None,
    }
    return Checked(
        insz=insz,
        competence_uri=row.competence_uri,
        external_ref=row.external_ref,
        issuer_role=role,
        assessment_method=method,
        learning_context=learning,
        proficiency_scale=scale.value if scale else None,
        proficiency_level=level,
        proficiency_rank=rank,
        context=context,
        evidence=stored,
        acquired_on=acquired,
        last_used_on=last_used,
        valid_until=valid_until,
        body=body,
    )


_SCALES = frozenset(s.value for s in ProficiencyScale)


def _keys(row: _Row) -> int:
    """The object keys the row was read from."""
    count = (  # spelled out rather than a generator over the names: this runs for every row
        _REQUIRED_KEYS
        + (row.last_used_on is not UNSET)
        + (row.valid_until is not UNSET)
        + (row.issuer_role is not UNSET)
        + (row.context is not UNSET)
        + (row.proficiency is not UNSET)
        + (row.evidence is not UNSET)
    )
    if isinstance(row.proficiency, _Proficiency):
        count += 2
    if isinstance(row.evidence, list):
        for item in row.evidence:
            count += (
                2
                + (item.url is not UNSET)
                + (item.digest is not UNSET)
                + (item.issued_on is not UNSET)
            )
    return count


_SPACED_COLON = re.compile(rb'"\s+:')


def _keys_once(line: bytes, read: int) -> bool:
    """No key is written twice. Quick: every key written ends in '":' (when no blank comes
    before a colon), so that pair occurs at least as often as keys are written, and more
    often only when a text holds it; then the texts are collapsed and the keys counted."""
    if line.count(b'":') == read and _SPACED_COLON.search(line) is None:
        return True
    return written_keys(line) == read


def fast_row(line: bytes) -> Checked | None:
    """An NDJSON line the fast reader accepts, or None: read it with the models."""
    try:
        row = _DECODER.decode(line)
        if not _keys_once(line, _keys(row)):
            return None  # perhaps a key given twice: the slow reader tells
        return _checked(row)
    except (msgspec.ValidationError, msgspec.DecodeError, _NotFast):
        return None


# The domain's names (snake_case) of the structs' keys: a mapping with any other key is the
# models' to read.
_CAMEL = {f.name: f.encode_name for f in msgspec.structs.fields(_Row)}
_EVIDENCE_CAMEL = {f.name: f.encode_name for f in msgspec.structs.fields(_Evidence)}


def fast_mapping(row: Mapping[str, Any]) -> Checked | None:
    """A row given as the domain's mapping (a CSV row's cells, ``issueClaims``' inputs) that
    the fast reader accepts, or None: read it with the models."""
    try:
        named = {_CAMEL[key]: value for key, value in row.items()}
        evidence = named.get("evidence")
        if isinstance(evidence, list):
            named["evidence"] = [
                {_EVIDENCE_CAMEL[k]: v for k, v in item.items()} if isinstance(item, dict) else item
                for item in evidence
            ]
        return _checked(msgspec.convert(named, _Row))
    except (KeyError, msgspec.ValidationError, _NotFast):
        return None
