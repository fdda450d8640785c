"""GraphQL types that explain an answer: warning lights and their sources, whether forecasts
are loaded, why an occupation ranks where it does, and whether wants were applied.

Every sentence comes in the asked language (Dutch by default, or English) and says which
language it is in, as ESCO labels do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import strawberry

from service.career import check as career
from service.career import fit
from service.career import lights as domain
from service.career.signals import SignalStatus as SignalStatusView
from service.career.texts import Text
from service.schema.common import Language
from service.schema.enums import LightKind, LightSourceKind, RankFactorKind
from service.schema.matching.types import Light, OccupationSummary
from service.schema.taxonomy.types import Competence, LocalizedText, competence_type
from service.taxonomy.search import CompetenceRef


def localized_text(text: Text, lang: Language) -> LocalizedText:
    rendered, used = text.render(lang.value)
    return LocalizedText(text=rendered, language=used)


@strawberry.type(description="What a warning light rests on")
class LightSource:
    kind: LightSourceKind
    name: str = strawberry.field(
        description="SIGNAL: the source as the import names it; ESCO: the collection and ESCO "
        "version; PASSPORT: the dates of the passport's claims (`lastUsedOn`)"
    )
    published_on: dt.date | None
    region: str | None = strawberry.field(description="NUTS code the signal is for")
    horizon_year: int | None
    url: str | None


@strawberry.type(description="A warning light, or a good sign, with its reason and source")
class WarningLight:
    kind: LightKind
    color: Light = strawberry.field(description="GREEN: a good sign; AMBER: mind it; RED: a risk")
    occupation: OccupationSummary | None = strawberry.field(
        description="The occupation it is about, if any"
    )
    competences: list[Competence] = strawberry.field(description="The competences it is about")
    source: LightSource
    text: strawberry.Private[Text]

    @strawberry.field(description="Why, in the asked language; `language` says which")
    def reason(self, lang: Language = Language.NL) -> LocalizedText:
        return localized_text(self.text, lang)


def light_type(view: domain.Light) -> WarningLight:
    source = view.source
    return WarningLight(
        kind=LightKind(view.kind.value),
        color=Light(view.color.value),
        occupation=OccupationSummary.of(view.occupation) if view.occupation else None,
        competences=[competence_type(ref) for ref in view.competences],
        source=LightSource(
            kind=LightSourceKind(source.kind.value),
            name=source.name,
            published_on=source.published_on,
            region=source.region,
            horizon_year=source.horizon_year,
            url=source.url,
        ),
        text=view.text,
    )


@strawberry.type
class SignalSource:
    name: str
    published_on: dt.date = strawberry.field(description="Its latest signal's publication date")
    imported_at: dt.datetime
    signals: int


@strawberry.type(description="Which labour-market signals the lights could use")
class SignalStatus:
    forecasts_loaded: bool = strawberry.field(
        description="False: no signals are imported, so only ESCO and passport lights show"
    )
    sources: list[SignalSource]
    text: strawberry.Private[Text]

    @strawberry.field
    def note(self, lang: Language = Language.NL) -> LocalizedText:
        return localized_text(self.text, lang)


def signal_status_type(view: SignalStatusView) -> SignalStatus:
    return SignalStatus(
        forecasts_loaded=view.loaded,
        sources=[
            SignalSource(
                name=s.name,
                published_on=s.published_on,
                imported_at=s.imported_at,
                signals=s.signals,
            )
            for s in view.sources
        ],
        text=view.text,
    )


@strawberry.type(description="One part of an occupation's score, and why")
class RankReason:
    kind: RankFactorKind
    points: float = strawberry.field(description="What it adds to the score (FIT: the fit)")
    competences: list[Competence] = strawberry.field(description="The wanted competences it counts")
    text: strawberry.Private[Text]

    @strawberry.field
    def reason(self, lang: Language = Language.NL) -> LocalizedText:
        return localized_text(self.text, lang)


@strawberry.type(
    description="The score occupations rank by: the share of essential competences held, "
    "verified, moved by what the citizen wants (+0.05 per wanted competence asked, at most "
    "+0.15 for use-more and +0.15 for develop; -0.10 per essential rather-not, at most -0.30; "
    "+0.25 for a career goal)"
)
class Standing:
    score: float
    fit: float
    reasons: list[RankReason]


def standing_type(view: fit.Standing, refs: Mapping[int, CompetenceRef]) -> Standing:
    return Standing(
        score=round(view.score, 4),
        fit=round(view.fit, 4),
        reasons=[
            RankReason(
                kind=RankFactorKind(f.kind.value),
                points=round(f.points, 4),
                competences=[competence_type(refs[c]) for c in f.competence_ids if c in refs],
                text=f.text,
            )
            for f in view.factors
        ],
    )


@strawberry.type(description="Whether what the citizen wants was shown to you and applied")
class WantsNote:
    shown: bool
    applied: bool
    text: strawberry.Private[Text]

    @strawberry.field
    def note(self, lang: Language = Language.NL) -> LocalizedText:
        return localized_text(self.text, lang)


def wants_type(view: career.WantsNote) -> WantsNote:
    return WantsNote(shown=view.shown, applied=view.applied, text=view.text)
