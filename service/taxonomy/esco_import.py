"""Loading an ESCO CSV export (ESCO's own file and column names, plain or gzipped) with COPY.

The files are streamed row by row into compact per-concept records; the records go to
PostgreSQL with COPY into temporary staging tables and are merged in one transaction. Concepts
are upserted by URI, so a re-import keeps every integer id that claims already point to, and a
reader never sees a half-imported taxonomy.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.models import Competence
from service.models.enums import ReuseLevel, SkillCollection, SkillType

SHIPPED_ESCO_DIR = Path(__file__).resolve().parent / "data" / "esco-v1.1.1"
# The main files put one label per line inside the field; the collection files use " | ".
LABEL_SEPARATOR = re.compile(r"\r?\n| \| ")
FILE_PATTERN = re.compile(r"^(?P<stem>[A-Za-z]+?)(?:_(?P<lang>[a-z]{2}))?\.csv(?:\.gz)?$")
COLLECTIONS = {
    "transversalSkillsCollection": SkillCollection.TRANSVERSAL,
    "digitalSkillsCollection": SkillCollection.DIGITAL,
    "greenSkillsCollection": SkillCollection.GREEN,
    "languageSkillsCollection": SkillCollection.LANGUAGE,
    "researchSkillsCollection": SkillCollection.RESEARCH,
    "digCompSkillsCollection": SkillCollection.DIGCOMP,
}
CONCEPT_TYPES = {"KnowledgeSkillCompetence": "skill", "SkillGroup": "skill_group"}
SKILL_TYPES = {"knowledge": SkillType.KNOWLEDGE, "skill/competence": SkillType.SKILL_COMPETENCE}
REUSE_LEVELS = {
    "transversal": ReuseLevel.TRANSVERSAL,
    "cross-sector": ReuseLevel.CROSS_SECTOR,
    "sector-specific": ReuseLevel.SECTOR_SPECIFIC,
    "occupation-specific": ReuseLevel.OCCUPATION_SPECIFIC,
}
REQUIRED = {
    "skills": ("conceptType", "conceptUri", "skillType", "reuseLevel", "preferredLabel"),
    "skillGroups": ("conceptUri", "preferredLabel"),
    "occupations": ("conceptUri", "preferredLabel"),
    "ISCOGroups": ("conceptUri", "code", "preferredLabel"),
    "occupationSkillRelations": ("occupationUri", "relationType", "skillUri"),
    "broaderRelationsSkillPillar": ("conceptUri", "broaderUri"),
    "collection": ("conceptUri", "preferredLabel"),
}


class EscoImportError(ValueError):
    """The export cannot be imported as it is; the message names the file and the problem."""


@dataclass(frozen=True)
class ImportReport:
    counts: dict[str, int]
    skipped: dict[str, int]
    languages: tuple[str, ...]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "skipped": self.skipped,
            "languages": list(self.languages),
            "seconds": round(self.seconds, 2),
        }


@dataclass
class _Concept:
    uri: str
    labels: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    alternatives: set[tuple[str, str, str]] = field(default_factory=set)  # (lang, kind, label)
    concept_type: str | None = None
    skill_type: str | None = None
    reuse_level: str | None = None
    code: str | None = None
    isco_group: str | None = None
    status: str = "released"

    def add_text(self, lang: str, row: dict[str, str]) -> None:
        label = (row.get("preferredLabel") or "").strip()
        if label:
            self.labels[lang] = label
        description = (row.get("description") or "").strip()
        if description:
            self.descriptions[lang] = description
        for kind, column in (("alternative", "altLabels"), ("hidden", "hiddenLabels")):
            for alt in LABEL_SEPARATOR.split(row.get(column) or ""):
                if alt.strip():
                    self.alternatives.add((lang, kind, alt.strip()))

    def label_rows(self, owner_id: int) -> Iterator[tuple[int, str, str, str]]:
        seen = set()
        for lang, label in self.labels.items():
            seen.add((lang, label))
            yield owner_id, lang, "preferred", label
        for lang, kind, label in sorted(self.alternatives):
            if (lang, label) not in seen:
                seen.add((lang, label))
                yield owner_id, lang, kind, label


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in required if column not in (reader.fieldnames or [])]
        if missing:
            raise EscoImportError(f"{path.name}: missing column {', '.join(missing)}")
        yield from reader


def _files(directory: Path) -> dict[str, list[tuple[str | None, Path]]]:
    found: dict[str, list[tuple[str | None, Path]]] = defaultdict(list)
    for path in sorted(directory.iterdir()):
        match = FILE_PATTERN.match(path.name)
        if match:
            found[match["stem"]].append((match["lang"], path))
    return found


def _vocabulary(
    value: str, mapping: Mapping[str, str], column: str, skipped: Counter[str]
) -> str | None:
    """Map ESCO's spelling to ours; an unknown value is kept out (and counted), not fatal."""
    value = value.strip()
    if not value:
        return None
    if value not in mapping:
        skipped[f"unknown {column} {value!r} (stored as null)"] += 1
    return mapping.get(value)


