"""Committed contracts match the code; the migrations build exactly what the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from service.contracts import openapi_json
from service.db.citus import CROSSING_FOREIGN_KEYS
from service.models import Base
from service.schema import sdl
from tests.databases import on_citus

ROOT = Path(__file__).resolve().parents[1]


def test_graphql_schema_is_committed_and_current() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == sdl(), "schema.graphql drifted: run `passport graphql-schema`"


def test_openapi_is_committed_and_current() -> None:
    committed = (ROOT / "openapi" / "openapi.json").read_text()
    assert committed == openapi_json(), "openapi.json drifted: run `passport openapi`"


async def test_migrations_match_models(engine: AsyncEngine) -> None:
    def diff(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    if on_citus(engine.url):  # `passport distribute` drops the keys between shards, by design
        differences = [d for d in differences if not _crossing_key_dropped(d)]
    assert differences == []


def _crossing_key_dropped(difference: object) -> bool:
    if not (isinstance(difference, tuple) and difference[0] == "add_fk"):
        return False
    key = difference[1]
    return (key.parent.name, key.referred_table.name) in CROSSING_FOREIGN_KEYS
