"""What a passport read no longer pays for, asked of PostgreSQL and of Python themselves.

A one-passport read runs on generic plans (service/db/plans.py): PostgreSQL's own account of
the plans it made (``pg_prepared_statements``) shows no custom plan for it, where its default
makes five before it would consider a generic one. A read of many passports keeps custom plans,
and so does every read on Citus, whose coordinator cannot route a generic plan.
The heap startup made is frozen out of the collector's walks while the app runs (service/app.py).
"""

from __future__ import annotations

import gc
import uuid
from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.app import create_app
from service.citizens.service import share_citizen_lock, share_citizen_locks
from service.db.engine import session_factory
from service.settings import Settings
from tests import factories
from tests.databases import on_citus
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue

READS = 7
# Aliases no other test asks for, so that their statements are this test's alone.
ONE = "query { me { passport { oneProbe: citizenId competences { status } } } }"
MANY = """query($c: [CitizenRef!]!) {
  passports(citizens: $c, purpose: "plan probe", legalBasis: "GUIDANCE") {
    ... on Passport { manyProbe: citizenId competences { status } } } }"""


async def _plans(app: Any, probe: str) -> tuple[int, int]:
    """(generic, custom) plans PostgreSQL made for the statements naming ``probe``, summed
    over every idle connection of the app's pool (each holds its own prepared statements)."""
    engine: AsyncEngine = app.state.passport.engine
    generic = custom = 0
    async with AsyncExitStack() as stack:
        idle = engine.pool.checkedin()  # type: ignore[attr-defined]
        conns: list[AsyncConnection] = [
            await stack.enter_async_context(engine.connect()) for _ in range(idle)
        ]
        for conn in conns:
            row = (
                await conn.execute(
                    text(
                        "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) "
                        "FROM pg_prepared_statements WHERE statement LIKE :probe"
                    ),
                    {"probe": f"%{probe}%"},
                )
            ).one()
            generic, custom = generic + row[0], custom + row[1]
    return generic, custom


async def test_a_one_passport_read_is_never_planned_for_its_values(
    api: Api, app: Any, school: Partner, server_url: URL
) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    for _ in range(READS):
        body = await api.gql(api.citizen(citizen), ONE)
        assert body["data"]["me"]["passport"]["competences"], body
    generic, custom = await _plans(app, "oneProbe")
    assert (generic, custom) == ((0, READS) if on_citus(server_url) else (READS, 0))


async def test_a_read_of_many_passports_is_planned_for_its_values(
    api: Api, app: Any, school: Partner, reader: Partner
) -> None:
    citizens = [factories.insz() for _ in range(3)]
    for citizen in citizens:
        await issue(api, school, factories.claim_input(citizen))
    asked = [{"insz": c} for c in citizens]
    for _ in range(3):
        body = await api.gql(reader.token, MANY, {"c": asked})
        assert len(body["data"]["passports"]) == 3, body
    generic, custom = await _plans(app, "manyProbe")
    assert (generic, custom) == (0, 3)


async def test_generic_plans_end_with_the_read_s_transaction(
    engine: AsyncEngine, server_url: URL
) -> None:
    """The setting is ``SET LOCAL``: the pooled connection plans as before once it commits."""
    during = "auto" if on_citus(server_url) else "force_generic_plan"
    async with session_factory(engine)() as session:
        async with session.begin():
            assert await session.scalar(text("SHOW plan_cache_mode")) == "auto"
            await share_citizen_lock(session, uuid.uuid4(), generic_plans=True)
            assert await session.scalar(text("SHOW plan_cache_mode")) == during
        assert await session.scalar(text("SHOW plan_cache_mode")) == "auto"


async def test_other_shared_locks_leave_the_planner_alone(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session, session.begin():
        await share_citizen_lock(session, uuid.uuid4())
        await share_citizen_locks(session, {uuid.uuid4()})
        assert await session.scalar(text("SHOW plan_cache_mode")) == "auto"


async def test_the_heap_startup_made_is_frozen_while_the_app_runs(settings: Settings) -> None:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