@dataclass
class _Export:
    competences: dict[str, _Concept] = field(default_factory=dict)
    occupations: dict[str, _Concept] = field(default_factory=dict)
    isco: dict[str, _Concept] = field(default_factory=dict)
    collections: set[tuple[str, str]] = field(default_factory=set)
    broader: set[tuple[str, str]] = field(default_factory=set)
    relations: dict[tuple[str, str], str] = field(default_factory=dict)
    languages: set[str] = field(default_factory=set)
    skipped: Counter[str] = field(default_factory=Counter)


def read_export(directory: Path) -> _Export:
    files = _files(directory)
    if not files.get("skills"):
        raise EscoImportError(f"{directory}: no skills_<lang>.csv(.gz) file; nothing to import")
    export = _Export()
    for lang, path in files["skills"]:
        lang = lang or "en"
        export.languages.add(lang)
        for row in _rows(path, REQUIRED["skills"]):
            concept = export.competences.setdefault(row["conceptUri"], _Concept(row["conceptUri"]))
            concept.concept_type = CONCEPT_TYPES.get(row["conceptType"], "skill")
            concept.skill_type = (
                _vocabulary(row["skillType"], SKILL_TYPES, "skillType", export.skipped)
                or concept.skill_type
            )
            concept.reuse_level = (
                _vocabulary(row["reuseLevel"], REUSE_LEVELS, "reuseLevel", export.skipped)
                or concept.reuse_level
            )
            concept.status = (row.get("status") or "").strip() or "released"
            concept.add_text(lang, row)
    for lang, path in files.get("skillGroups", []):
        lang = lang or "en"
        export.languages.add(lang)
        for row in _rows(path, REQUIRED["skillGroups"]):
            concept = export.competences.setdefault(row["conceptUri"], _Concept(row["conceptUri"]))
            concept.concept_type = "skill_group"
            concept.code = (row.get("code") or "").strip() or concept.code
            concept.add_text(lang, row)
    for stem, collection in COLLECTIONS.items():
        for lang, path in files.get(stem, []):
            lang = lang or "en"
            for row in _rows(path, REQUIRED["collection"]):
                member = export.competences.get(row["conceptUri"])
                if member is None:
                    export.skipped[f"{stem}: unknown concept"] += 1
                    continue
                export.collections.add((row["conceptUri"], collection))
                if lang not in member.labels:  # the collections carry Dutch skill labels
                    export.languages.add(lang)
                    member.add_text(lang, row)
    for lang, path in files.get("ISCOGroups", []):
        lang = lang or "en"
        for row in _rows(path, REQUIRED["ISCOGroups"]):
            group = export.isco.setdefault(row["conceptUri"], _Concept(row["conceptUri"]))
            group.code = row["code"].strip()
            group.add_text(lang, row)
    for lang, path in files.get("occupations", []):
        lang = lang or "en"
        export.languages.add(lang)
        for row in _rows(path, REQUIRED["occupations"]):
            occupation = export.occupations.setdefault(
                row["conceptUri"], _Concept(row["conceptUri"])
            )
            occupation.code = (row.get("code") or "").strip() or occupation.code
            occupation.isco_group = (row.get("iscoGroup") or "").strip() or occupation.isco_group
            occupation.add_text(lang, row)
    for _, path in files.get("broaderRelationsSkillPillar", []):
        for row in _rows(path, REQUIRED["broaderRelationsSkillPillar"]):
            if row["conceptUri"] in export.competences and row["broaderUri"] in export.competences:
                export.broader.add((row["conceptUri"], row["broaderUri"]))
            else:
                export.skipped["broader relation to an unknown concept"] += 1
    for _, path in files.get("occupationSkillRelations", []):
        for row in _rows(path, REQUIRED["occupationSkillRelations"]):
            key = (row["occupationUri"], row["skillUri"])
            if row["occupationUri"] not in export.occupations:
                export.skipped["relation to an unknown occupation"] += 1
            elif row["skillUri"] not in export.competences:
                export.skipped["relation to an unknown skill"] += 1
            elif row["relationType"] not in ("essential", "optional"):
                export.skipped["relation of unknown type"] += 1
            elif export.relations.get(key) != "essential":  # essential wins over optional
                export.relations[key] = row["relationType"]
    return export


