"""Alembic, driven from code so the CLI, the tests and the server share one way to migrate."""

from __future__ import annotations

import asyncio
import re
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.engine import async_url

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
DEFAULT_APP_ROLE = "passport_app"


def alembic_config(url: str, app_role: str = DEFAULT_APP_ROLE) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    # The role the migrations grant the application's privileges to (settings.database_role).
    config.set_main_option("passport_app_role", app_role or DEFAULT_APP_ROLE)
    return config


def app_role(config: Config | None) -> str:
    """The role migrations grant the application's privileges to, from ``alembic_config``."""
    role = (config.get_main_option("passport_app_role") if config else None) or DEFAULT_APP_ROLE
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError(f"not a plain role name: {role!r}")
    return role


def upgrade(url: str, revision: str = "head", app_role: str = DEFAULT_APP_ROLE) -> None:
    """Blocking: run from a thread (``upgrade_async``) when an event loop is running.
    ``url`` must be the schema owner's: migrations create tables, roles and grants."""
    command.upgrade(alembic_config(url, app_role), revision)


async def upgrade_async(url: str, revision: str = "head", app_role: str = DEFAULT_APP_ROLE) -> None:
    await asyncio.to_thread(upgrade, url, revision, app_role)


@cache
def _scripts() -> ScriptDirectory:
    """Read once: readiness asks on every probe, and the files never change under a process."""
    return ScriptDirectory.from_config(alembic_config("postgresql://x/y"))


@cache
def head_revision() -> str | None:
    return _scripts().get_current_head()


@cache
def _revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


def serves(revision: str | None) -> bool:
    """Can this code serve a database at ``revision``? At its head, yes; at an older revision of
    its own, no (migrations are behind); at a revision it does not know, yes: a newer release
    has migrated ahead of it during a rolling upgrade, and migrations only expand the schema
    until the old code is gone (add first, remove a release later)."""
    if revision is None:
        return False
    return revision == head_revision() or revision not in _revisions()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )
