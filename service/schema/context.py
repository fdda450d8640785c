"""The per-request GraphQL context: one session, one principal, built fresh for every request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info as StrawberryInfo

from service.auth.principal import Principal
from service.auth.ratelimit import RateLimiter
from service.credentials.issuer import Issuer
from service.db.atomic import atomically
from service.errors import DomainError
from service.settings import Settings

T = TypeVar("T")


@dataclass
class Context:
    session: AsyncSession
    principal: Principal
    settings: Settings
    hmac_key: bytes
    limiter: RateLimiter | None = None
    issuer: Issuer | None = None  # who signs exports (the app's); None where nothing is exported
    operation_name: str | None = None  # as the client sent it
    cost: int = 0  # of the operation, once validated (service/schema/cost.py)
    charged: bool = False  # the cost is taken from the caller's budget already
    # A prepared read's outcome for the resolver to answer (service/schema/prepared.py): the
    # passport view or the exception its read raised; it is not read twice.
    passport_read: object | None = None
    started: float | None = None  # when a prepared read began (perf_counter), for the metric
    retry_after: int | None = None  # set when the caller's rate limit refused the operation
    failed: bool = False  # an unexpected error happened: roll back what is not committed
    unavailable: bool = False  # ...and it was the database being out of reach
    committed: bool = False  # a mutation of this request has been committed

    async def atomically(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one mutation in a transaction of its own, committed before the next one starts.

        On any error nothing it wrote survives, while earlier mutations of the request stay
        committed. Committing per mutation also releases the citizen lock it took, so requests
        naming the same citizens in opposite orders cannot deadlock each other; a deadlock or
        serialization failure with some other writer, or an erasure of the citizen it was
        writing for, reruns just this mutation.
        """
        result = await atomically(self.session, operation)
        self.committed = True
        return result


Info = StrawberryInfo[Context, None]

__all__ = ["Context", "DomainError", "Info"]
