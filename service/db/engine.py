"""Engine and session factory; one AsyncSession per request, never shared by concurrent tasks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def async_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs (as operators write them) and use asyncpg."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    role: str | None = None,
    pre_ping: bool = False,
    recycle_seconds: int = -1,
) -> AsyncEngine:
    """``role``: every connection runs as it from the start (the application's restricted role,
    settings.database_role); None for the schema owner's own work (migrations, ESCO import).

    The role is set in the connection's startup packet, so even ``RESET ROLE`` returns to it;
    a login role that is itself only a member of it (production) cannot leave it at all."""
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
        pool_recycle=recycle_seconds,
        # Statement parameters hold citizen ids and free text: keep them out of error messages.
        hide_parameters=True,
        connect_args={"server_settings": server_settings(role)},
    )
    event.listen(engine.sync_engine.pool, "checkout", _closed_by_the_server)
    return engine


def server_settings(role: str | None) -> dict[str, str]:
    """The settings every connection of the service starts with (``create_engine``'s)."""
    settings = {
        "application_name": "competence-passport",
        # asyncpg asks the catalogue about every type it has not seen on a connection; that
        # query is cheap unless JIT compiles it (about 2 s). JIT helps no query of ours.
        "jit": "off",
        # Keepalives on an idle pooled connection, so what lies between (load balancers,
        # NAT) does not drop it silently: see _closed_by_the_server.
        "tcp_keepalives_idle": "60",
    }
    if role:
        settings["role"] = role
        # On a Citus coordinator the same query takes another 2 s while Citus hides its
        # shards from pg_class row by row; the application never reads the catalogue itself,
        # so it needs no hiding. On plain PostgreSQL this is an inert placeholder.
        settings["citus.override_table_visibility"] = "off"
    return settings


def _closed_by_the_server(dbapi_connection: Any, record: object, proxy: object) -> None:
    """A pooled connection the server has closed (a restart, an idle timeout, a terminated
    backend) is replaced before a request uses it, without a round trip: asyncpg saw the
    socket close. One that died silently, say dropped by a firewall, is not seen here: the
    server's keepalives keep idle ones alive through such devices, and
    ``db_pool_recycle_seconds`` replaces old ones at checkout. SQLAlchemy's pre-ping asks the
    server instead (BEGIN, ";" and ROLLBACK on asyncpg, three round trips for every request,
    2 to 4% of a write's server CPU in bench/request_path.py); ``db_pool_pre_ping`` turns it
    on."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this connection")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# SQLSTATEs of a connection lost or refused: connection exceptions (class 08), and the server
# shutting down, crashed or still starting (57P01 to 57P03).
_GONE = ("08", "57P01", "57P02", "57P03")


def database_unavailable(exc: BaseException | None) -> bool:
    """Connection trouble (server down, restarting, network, or a connection the server
    refuses, say because the migrations that create the application's role never ran), as
    opposed to a bug in a query. Looks through the wrappers: a BEGIN that the raw path asks
    the adapter for (``service.db.raw.driver``) fails as the adapter's own error, wrapping
    asyncpg's, and never as SQLAlchemy's."""
    return any(map(_unavailable, _causes(exc)))


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, OSError | OperationalError | InterfaceError):
        return True
    if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
        return True  # a raw statement on a connection asyncpg already saw close
    if isinstance(exc, asyncpg.PostgresError):  # asyncpg's own: the connection's are class 08
        return (exc.sqlstate or "").startswith(_GONE)
    if isinstance(exc, DBAPIError) and exc.statement is None:
        return True  # failed while connecting: no statement was sent
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "orig", None) or exc.__cause__


def sqlstate(exc: BaseException | None) -> str | None:
    """PostgreSQL's SQLSTATE of an error, looking through SQLAlchemy's and asyncpg's wrappers."""
    for cause in _causes(exc):
        code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def retryable(exc: BaseException | None) -> bool:
    """Deadlock or serialization failure: the transaction was rolled back and may run again."""
    return sqlstate(exc) in {"40001", "40P01"}


def unstorable_value(exc: BaseException | None) -> bool:
    """A value PostgreSQL cannot hold (SQLSTATE class 22, or a date the driver cannot encode):
    input that slipped past validation, not a fault of the service."""
    state = sqlstate(exc)
    if state is not None:
        return state.startswith("22")
    return any(isinstance(cause, OverflowError) for cause in _causes(exc))