async def _upsert(
    conn: asyncpg.Connection,
    table: str,
    key: str,
    columns: list[str],
    records: list[tuple[Any, ...]],
) -> None:
    stage = f"stage_{table}"
    cols = ", ".join(columns)
    await conn.execute(
        f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA"
    )
    await conn.copy_records_to_table(stage, records=records, columns=columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key)
    await conn.execute(
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


async def _ids(conn: asyncpg.Connection, table: str) -> dict[str, int]:
    return {row["uri"]: row["id"] for row in await conn.fetch(f"SELECT id, uri FROM {table}")}


async def _replace(
    conn: asyncpg.Connection,
    table: str,
    owner: str,
    owner_ids: list[int],
    columns: list[str],
    records: list[tuple[Any, ...]],
) -> None:
    await conn.execute(f"DELETE FROM {table} WHERE {owner} = ANY($1::int[])", owner_ids)
    await conn.copy_records_to_table(table, records=records, columns=columns)


async def _write(
    conn: asyncpg.Connection, export: _Export, source: str, version: str
) -> dict[str, int]:
    dumps = json.dumps
    await _upsert(
        conn,
        "competences",
        "uri",
        [
            "uri",
            "concept_type",
            "skill_type",
            "reuse_level",
            "code",
            "preferred_labels",
            "descriptions",
            "status",
        ],
        [
            (
                c.uri,
                c.concept_type or "skill",
                c.skill_type,
                c.reuse_level,
                c.code,
                dumps(c.labels),
                dumps(c.descriptions),
                c.status,
            )
            for c in export.competences.values()
        ],
    )
    competence_ids = await _ids(conn, "competences")
    imported = [competence_ids[uri] for uri in export.competences]
    labels = [
        row for c in export.competences.values() for row in c.label_rows(competence_ids[c.uri])
    ]
    await _replace(
        conn,
        "competence_labels",
        "competence_id",
        imported,
        ["competence_id", "lang", "kind", "label"],
        labels,
    )
    await _replace(
        conn,
        "competence_broader",
        "competence_id",
        imported,
        ["competence_id", "broader_id"],
        [(competence_ids[a], competence_ids[b]) for a, b in sorted(export.broader)],
    )
    await _replace(
        conn,
        "competence_collections",
        "competence_id",
        imported,
        ["competence_id", "collection"],
        [(competence_ids[uri], name) for uri, name in sorted(export.collections)],
    )
    if export.isco:
        await _upsert(
            conn,
            "isco_groups",
            "code",
            ["code", "uri", "preferred_labels", "descriptions"],
            [(g.code, g.uri, dumps(g.labels), dumps(g.descriptions)) for g in export.isco.values()],
        )
    occupation_labels = 0
    if export.occupations:
        await _upsert(
            conn,
            "occupations",
            "uri",
            ["uri", "code", "isco_group", "preferred_labels", "descriptions"],
            [
                (o.uri, o.code, o.isco_group, dumps(o.labels), dumps(o.descriptions))
                for o in export.occupations.values()
            ],
        )
        occupation_ids = await _ids(conn, "occupations")
        imported_occupations = [occupation_ids[uri] for uri in export.occupations]
        rows = [
            row for o in export.occupations.values() for row in o.label_rows(occupation_ids[o.uri])
        ]
        occupation_labels = len(rows)
        await _replace(
            conn,
            "occupation_labels",
            "occupation_id",
            imported_occupations,
            ["occupation_id", "lang", "kind", "label"],
            rows,
        )
        await _replace(
            conn,
            "occupation_competences",
            "occupation_id",
            imported_occupations,
            ["occupation_id", "competence_id", "relation"],
            [
                (occupation_ids[o], competence_ids[s], relation)
                for (o, s), relation in sorted(export.relations.items())
            ],
        )
    relation_kinds = Counter(export.relations.values())
    counts = {
        "skills": sum(1 for c in export.competences.values() if c.concept_type != "skill_group"),
        "skill_groups": sum(
            1 for c in export.competences.values() if c.concept_type == "skill_group"
        ),
        "competence_labels": len(labels),
        "broader_relations": len(export.broader),
        "collection_memberships": len(export.collections),
        "isco_groups": len(export.isco),
        "occupations": len(export.occupations),
        "occupation_labels": occupation_labels,
        "essential_relations": relation_kinds["essential"],
        "optional_relations": relation_kinds["optional"],
    }
    await conn.execute(
        "INSERT INTO taxonomy_imports (source, esco_version, counts) VALUES ($1, $2, $3::jsonb)",
        source,
        version,
        dumps(counts),
    )
    return counts


async def import_esco(
    engine: AsyncEngine, directory: Path, *, esco_version: str = "v1.1.1"
) -> ImportReport:
    started = time.perf_counter()
    export = await asyncio.to_thread(read_export, directory)  # parsing is CPU and file work
    async with engine.connect() as sa_conn:
        raw = await sa_conn.get_raw_connection()
        conn: asyncpg.Connection = raw.driver_connection
        async with conn.transaction():
            # One import at a time; readers keep seeing the previous taxonomy until commit.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('passport:esco-import'))")
            counts = await _write(conn, export, directory.name, esco_version)
            # CONCURRENTLY: rankings keep reading the old counts until the import commits.
            await conn.execute(
                "REFRESH MATERIALIZED VIEW CONCURRENTLY occupation_requirement_counts"
            )
    return ImportReport(
        counts=counts,
        skipped=dict(export.skipped),
        languages=tuple(sorted(export.languages)),
        seconds=time.perf_counter() - started,
    )


async def taxonomy_loaded(session_or_engine: AsyncSession | AsyncEngine) -> bool:
    """Whether any competence exists, so ``passport serve`` can load ESCO on first start."""
    query = select(Competence.id).limit(1)
    if isinstance(session_or_engine, AsyncSession):
        return (await session_or_engine.scalar(query)) is not None
    async with session_or_engine.connect() as conn:
        return (await conn.scalar(query)) is not None
