"""Looking up ESCO concepts and searching them by label, in Dutch first and English second.

Search matches normalized labels (lower case, accents removed by PostgreSQL's unaccent) and
ranks exact > label prefix > word prefix > trigram similarity. The score is an integer so a
keyset cursor of (score, id) is exact.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

FALLBACK_LANGUAGE = "en"
SIMILARITY_THRESHOLD = 0.4
MAX_PAGE = 100


class InvalidCursor(ValueError):
    """A pagination cursor that this service did not hand out."""


@dataclass(frozen=True)
class CompetenceRef:
    id: int
    uri: str
    concept_type: str
    skill_type: str | None
    reuse_level: str | None
    preferred_labels: dict[str, str]
    descriptions: dict[str, str]


@dataclass(frozen=True)
class CompetenceHit:
    id: int
    uri: str
    concept_type: str
    skill_type: str | None
    reuse_level: str | None
    preferred_labels: dict[str, str]
    descriptions: dict[str, str]
    label: str
    label_lang: str
    matched_label: str | None
    score: int
    cursor: str


@dataclass(frozen=True)
class CompetencePage:
    items: list[CompetenceHit]
    has_next_page: bool
    end_cursor: str | None


@dataclass(frozen=True)
class OccupationRef:
    id: int
    uri: str
    code: str | None
    isco_group: str | None
    preferred_labels: dict[str, str]
    descriptions: dict[str, str]
    essential_ids: tuple[int, ...]
    optional_ids: tuple[int, ...]


def pick_label(labels: Mapping[str, str], lang: str) -> tuple[str, str]:
    """The label in ``lang``, else English, else any; with the language actually used."""
    for candidate in (lang, FALLBACK_LANGUAGE):
        if labels.get(candidate):
            return labels[candidate], candidate
    for candidate, value in sorted(labels.items()):
        if value:
            return value, candidate
    raise KeyError("no label")


def _encode_cursor(score: int, competence_id: int) -> str:
    return base64.urlsafe_b64encode(f"{score}:{competence_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        score, competence_id = raw.split(":")
        return int(score), int(competence_id)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise InvalidCursor("not a cursor of this search") from exc


_COLUMNS = (
    "c.id, c.uri, c.concept_type, c.skill_type, c.reuse_level, c.preferred_labels, c.descriptions"
)

_FILTERS = """
  AND (CAST(:concept_type AS text) IS NULL OR c.concept_type = :concept_type)
  AND (CAST(:skill_type AS text) IS NULL OR c.skill_type = :skill_type)
  AND (CAST(:reuse_level AS text) IS NULL OR c.reuse_level = :reuse_level)
  AND (CAST(:collection AS text) IS NULL OR EXISTS (
        SELECT 1 FROM competence_collections cc
        WHERE cc.competence_id = c.id AND cc.collection = :collection))
