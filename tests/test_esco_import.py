"""The ESCO import: counts against ESCO's published figures, languages, idempotency, errors."""

from __future__ import annotations

import asyncio
import gzip
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.citus import distribute
from service.db.engine import create_engine
from service.db.migrate import DEFAULT_APP_ROLE, upgrade_async
from service.models import (
    Competence,
    CompetenceBroader,
    CompetenceCollection,
    Occupation,
    OccupationCompetence,
)
from service.taxonomy.esco_import import SHIPPED_ESCO_DIR, EscoImportError, import_esco
from tests import factories
from tests.databases import create_database, drop_database, rendered, server_of

SKILLS_HEADER = (
    "conceptType,conceptUri,skillType,reuseLevel,preferredLabel,altLabels,hiddenLabels,status,"
    "modifiedDate,scopeNote,definition,inScheme,description"
)


async def count(engine: AsyncEngine, model: type, *where: ColumnElement[bool]) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(select(func.count()).select_from(model).where(*where))
    return int(found or 0)


async def test_shipped_export_matches_esco_figures(engine: AsyncEngine) -> None:
    assert await count(engine, Competence, Competence.concept_type == "skill") == 13896
    assert await count(engine, Competence, Competence.concept_type == "skill_group") == 640
    assert await count(engine, Occupation) == 3007
    # 123,855 rows, less the 67 that name an occupation missing from the export.
    assert (
        await count(engine, OccupationCompetence, OccupationCompetence.relation == "essential")
        == 64891
    )
    assert (
        await count(engine, OccupationCompetence, OccupationCompetence.relation == "optional")
        == 58897
    )
    assert (
        await count(engine, CompetenceCollection, CompetenceCollection.collection == "transversal")
        == 96
    )
    assert await count(engine, CompetenceBroader) == 20649


