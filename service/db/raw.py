"""The request's own asyncpg connection, for the hot statements that are one call each.

A hot write (``issueClaim``, ``supersedeClaim``, ``revokeClaim``) and the caller's lookup
send their SQL straight to asyncpg, which prepares each statement once per connection and
keeps it: no statement is built, compiled or wrapped per request. A statement runs on the
very connection of the request's session: in its transaction (so the statements before it
and the commit after it are one unit of work with it, as when everything went through the
session), or, when it is a whole unit of work by itself (``alone``), outside any.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import asyncpg
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

# A statement's SQL for asyncpg, with the name and default of each positional parameter.
DriverSql = tuple[str, tuple[tuple[str, Any], ...]]


async def driver(session: AsyncSession, *, alone: bool = False) -> asyncpg.Connection:
    """The session's asyncpg connection, inside the session's transaction.

    SQLAlchemy's asyncpg adapter sends BEGIN with the session's first statement; when the
    raw statement is the first, the adapter is asked to begin now, so the statement never
    runs outside the transaction that the session commits or rolls back.

    ``alone``: the statement is a whole unit of work by itself (a one-row read, or a write
    function that is atomic on its own), so while the session has no transaction open it
    runs in none: no BEGIN before it and no COMMIT after it (the adapter sends neither for a
    transaction it never began), two round trips fewer. The caller must not need it undone
    by the session's rollback. Inside an open transaction it is part of that transaction.
    """
    kept = session.info.get(_KEPT)
    if kept is not None and kept[0] == _transactions(session) and kept[0][0].is_active:
        adapted, raw = kept[1], kept[2]
    else:
        # Asked of the session once per transaction (and savepoint, which the ask begins):
        # each ask spawns a greenlet (some 40 us), and a read asks five times. The connection
        # is the transaction's until it ends.
        connection = await session.connection()
        pooled = await connection.get_raw_connection()
        adapted, raw = pooled.dbapi_connection, pooled.driver_connection
        session.info[_KEPT] = (_transactions(session), adapted, raw)
    if adapted._transaction is None and not alone:  # the adapter's own BEGIN, see above
        await adapted._start_transaction()
    return cast("asyncpg.Connection", raw)


_KEPT = "service.db.raw.driver"  # in session.info: (its transactions, the adapter, asyncpg's)


def _transactions(session: AsyncSession) -> tuple[Any, Any]:
    """The session's transaction and its innermost savepoint, as objects: new ones are new."""
    return session.sync_session.get_transaction(), session.sync_session.get_nested_transaction()


def driver_sql(statement: ClauseElement) -> DriverSql:
    """A statement built with SQLAlchemy, compiled once to PostgreSQL's own SQL: one
    definition of the statement, sent without the session's machinery on each run."""
    compiled = cast(SQLCompiler, statement.compile(dialect=postgresql.asyncpg.dialect()))
    defaults = compiled.params  # the literals' values; None for what each run sends
    return str(compiled), tuple((n, defaults[n]) for n in compiled.positiontup or [])


def driver_args(sql: DriverSql, values: Mapping[str, Any]) -> tuple[Any, ...]:
    """The positional arguments of ``sql``: each named parameter's value, else its default."""
    return tuple(values.get(name, default) for name, default in sql[1])


async def fetchrow(
    session: AsyncSession, sql: DriverSql, values: Mapping[str, Any], *, alone: bool = False
) -> asyncpg.Record | None:
    """``sql``'s first row, run on the session's connection (``driver``)."""
    conn = await driver(session, alone=alone)
    row: asyncpg.Record | None = await conn.fetchrow(sql[0], *driver_args(sql, values))
    return row


async def fetchval(
    session: AsyncSession, sql: DriverSql, values: Mapping[str, Any], *, alone: bool = False
) -> Any:
    """``sql``'s first row's first value (None: no row), run as ``fetchrow``."""
    return await (await driver(session, alone=alone)).fetchval(sql[0], *driver_args(sql, values))