"""

# Candidates come from two index scans (prefix on the btree, fuzzy on the trigram GIN index);
# each candidate competence keeps its best-scoring label.
_SEARCH = f"""
WITH q AS (SELECT passport_normalize(:text) AS norm),
candidates AS (
  SELECT l.competence_id, l.label, l.lang,
         CASE WHEN l.norm = q.norm THEN 3000
              WHEN l.norm LIKE q.norm || '%' THEN 2000
              WHEN l.norm LIKE '% ' || q.norm || '%' THEN 1000
              ELSE 0 END
         + round(1000 * word_similarity(q.norm, l.norm))::int
         + CASE l.kind WHEN 'preferred' THEN 300 WHEN 'hidden' THEN -1000 ELSE 0 END
         - least(length(l.norm), 200) AS score
  FROM competence_labels l, q
  WHERE l.norm LIKE q.norm || '%' OR q.norm <% l.norm
),
best AS (
  SELECT DISTINCT ON (competence_id) competence_id, label, score
  FROM candidates ORDER BY competence_id, score DESC, (lang = :lang) DESC, label
)
SELECT {_COLUMNS}, b.label AS matched_label, b.score
FROM best b JOIN competences c ON c.id = b.competence_id
WHERE (CAST(:after_score AS int) IS NULL
       OR (b.score, -c.id) < (CAST(:after_score AS int), -CAST(:after_id AS int)))
{_FILTERS}
ORDER BY b.score DESC, c.id
LIMIT :limit
"""

_LIST = f"""
SELECT {_COLUMNS}, NULL AS matched_label, 0 AS score
FROM competences c
WHERE (CAST(:after_id AS int) IS NULL OR c.id > :after_id)
{_FILTERS}
ORDER BY c.id
LIMIT :limit
"""


async def search_competences(
    session: AsyncSession,
    *,
    text: str | None,
    lang: str = "nl",
    skill_type: str | None = None,
    reuse_level: str | None = None,
    collection: str | None = None,
    concept_type: str | None = "skill",
    first: int = 20,
    after: str | None = None,
) -> CompetencePage:
    limit = max(1, min(first, MAX_PAGE))
    after_score, after_id = _decode_cursor(after) if after else (None, None)
    query = (text or "").strip()
    params: dict[str, Any] = {
        "concept_type": concept_type,
        "skill_type": skill_type,
        "reuse_level": reuse_level,
        "collection": collection,
        "after_id": after_id,
        "limit": limit + 1,
        "lang": lang,
    }
    if query:
        # word_similarity's threshold for the <% operator is a session setting; scope it to
        # this transaction only.
        await session.execute(
            _sql("SELECT set_config('pg_trgm.word_similarity_threshold', :t, true)"),
            {"t": str(SIMILARITY_THRESHOLD)},
        )
        rows = (
            await session.execute(
                _sql(_SEARCH), {**params, "text": query, "after_score": after_score}
            )
        ).all()
    else:
        rows = (await session.execute(_sql(_LIST), params)).all()
    items = []
    for row in rows[:limit]:
        labels = row.preferred_labels or {}
        label, used = pick_label(labels, lang) if labels else (row.uri, "und")
        items.append(
            CompetenceHit(
                id=row.id,
                uri=row.uri,
                concept_type=row.concept_type,
                skill_type=row.skill_type,
                reuse_level=row.reuse_level,
                preferred_labels=labels,
                descriptions=row.descriptions or {},
                label=label,
                label_lang=used,
                matched_label=row.matched_label,
                score=row.score,
                cursor=_encode_cursor(row.score, row.id),
            )
        )
    return CompetencePage(
        items=items,
        has_next_page=len(rows) > limit,
        end_cursor=items[-1].cursor if items else None,
    )


def _sql(statement: str) -> Any:
    return text(statement)


def _ref(row: Any) -> CompetenceRef:
    return CompetenceRef(
        id=row.id,
        uri=row.uri,
        concept_type=row.concept_type,
        skill_type=row.skill_type,
        reuse_level=row.reuse_level,
        preferred_labels=row.preferred_labels or {},
        descriptions=row.descriptions or {},
    )


async def competences_by_uri(
    session: AsyncSession, uris: Sequence[str]
) -> dict[str, CompetenceRef]:
    rows = await session.execute(
        _sql(f"SELECT {_COLUMNS} FROM competences c WHERE c.uri = ANY(:uris)"),
        {"uris": list(uris)},
    )
    return {row.uri: _ref(row) for row in rows}


async def competences_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, CompetenceRef]:
    rows = await session.execute(
        _sql(f"SELECT {_COLUMNS} FROM competences c WHERE c.id = ANY(:ids)"), {"ids": list(ids)}
    )
    return {row.id: _ref(row) for row in rows}


async def occupation_by_uri(session: AsyncSession, uri: str) -> OccupationRef | None:
    row = (
        await session.execute(
            _sql(
                """
                SELECT o.id, o.uri, o.code, o.isco_group, o.preferred_labels, o.descriptions,
                       coalesce(array_agg(oc.competence_id ORDER BY oc.competence_id)
                                FILTER (WHERE oc.relation = 'essential'), '{}') AS essential,
                       coalesce(array_agg(oc.competence_id ORDER BY oc.competence_id)
                                FILTER (WHERE oc.relation = 'optional'), '{}') AS optional
                FROM occupations o
                LEFT JOIN occupation_competences oc ON oc.occupation_id = o.id
                WHERE o.uri = :uri
                GROUP BY o.id
                """
            ),
            {"uri": uri},
        )
    ).one_or_none()
    if row is None:
        return None
    return OccupationRef(
        id=row.id,
        uri=row.uri,
        code=row.code,
        isco_group=row.isco_group,
        preferred_labels=row.preferred_labels or {},
        descriptions=row.descriptions or {},
        essential_ids=tuple(row.essential),
        optional_ids=tuple(row.optional),
    )
