"""The request's own asyncpg connection, for the hot writes that are one statement each.

A hot write (``issueClaim``, ``supersedeClaim``, ``revokeClaim``) sends its SQL straight to
asyncpg, which prepares each statement once per connection and keeps it: no statement is
built, compiled or wrapped per request. It runs on the very connection and in the very
transaction of the request's session, so the caller's lookup before it and the commit after
it are one unit of work with it, as when everything went through the session.
"""

from __future__ import annotations

from typing import Any, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The session's asyncpg connection, inside the session's transaction.

    SQLAlchemy's asyncpg adapter sends BEGIN with the session's first statement; when the
    raw statement is the first, the adapter is asked to begin now, so the statement never
    runs outside the transaction that the session commits or rolls back.
    """
    connection = await session.connection()
    pooled = await connection.get_raw_connection()
    adapted: Any = pooled.dbapi_connection
    if adapted._transaction is None:  # the adapter's own BEGIN, see above
        await adapted._start_transaction()
    return cast("asyncpg.Connection", pooled.driver_connection)