async def test_dutch_labels_with_english_fallback(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        teamwork = await conn.scalar(
            select(Competence.preferred_labels).where(Competence.uri == factories.TEAMWORK)
        )
        forklift = await conn.scalar(
            select(Competence.preferred_labels).where(Competence.uri == factories.FORKLIFT)
        )
        occupation = await conn.scalar(select(Occupation.preferred_labels).limit(1))
    assert teamwork == {"en": "work in teams", "nl": "in teams werken"}
    assert forklift == {"en": "operate forklift"}  # not in any Dutch collection
    assert set(occupation or {}) == {"en", "nl"}


async def test_collection_alt_labels_are_split(engine: AsyncEngine) -> None:
    """The collection files separate altLabels with " | ", not newlines like the main files."""
    async with engine.connect() as conn:
        labels = set(
            (
                await conn.execute(
                    text(
                        "SELECT l.kind, l.label FROM competence_labels l "
                        "JOIN competences c ON c.id = l.competence_id "
                        "WHERE c.uri = :uri AND l.lang = 'nl'"
                    ),
                    {"uri": factories.TEAMWORK},
                )
            ).all()
        )
        piped = await conn.scalar(
            text("SELECT count(*) FROM competence_labels WHERE label LIKE '%|%'")
        )
    assert ("preferred", "in teams werken") in labels
    assert len(labels) > 1 and all("|" not in label for _, label in labels)
    assert piped == 0


async def test_reimport_keeps_ids_and_counts(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        before = dict((await conn.execute(select(Competence.uri, Competence.id))).all())
        labels_before = await conn.scalar(text("SELECT count(*) FROM competence_labels"))
    report = await import_esco(engine, SHIPPED_ESCO_DIR)
    assert report.counts["skills"] == 13896
    assert report.skipped == {
        "relation to an unknown occupation": 67,
        "broader relation to an unknown concept": 7,
    }
    assert report.languages == ("en", "nl")
    async with engine.connect() as conn:
        after = dict((await conn.execute(select(Competence.uri, Competence.id))).all())
        labels_after = await conn.scalar(text("SELECT count(*) FROM competence_labels"))
    assert after == before
    assert labels_after == labels_before


async def _scratch_database(database_url: str, drop: str | None = None) -> str:
    """Create a database of its own on the test server or cluster (its URL), or drop one."""
    server = server_of(database_url)
    if drop:
        await drop_database(server, drop)
        return drop
    return rendered(await create_database(server, f"passport_scratch_{secrets.token_hex(4)}"))


@pytest.fixture
async def scratch_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A database of its own, so tiny test exports do not touch the shared taxonomy; on Citus
    distributed, so the import writes reference tables."""
    url = await _scratch_database(database_url)
    await upgrade_async(url)
    engine = create_engine(url)
    await distribute(engine, DEFAULT_APP_ROLE)
    yield engine
    await engine.dispose()
    await _scratch_database(database_url, drop=make_url(url).database)


def write_skills(directory: Path, body: str, name: str = "skills_en.csv") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(SKILLS_HEADER + "\r\n" + body, encoding="utf-8")


async def test_plain_csv_with_multiline_alt_labels(
    tmp_path: Path, scratch_engine: AsyncEngine
) -> None:
    write_skills(
        tmp_path,
        "KnowledgeSkillCompetence,http://example.org/s/1,skill/competence,transversal,"
        '"bake bread","knead dough\nproof dough",,released,,,,,"Makes bread."\r\n',
    )
    with gzip.open(tmp_path / "skills_nl.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write(
            SKILLS_HEADER + "\n" + "KnowledgeSkillCompetence,http://example.org/s/1,"
            'skill/competence,transversal,"brood bakken",,,released,,,,,\n'
        )
    report = await import_esco(scratch_engine, tmp_path)
    assert report.counts["skills"] == 1
    assert report.languages == ("en", "nl")
    async with scratch_engine.connect() as conn:
        labels = sorted(
            (await conn.execute(text("SELECT lang, kind, label FROM competence_labels"))).all()
        )
        row = (
            await conn.execute(
                select(Competence.preferred_labels, Competence.reuse_level, Competence.skill_type)
            )
        ).one()
    assert labels == [
        ("en", "alternative", "knead dough"),
        ("en", "alternative", "proof dough"),
        ("en", "preferred", "bake bread"),
        ("nl", "preferred", "brood bakken"),
    ]
    assert row == ({"en": "bake bread", "nl": "brood bakken"}, "transversal", "skill_competence")


async def test_missing_column_is_a_clear_error(tmp_path: Path, scratch_engine: AsyncEngine) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "skills_en.csv").write_text("conceptUri,preferredLabel\nhttp://x,y\n")
    with pytest.raises(EscoImportError, match=r"skills_en\.csv: missing column conceptType"):
        await import_esco(scratch_engine, tmp_path)
    assert await count(scratch_engine, Competence) == 0


async def test_directory_without_skills_is_an_error(
    tmp_path: Path, scratch_engine: AsyncEngine
) -> None:
    shutil.copy(SHIPPED_ESCO_DIR / "occupations_nl.csv.gz", tmp_path)
    with pytest.raises(EscoImportError, match="no skills"):
        await import_esco(scratch_engine, tmp_path)


def test_cli_migrates_and_imports(database_url: str, tmp_path: Path) -> None:
    """`passport migrate` and `passport import-esco DIR` as an operator runs them."""
    from typer.testing import CliRunner

    from service.cli import app
    from service.settings import get_settings

    url = asyncio.run(_scratch_database(database_url))
    env = {"PASSPORT_DATABASE_URL": url, "PASSPORT_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    get_settings.cache_clear()
    try:
        migrated = runner.invoke(app, ["migrate"], env=env)
        assert migrated.exit_code == 0, migrated.output
        placed = runner.invoke(app, ["distribute"], env=env)  # on plain PostgreSQL: nothing
        assert placed.exit_code == 0, placed.output
        export = tmp_path / "export"
        write_skills(
            export,
            "KnowledgeSkillCompetence,http://example.org/s/1,skill/competence,transversal,"
            '"bake bread",,,released,,,,,"Makes bread."\r\n',
        )
        imported = runner.invoke(app, ["import-esco", str(export)], env=env)
        assert imported.exit_code == 0, imported.output
        assert '"skills": 1' in imported.output
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "skills_en.csv").write_text("conceptUri,preferredLabel\nhttp://x,y\n")
        refused = runner.invoke(app, ["import-esco", str(broken)], env=env)
        assert refused.exit_code == 2
        assert "Traceback" not in refused.output
    finally:
        get_settings.cache_clear()
        asyncio.run(_scratch_database(database_url, drop=make_url(url).database))
