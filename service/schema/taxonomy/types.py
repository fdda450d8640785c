"""ESCO concepts as GraphQL types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import strawberry

from service.schema.common import Language, PageInfo, by_value
from service.schema.enums import ReuseLevel, SkillType
from service.taxonomy.search import CompetenceRef, pick_label


@strawberry.type(description="A localized text and the language it is actually in.")
class LocalizedText:
    text: str
    language: str


def localized(values: Mapping[str, str], lang: Language) -> LocalizedText | None:
    if not values:
        return None
    text, used = pick_label(values, lang.value)
    return LocalizedText(text=text, language=used)


LANG_DESCRIPTION = (
    "Default: the lang of the query that found it (competenceCheck, competences), else NL"
)


@strawberry.type
class Labelled:
    """An ESCO concept's URI and its texts, in the asked language or English."""

    uri: str
    preferred_labels: strawberry.Private[Mapping[str, str]]
    descriptions: strawberry.Private[Mapping[str, str]]
    # What the enclosing query asked for, so `competenceCheck(lang: EN)` answers in English
    # down to every label without each one being asked again.
    lang: strawberry.Private[Language] = Language.NL

    @strawberry.field
    def label(
        self, lang: Annotated[Language | None, strawberry.argument(LANG_DESCRIPTION)] = None
    ) -> LocalizedText:
        found = localized(self.preferred_labels, lang or self.lang)
        return found or LocalizedText(text=self.uri, language="und")

    @strawberry.field
    def description(
        self, lang: Annotated[Language | None, strawberry.argument(LANG_DESCRIPTION)] = None
    ) -> LocalizedText | None:
        return localized(self.descriptions, lang or self.lang)


@strawberry.type(description="An ESCO skill or knowledge concept.")
class Competence(Labelled):
    skill_type: SkillType | None
    reuse_level: ReuseLevel | None


_skill_type = by_value(SkillType)
_reuse_level = by_value(ReuseLevel)


def competence_type(ref: CompetenceRef, lang: Language = Language.NL) -> Competence:
    return Competence(
        uri=ref.uri,
        skill_type=_skill_type(ref.skill_type) if ref.skill_type else None,
        reuse_level=_reuse_level(ref.reuse_level) if ref.reuse_level else None,
        preferred_labels=ref.preferred_labels,
        descriptions=ref.descriptions,
        lang=lang,
    )


@strawberry.type
class CompetenceEdge:
    cursor: str
    node: Competence
    matched_label: str | None
    score: int


@strawberry.type
class CompetenceConnection:
    edges: list[CompetenceEdge]
    page_info: PageInfo


@strawberry.type(description="An ESCO occupation with the competences it asks for.")
class Occupation(Labelled):
    isco_group: str | None
    essential: list[Competence]
    optional: list[Competence]
