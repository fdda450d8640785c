"""The CV attachment: an A4 PDF of the export, typeset by WeasyPrint, with a QR code to this
export's verification page and the signed credential attached as a file.

It shows exactly what the signed credential holds (grouped by ESCO reuse level), then the
citizen's self-declared competences apart, marked as such and outside the signature.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import segno
import weasyprint

from service.claims.views import ClaimView
from service.credentials.exports import SignedExport
from service.credentials.i18n import Language, competence_label, day, moment, text
from service.credentials.issuer import Issuer, export_code
from service.credentials.templates_render import render_page
from service.models.enums import ReuseLevel
from service.passports.service import PassportCompetence

ATTACHMENT_NAME = "competence-passport.credential.json"


def qr_data_uri(url: str) -> str:
    svg = segno.make(url, error="m").svg_inline(scale=4, border=2, dark="#0b3d5c")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@dataclass(frozen=True)
class _Voucher:
    organisation: str
    kind: str
    method: str
    acquired: str
    last_used: str


def _level(claim: ClaimView | None, lang: Language) -> str | None:
    if claim is None or claim.proficiency_level is None or claim.proficiency_scale is None:
        return None
    return f"{text(lang, f'scale.{claim.proficiency_scale}')} {claim.proficiency_level}"


def _groups(competences: Sequence[PassportCompetence], lang: Language) -> list[dict[str, object]]:
    order = [level.value for level in ReuseLevel] + [None]
    grouped: dict[str | None, list[dict[str, object]]] = {}
    for pc in competences:
        level = pc.competence.reuse_level if pc.competence.reuse_level in order else None
        grouped.setdefault(level, []).append(
            {
                "label": competence_label(pc.competence.preferred_labels, lang),
                "uri": pc.competence.uri,
                "level": _level(pc.highest_level, lang),
                "vouchers": [
                    _Voucher(
                        organisation=claim.issuer.name,
                        kind=text(lang, f"organisation.{claim.issuer.kind}"),
                        method=text(lang, f"assessment.{claim.assessment_method}"),
                        acquired=day(lang, claim.acquired_on),
                        last_used=day(lang, claim.most_recent_use),
                    )
                    for claim in pc.claims
                    if claim.issuer is not None
                ],
            }
        )
    return [
        {
            "title": text(lang, f"reuse.{level}" if level else "reuse.none"),
            "competences": sorted(grouped[level], key=lambda item: str(item["label"]).casefold()),
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
    organisations = {c.issuer.id for c in request.claims if c.issuer is not None}
    html = render_page(
        "cv.html",
        lang=lang.value,
        t=lambda key, **values: text(lang, key, **values),
        title=text(lang, "pdf.title"),
        issuer_name=issuer.name,
        holder=request.holder_name,
        generated=moment(lang, request.created),
        valid_until=day(lang, request.valid_until.date()),
        code=export_code(export.export_id),
        short_url=url,
        base_url=issuer.base_url,
        qr=qr_data_uri(url),
        verified_count=len(competences),
        organisation_count=len(organisations),
        shared=request.holder_name is None and export.passport.basis.value == "link",
        groups=_groups(competences, lang),
        self_declared=[
            {
                "label": competence_label(c.competence.preferred_labels, lang),
                "level": _level(c, lang),
                "acquired": day(lang, c.acquired_on),
                "last_used": day(lang, c.most_recent_use),
            }
            for c in export.passport.self_declared
        ],
    )
    attachment = weasyprint.Attachment(
        string=export.body.decode(),
        name=ATTACHMENT_NAME,
        description=text(lang, "pdf.attached"),
    )
    pdf: bytes = weasyprint.HTML(string=html).write_pdf(attachments=[attachment])
    return pdf
