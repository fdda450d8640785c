"""The CV attachment: an A4 PDF of the export, typeset by Typst, with a QR code to this
export's verification page and the signed credential attached as a file.

It shows exactly what the signed credential holds (grouped by ESCO reuse level, one row per
claim with its own issuer, level, method and dates), then the citizen's self-declared
competences apart, marked as such and outside the signature. The file is PDF/A-3a (the
credential its associated source file) and PDF/UA-1: Typst tags it and refuses to write
anything either standard forbids. Typst lays out a 200-claim passport in about a tenth of
the time HTML typesetting took, and the fonts ship with the package, so every PDF is the
same wherever it is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import segno
import typst

from service.claims.views import ClaimView
from service.credentials.exports import SignedExport
from service.credentials.i18n import (
    LOCALES,
    Language,
    day,
    label_in,
    level_text,
    moment,
    plural,
    text,
)
from service.credentials.issuer import Issuer, export_code
from service.models.enums import ReuseLevel
from service.passports.service import PassportCompetence

ATTACHMENT_NAME = "competence-passport.credential.json"
COLUMNS = ("verify.competence", "pdf.level", "pdf.vouched_by", "pdf.assessed")
DATES = ("pdf.acquired", "pdf.last_used")
TEXTS = {
    "footer": "pdf.footer",
    "subtitle": "pdf.subtitle",
    "holder": "pdf.holder",
    "generated": "pdf.generated",
    "valid_until": "pdf.valid_until",
    "code": "pdf.export_id",
    "verify_heading": "pdf.verify_heading",
    "verify_text": "pdf.verify_text",
    "attached": "pdf.attached",
    "shared": "pdf.shared",
    "section_verified": "pdf.section_verified",
    "section_self": "pdf.section_self",
    "self_note": "pdf.self_note",
    "empty": "pdf.empty",
    "foreign_note": "pdf.foreign_note",
    "esco": "pdf.esco",
}


@cache
def _template() -> Path:
    return Path(str(resources.files("service.credentials") / "templates" / "cv.typ"))


@cache
def _fonts() -> list[str]:
    return [str(resources.files("service.credentials") / "fonts")]


def qr_svg(url: str) -> bytes:
    svg: str = segno.make(url, error="m").svg_inline(scale=4, border=2, dark="#0b3d5c")
    return svg.encode()


@dataclass(frozen=True)
class _Claim:
    """One row: what one organisation said of the competence."""

    organisation: str
    kind: str
    level: str
    method: str
    acquired: str
    last_used: str


@dataclass(frozen=True)
class _Competence:
    label: str
    label_language: str | None  # set when ESCO has no label in the document's language
    claims: list[_Claim]


def _label(labels: dict[str, str], lang: Language) -> tuple[str, str | None]:
    found = label_in(labels, lang)
    return found.text, found.language if found.foreign_to(lang) else None


def _claim(claim: ClaimView, lang: Language) -> _Claim:
    assert claim.issuer is not None
    return _Claim(
        organisation=claim.issuer.name,
        kind=text(lang, f"organisation.{claim.issuer.kind}"),
        level=level_text(lang, claim.proficiency_scale, claim.proficiency_level)
        or text(lang, "pdf.no_level"),
        method=text(lang, f"assessment.{claim.assessment_method}"),
        acquired=day(lang, claim.acquired_on),
        last_used=day(lang, claim.most_recent_use),
    )


def _groups(competences: Sequence[PassportCompetence], lang: Language) -> list[dict[str, Any]]:
    order = [level.value for level in ReuseLevel] + [None]
    grouped: dict[str | None, list[_Competence]] = {}
    for pc in competences:
        level = pc.competence.reuse_level if pc.competence.reuse_level in order else None
        label, language = _label(pc.competence.preferred_labels, lang)
        claims = sorted(pc.claims, key=lambda c: c.acquired_on, reverse=True)
        grouped.setdefault(level, []).append(
            _Competence(label, language, [_claim(c, lang) for c in claims if c.issuer])
        )
    return [
        {
            "title": text(lang, f"reuse.{level}" if level else "reuse.none"),
            "competences": sorted(grouped[level], key=lambda item: item.label.casefold()),
        }
        for level in order
        if level in grouped
    ]


def render_cv(export: SignedExport, issuer: Issuer) -> bytes:
    """CPU-bound (layout): run it in a thread."""
    request = export.request
    lang = request.language
    url = issuer.verification_url(export.export_id)
    competences = export.passport.competences
    organisations = len({c.issuer.id for c in request.claims if c.issuer is not None})
    groups = _groups(competences, lang)
    self_declared = [
        {
            **dict(zip(("label", "label_language"), _label(labels, lang), strict=True)),
            "level": level_text(lang, c.proficiency_scale, c.proficiency_level)
            or text(lang, "pdf.no_level"),
            "acquired": day(lang, c.acquired_on),
            "last_used": day(lang, c.most_recent_use),
        }
        for c in export.passport.self_declared
        for labels in [c.competence.preferred_labels]
    ]
    foreign = any(item.label_language for group in groups for item in group["competences"]) or any(
        item["label_language"] for item in self_declared
    )
    heading = text(lang, "pdf.title")
    holder = request.holder_name
    data = {
        "lang": lang.value,
        "region": LOCALES[lang].split("_")[1],
        "title": f"{heading}: {holder}" if holder else heading,
        "heading": heading,
        "author": issuer.name,
        "description": text(lang, "pdf.subtitle"),
        "keywords": ["ESCO", "Open Badges 3.0", "CLR 2.0", "Verifiable Credential"],
        "texts": {
            **{name: text(lang, key) for name, key in TEXTS.items()},
            "columns": [text(lang, key) for key in (*COLUMNS, *DATES)],
            "self_columns": [text(lang, key) for key in (COLUMNS[0], COLUMNS[1], *DATES)],
        },
        "holder": holder or text(lang, "pdf.holder_unnamed"),
        "generated": moment(lang, request.created),
        "valid_until": day(lang, request.valid_until.date()),
        "code": export_code(export.export_id),
        "short_url": url,
        "qr_alt": f"QR: {url}",
        "summary": plural(
            lang,
            "pdf.summary",
            len(competences),
            organisations=plural(lang, "pdf.organisations", organisations),
        ),
        "shared": export.passport.basis.value == "link",
        "groups": [
            {"title": g["title"], "competences": [asdict(c) for c in g["competences"]]}
            for g in groups
        ],
        "self_declared": self_declared,
        "foreign": foreign,
        "foreign_tag": text(lang, "pdf.foreign"),
        "attachment": {"name": ATTACHMENT_NAME, "description": text(lang, "pdf.attached")},
    }
    pdf: bytes = typst.compile(
        str(_template()),
        format="pdf",
        sys_inputs={
            "data": orjson.dumps(data).decode(),
            "credential": export.body.decode(),
            "qr": qr_svg(url).decode(),
        },
        pdf_standards=["a-3a", "ua-1"],  # archivable, and accessible
        font_paths=_fonts(),
        ignore_system_fonts=True,
        timestamp=request.created,
    )
    return pdf
