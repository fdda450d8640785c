"""Looking up ESCO concepts and searching them by label, in Dutch first and English second.

Search matches normalized labels (lower case, accents removed by PostgreSQL's unaccent) and
ranks exact > label prefix > word prefix > trigram similarity. The score is an integer so a
keyset cursor of (score, id) is exact.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.validation import is_plain_text

FALLBACK_LANGUAGE = "en"
SIMILARITY_THRESHOLD = 0.4  # fixed in passport_similar_competence_labels (0001_taxonomy)
MAX_PAGE = 100
MAX_ID = 2**31 - 1  # competences.id is an integer


MAX_SEARCH_LENGTH = 200


class InvalidCursor(ValueError):
    """A pagination cursor that this service did not hand out."""


class InvalidSearch(ValueError):
    """Search text no label could match: too long, or holding control characters."""


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
    competence: CompetenceRef
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


_CURSOR = re.compile(r"(0|[1-9][0-9]{0,8}):([1-9][0-9]{0,9})")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    """Strict, so that a tampered cursor is a clear client error and never a database error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise InvalidCursor("not a cursor of this search") from exc
    match = _CURSOR.fullmatch(raw)
    if match is None or int(match[2]) > MAX_ID:
        raise InvalidCursor("not a cursor of this search")
    return int(match[1]), int(match[2])


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

# Scores: tier * TIER + a bonus below TIER, so a whole tier outranks the next one. Tiers:
# 4 exact label, 3 label prefix, 2 word prefix, 1 elsewhere in a word, 0 trigram-similar only.
TIER = 100_000
_KIND = "CASE l.kind WHEN 'preferred' THEN 6 WHEN 'alternative' THEN 3 ELSE 0 END"
_LANG = "CASE WHEN l.lang = :lang THEN 1 ELSE 0 END"
# Within a substring tier, the shorter label is the closer one.
_SUBSTRING_SCORE = f"""
  {TIER} * CASE WHEN l.norm = :norm THEN 4
              WHEN l.norm LIKE :prefix THEN 3
              WHEN l.norm LIKE :word_prefix THEN 2
              ELSE 1 END
  + 10 * (999 - least(length(l.norm), 999)) + {_KIND} + {_LANG}
"""
_FUZZY_SCORE = f"10 * round(1000 * l.similarity)::int + {_KIND} + {_LANG}"

# Each competence keeps its best label; filters and the keyset apply per competence.
_PAGE = f"""
SELECT {_COLUMNS}, b.label AS matched_label, b.score
FROM (
  SELECT DISTINCT ON (l.competence_id) l.competence_id, l.label, {{score}} AS score
  FROM {{source}}
  ORDER BY l.competence_id, score DESC, l.label
) b JOIN competences c ON c.id = b.competence_id
WHERE (CAST(:after_score AS int) IS NULL
       OR b.score < :after_score OR (b.score = :after_score AND c.id > :after_id))
{_FILTERS}
ORDER BY b.score DESC, c.id
LIMIT :limit
"""

# Three characters or more: the label contains the text (trigram GIN index).
_SEARCH_SUBSTRING = _PAGE.format(
    score=_SUBSTRING_SCORE, source="competence_labels l WHERE l.norm LIKE :contains"
)
# Shorter: no trigram to search by, so label prefix (btree range) or word prefix only.
_SEARCH_SHORT = _PAGE.format(
    score=_SUBSTRING_SCORE,
    source="""competence_labels l
  WHERE (l.norm ~>=~ :norm AND l.norm ~<~ :prefix_end) OR l.norm LIKE :word_prefix""",
)
# Typos: word similarity (see the migration's passport_similar_competence_labels), only for
# competences none of whose labels contain the text; those all rank above, in _SEARCH_SUBSTRING.
_SEARCH_FUZZY = _PAGE.format(
    score=_FUZZY_SCORE, source="passport_similar_competence_labels(:norm) l"
)

_LIST = f"""
SELECT {_COLUMNS}, NULL AS matched_label, 0 AS score
FROM competences c
WHERE (CAST(:after_id AS int) IS NULL OR c.id > :after_id)
{_FILTERS}
ORDER BY c.id
LIMIT :limit
"""

