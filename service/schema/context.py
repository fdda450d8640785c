"""The per-request GraphQL context: one session, one principal, built fresh for every request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info as StrawberryInfo

from service.auth.principal import Principal
from service.errors import DomainError
from service.settings import Settings

T = TypeVar("T")


@dataclass
class Context:
    session: AsyncSession
    principal: Principal
    settings: Settings
    hmac_key: bytes
    operation_name: str | None = None  # as the client sent it
    failed: bool = False  # an unexpected error happened: roll back, commit nothing
    unavailable: bool = False  # ...and it was the database being out of reach
    retry: bool = False  # ...and it was a deadlock or serialization failure: run it again

    async def atomically(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one mutation in a savepoint: on a domain error nothing it wrote survives,
        while other mutations of the same request keep their committed results."""
        async with self.session.begin_nested():
            return await operation()


Info = StrawberryInfo[Context, None]

__all__ = ["Context", "DomainError", "Info"]
