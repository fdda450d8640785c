"""Taxonomy queries: competence search with keyset pagination, single concepts, occupations."""

from __future__ import annotations

from typing import Annotated

import strawberry

from service.errors import ValidationFailed
from service.schema.common import Language, PageInfo, clamp_first
from service.schema.context import Info
from service.schema.enums import ReuseLevel, SkillCollection, SkillType
from service.schema.taxonomy.types import (
    Competence,
    CompetenceConnection,
    CompetenceEdge,
    Occupation,
    competence_type,
)
from service.taxonomy import search


@strawberry.type
class TaxonomyQueries:
    @strawberry.field(
        description="Search ESCO competences by Dutch or English label: case- and accent-"
        "insensitive, prefix and typo-tolerant; without search, all in id order."
    )
    async def competences(
        self,
        info: Info,
        search_text: Annotated[str | None, strawberry.argument(name="search")] = None,
        lang: Language = Language.NL,
        skill_type: SkillType | None = None,
        reuse_level: ReuseLevel | None = None,
        collection: SkillCollection | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> CompetenceConnection:
        ctx = info.context
        try:
            page = await search.search_competences(
                ctx.session,
                text=search_text,
                lang=lang.value,
                skill_type=skill_type.value if skill_type else None,
                reuse_level=reuse_level.value if reuse_level else None,
                collection=collection.value if collection else None,
                first=clamp_first(first, ctx.settings.max_page_size),
                after=after,
            )
        except search.InvalidCursor:
            raise ValidationFailed.one("after", "not a valid cursor", "invalid_cursor") from None
        except search.InvalidSearch as exc:
            raise ValidationFailed.one("search", str(exc)) from None
        edges = [
            CompetenceEdge(
                cursor=hit.cursor,
                matched_label=hit.matched_label,
                score=hit.score,
                node=competence_type(hit.competence, lang),
            )
            for hit in page.items
        ]
        return CompetenceConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field(description="One ESCO competence by URI")
    async def competence(self, info: Info, uri: str) -> Competence | None:
        found = (await search.competences_by_uri(info.context.session, [uri])).get(uri)
        if found is None:
            return None
        return competence_type(found)

    @strawberry.field(description="One ESCO occupation with its essential and optional competences")
    async def occupation(self, info: Info, uri: str) -> Occupation | None:
        session = info.context.session
        found = await search.occupation_by_uri(session, uri)
        if found is None:
            return None
        refs = await search.competences_by_id(session, [*found.essential_ids, *found.optional_ids])

        def many(ids: list[int] | tuple[int, ...]) -> list[Competence]:
            return [competence_type(refs[i]) for i in ids if i in refs]

        return Occupation(
            uri=found.uri,
            isco_group=found.isco_group,
            preferred_labels=found.preferred_labels,
            descriptions=found.descriptions,
            essential=many(found.essential_ids),
            optional=many(found.optional_ids),
        )
