"""One unit of work in a transaction of its own, rerun when PostgreSQL asks for it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.engine import retryable
from service.errors import CitizenGone

T = TypeVar("T")

MAX_ATTEMPTS = 4


async def atomically(session: AsyncSession, operation: Callable[[], Awaitable[T]]) -> T:
    """Run ``operation`` and commit. On any error nothing it wrote survives; a deadlock or
    serialization failure with another writer, or an erasure of the citizen it was writing
    for (CitizenGone), reruns it after a short random pause."""
    attempt = 1
    while True:
        try:
            result = await operation()
            await session.commit()
        except Exception as exc:
            with suppress(SQLAlchemyError, OSError):  # the first error is the one to report
                await session.rollback()
            again = retryable(exc) or isinstance(exc, CitizenGone)
            if not again or attempt == MAX_ATTEMPTS:
                raise
            await asyncio.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter
            attempt += 1
            continue
        return result
