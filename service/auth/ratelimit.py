"""Per-client budgets, spent in cost units: a GraphQL operation costs what its fields cost
(service/schema/cost.py), a REST call its route's fixed cost.

Counting uses the `limits` library's sliding-window counter. With ``memory://`` each process
counts alone; several workers or replicas share one budget only through a shared store
(``async+redis://``), which is what production should configure.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import NoReturn

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from service.auth.principal import Principal
from service.errors import QueryTooCostly, RateLimited
from service.models.enums import PrincipalKind
from service.settings import Settings

logger = structlog.get_logger(__name__)


def _async_uri(uri: str) -> str:
    return uri if uri.startswith("async+") else f"async+{uri}"


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self._limits: dict[str, list[RateLimitItem]] = {
            kind: parse_many(limit) for kind, limit in settings.rate_limits.items()
        }
        uri = _async_uri(settings.rate_limit_storage_uri)
        # A shared store that is slow or gone must cost a request milliseconds, not minutes.
        options = (
            {
                "connect_timeout": settings.rate_limit_store_timeout_seconds,
                "stream_timeout": settings.rate_limit_store_timeout_seconds,
            }
            if uri.startswith("async+redis")
            else {}
        )
        storage = storage_from_string(uri, **options)
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self._key = settings.hmac_key()

    def identity(self, principal: Principal) -> str:
        """Who spends the budget. A citizen's national number is never a key in the store:
        a keyed hash of it is."""
        if principal.kind is PrincipalKind.CITIZEN and principal.insz is not None:
            digest = hashlib.blake2b(principal.insz.encode(), key=self._key[:64], digest_size=16)
            return f"citizen:{digest.hexdigest()}"
        if principal.kind is PrincipalKind.LINK:
            return f"link:{principal.grant_id}"
        if principal.client_pk is not None:  # one budget per client, whichever scopes it uses
            return f"client:{principal.client_pk}"
        return f"{principal.kind.value}:{principal.subject}"

    async def spend(self, principal: Principal, cost: int) -> None:
        """Take ``cost`` from the caller's budget, or raise RateLimited (taking nothing).
        Each limit is taken atomically, but several are tested before any is taken: a request
        that a concurrent one beat to a later limit in between is refused, and keeps what it
        took from the limits before (a budget never overshoots; it may be spent early).

        If the shared store cannot be reached, requests go through (logged): the limits guard
        against abuse, and an outage of Redis must not become an outage of the register."""
        items = self._limits.get(principal.kind.value, [])
        if not items or cost <= 0:
            return
        try:
            await self._spend(items, self.identity(principal), cost)
        except (RateLimited, QueryTooCostly):
            raise
        except Exception as exc:  # the store's own errors: connection, timeout, protocol
            logger.warning("rate_limit_store_unavailable", error=type(exc).__name__)

    async def _spend(self, items: list[RateLimitItem], who: str, cost: int) -> None:
        """With one limit, one call to the store: ``hit`` takes the cost only if it fits, and
        atomically. With several, each is tested first, so a refusal by one takes nothing from
        the others."""
        for item in items:
            if cost > item.amount:
                # More than a whole window's budget can never pass: waiting would not help.
                raise QueryTooCostly(
                    f"this request costs {cost}, more than the whole budget of {item}: ask for "
                    "less at once",
                    cost=cost,
                    limit=item.amount,
                )
        if len(items) == 1:
            if not await self._strategy.hit(items[0], who, cost=cost):
                await self._refuse(items[0], who)
            return
        for item in items:
            if not await self._strategy.test(item, who, cost=cost):
                await self._refuse(item, who)
        for item in items:
            if not await self._strategy.hit(item, who, cost=cost):
                await self._refuse(item, who)  # filled since its test, by a concurrent request

    async def _refuse(self, item: RateLimitItem, who: str) -> NoReturn:
        stats = await self._strategy.get_window_stats(item, who)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(f"rate limit of {item} reached; retry later", retry_after=wait)