# Trigram search needs at least one whole trigram of the normalized text.
MIN_FUZZY_LENGTH = 3


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
    """Ranked label search (or, without text, everything in id order), one keyset page.

    The substring tiers and the fuzzy tier are separate queries: the fuzzy one is only run
    when the page is not full yet, since all its hits rank below every substring hit.
    """
    if text is not None and len(text) > MAX_SEARCH_LENGTH:
        raise InvalidSearch(f"at most {MAX_SEARCH_LENGTH} characters")
    if text is not None and not is_plain_text(text):
        raise InvalidSearch("control characters are not allowed")
    limit = max(0, min(first, MAX_PAGE))
    after_score, after_id = _decode_cursor(after) if after else (None, None)
    query = " ".join((text or "").split())
    params: dict[str, Any] = {
        "concept_type": concept_type,
        "skill_type": skill_type,
        "reuse_level": reuse_level,
        "collection": collection,
        "after_score": after_score,
        "after_id": after_id,
        "lang": lang,
        "text": query,
    }
    if not query:
        if after is not None and after_score != 0:
            raise InvalidCursor("not a cursor of this search")
        rows = list(await session.execute(_sql(_LIST), {**params, "limit": limit + 1}))
        return _page(rows, limit, lang)
    # Normalized by the function that filled labels.norm. Custom plans (transaction-local) let
    # the planner see the patterns, not a generic plan's parameters, when it picks the index.
    normalized = await session.scalar(_sql(_SETTINGS), {"text": query})
    if not normalized:  # only punctuation or combining marks: nothing to match
        return CompetencePage(items=[], has_next_page=False, end_cursor=None)
    escaped = _LIKE_SPECIAL.sub(r"\\\g<0>", normalized)
    params |= {
        "norm": normalized,
        "contains": f"%{escaped}%",
        "prefix": f"{escaped}%",
        "word_prefix": f"% {escaped}%",
        "prefix_end": normalized + _MAX_CHAR,
    }
    long_enough = len(normalized) >= MIN_FUZZY_LENGTH
    rows = []
    if after_score is None or after_score >= TIER:
        statement = _SEARCH_SUBSTRING if long_enough else _SEARCH_SHORT
        rows = list(await session.execute(_sql(statement), {**params, "limit": limit + 1}))
    if len(rows) <= limit and long_enough:
        need = limit - len(rows)
        rows += await session.execute(_sql(_SEARCH_FUZZY), {**params, "limit": need + 1})
    return _page(rows, limit, lang)


_SETTINGS = """
SELECT passport_normalize(CAST(:text AS text))
FROM (SELECT set_config('plan_cache_mode', 'force_custom_plan', true)) AS settings
"""
_LIKE_SPECIAL = re.compile(r"[\\%_]")
# Sorts after every character in a text_pattern_ops (byte-wise) comparison.
_MAX_CHAR = "\U0010ffff"


def _page(rows: Sequence[Any], limit: int, lang: str) -> CompetencePage:
    items = []
    for row in rows[:limit]:
        ref = _ref(row)
        label, used = (
            pick_label(ref.preferred_labels, lang) if ref.preferred_labels else (ref.uri, "und")
        )
        items.append(
            CompetenceHit(
                competence=ref,
                label=label,
                label_lang=used,
                matched_label=row.matched_label,
                score=row.score,
                cursor=_encode_cursor(row.score, ref.id),
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
        {"uris": [uri for uri in uris if is_plain_text(uri)]},
    )
    return {row.uri: _ref(row) for row in rows}


async def competences_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, CompetenceRef]:
    rows = await session.execute(
        _sql(f"SELECT {_COLUMNS} FROM competences c WHERE c.id = ANY(:ids)"), {"ids": list(ids)}
    )
    return {row.id: _ref(row) for row in rows}


async def occupation_by_uri(session: AsyncSession, uri: str) -> OccupationRef | None:
    if not is_plain_text(uri):
        return None
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
    return None if row is None else occupation_ref(row)


_OCCUPATIONS = """
SELECT o.id, o.uri, o.code, o.isco_group, o.preferred_labels, o.descriptions,
       array(SELECT oc.competence_id FROM occupation_competences oc
             WHERE oc.occupation_id = o.id AND oc.relation = 'essential'
             ORDER BY oc.competence_id) AS essential,
       array(SELECT oc.competence_id FROM occupation_competences oc
             WHERE oc.occupation_id = o.id AND oc.relation = 'optional'
             ORDER BY oc.competence_id) AS optional
FROM occupations o WHERE {where}
"""


async def occupations_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, OccupationRef]:
    rows = await session.execute(
        _sql(_OCCUPATIONS.format(where="o.id = ANY(:ids)")), {"ids": list(ids)}
    )
    return {row.id: occupation_ref(row) for row in rows}


async def occupations_by_uri(
    session: AsyncSession, uris: Sequence[str]
) -> dict[str, OccupationRef]:
    rows = await session.execute(
        _sql(_OCCUPATIONS.format(where="o.uri = ANY(:uris)")),
        {"uris": [uri for uri in uris if is_plain_text(uri)]},
    )
    return {row.uri: occupation_ref(row) for row in rows}


def occupation_ref(row: Any) -> OccupationRef:
    """From a row with the occupation's columns and its ``essential``/``optional`` id arrays."""
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
