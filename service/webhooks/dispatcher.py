"""Delivering the outbox: signed POSTs, retried with backoff, in order per citizen.

Each round claims a batch of due deliveries (a transaction-level advisory lock per subscriber
and citizen, skipping those another dispatcher holds, so any number of dispatchers share the
queue, on one PostgreSQL or through a Citus coordinator), sends them, and records every outcome
in the same transaction.
A delivery is due when its time has come and no earlier event of the same citizen is still
pending for the same subscriber: one citizen's events arrive in the order they happened.

A subscriber that answered 2xx is marked delivered and never sent that event again. If the
process dies between the answer and the commit, the event is sent again with the same
``webhook-id``, by which receivers recognise it (Standard Webhooks); a graceful stop finishes
the round in flight first, so a restart repeats nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from service import clock
from service.models.enums import DeliveryStatus
from service.observability import webhook_attempt
from service.settings import Settings
from service.webhooks.secrets import SecretBox, SecretUnreadable

logger = logging.getLogger(__name__)

# The head of each queue (one subscriber, one citizen) whose time has come. Read without row
# locks (Citus locks rows only in a query on one shard, and the queue spans them all), then
# claimed with a transaction-level advisory lock per queue, skipping queues another dispatcher
# holds. Every dispatcher takes these locks on the node it talks to, the coordinator on Citus,
# and keeps them until its round is recorded and committed.
_CLAIM = text(
    """
    WITH due AS MATERIALIZED (
      SELECT d.subscription_id, d.citizen_id
      FROM webhook_deliveries d
      JOIN webhook_subscriptions s ON s.id = d.subscription_id
      WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND s.disabled_at IS NULL
        AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries e
          WHERE e.subscription_id = d.subscription_id AND e.citizen_id = d.citizen_id
            AND e.seq < d.seq AND e.status = 'pending')
      ORDER BY d.next_attempt_at
      LIMIT :window)
    SELECT subscription_id, citizen_id FROM due
    WHERE pg_try_advisory_xact_lock(hashtextextended(
      'webhook:' || subscription_id::text || ':' || citizen_id::text, 0))
    LIMIT :limit
    """
)
# How many heads a round looks at, per delivery it may send: dispatchers running side by side
# all see the same earliest heads, and each skips those the others hold (the scan of ``due``
# stops, and takes no more locks, once a round has its batch).
WINDOW = 4
# The claimed queues' heads, read again (the same conditions) now that they are ours: a
# delivery another dispatcher recorded before this one took the lock is seen as it is now,
# and not sent again.
_DUE = text(
    """
    SELECT d.subscription_id, d.citizen_id, d.seq, d.event_id, d.body, d.attempts,
           s.url, s.secret
    FROM webhook_deliveries d
    JOIN webhook_subscriptions s ON s.id = d.subscription_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND s.disabled_at IS NULL
      AND NOT EXISTS (
        SELECT 1 FROM webhook_deliveries e
        WHERE e.subscription_id = d.subscription_id AND e.citizen_id = d.citizen_id
          AND e.seq < d.seq AND e.status = 'pending')
      AND d.citizen_id = ANY(CAST(:citizens AS uuid[]))
      AND d.subscription_id = ANY(CAST(:subs AS uuid[]))
    ORDER BY d.next_attempt_at
    """
)

_RECORD = text(
    """
    UPDATE webhook_deliveries d SET
      status = o.status, attempts = d.attempts + 1, last_attempt_at = CAST(:now AS timestamptz),
      next_attempt_at = o.next_attempt_at, last_response_status = o.response_status,
      last_error = o.error,
      delivered_at = CASE WHEN o.status = 'delivered' THEN CAST(:now AS timestamptz) END
    FROM unnest(CAST(:subs AS uuid[]), CAST(:citizens AS uuid[]), CAST(:seqs AS bigint[]),
                CAST(:statuses AS text[]), CAST(:nexts AS timestamptz[]),
                CAST(:codes AS int[]), CAST(:errors AS text[]))
         AS o(subscription_id, citizen_id, seq, status, next_attempt_at, response_status, error)
    WHERE d.subscription_id = o.subscription_id AND d.citizen_id = o.citizen_id
      AND d.seq = o.seq
    """
)


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    max_seconds: float
    max_attempts: int

    def next_attempt(self, attempts_made: int, now: datetime) -> datetime | None:
        """None: give up. Exponential with "equal jitter", so a recovering receiver is not
        hit by every subscriber's retries at the same instant."""
        if attempts_made >= self.max_attempts:
            return None
        delay = min(self.max_seconds, self.base_seconds * 2 ** (attempts_made - 1))
        return now + timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))  # noqa: S311


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        policy: RetryPolicy,
        box: SecretBox,
        *,
        batch_size: int = 100,
        poll_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._sessions = sessions
        self._http = http
        self._policy = policy
        self._box = box
        self._batch = batch_size
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Until ``stop``; a failing database only delays deliveries, it never ends the loop."""
        while not self._stopping.is_set():
            try:
                sent = await self.run_once()
            except Exception:
                logger.exception("webhook round failed; retrying")
                sent = 0
            if sent < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._poll)

    def stop(self) -> None:
        """Ends ``run`` after the round in flight has been sent and recorded."""
        self._stopping.set()

    async def run_once(self) -> int:
        async with self._sessions() as session, session.begin():
            now = clock.now()
            claimed = {
                (row.subscription_id, row.citizen_id)
                for row in await session.execute(
                    _CLAIM, {"now": now, "limit": self._batch, "window": self._batch * WINDOW}
                )
            }
            if not claimed:
                return 0
            heads = await session.execute(
                _DUE,
                {
                    "now": now,
                    "citizens": list({citizen for _, citizen in claimed}),
                    "subs": list({sub for sub, _ in claimed}),
                },
            )
            due = [row for row in heads if (row.subscription_id, row.citizen_id) in claimed]
            if not due:
                return 0
            outcomes = await asyncio.gather(*(self._send(row) for row in due))
            now = clock.now()
            nexts: list[datetime | None] = []
            statuses: list[str] = []
            for row, outcome in zip(due, outcomes, strict=True):
                webhook_attempt(outcome.ok)
                retry = None if outcome.ok else self._policy.next_attempt(row.attempts + 1, now)
                nexts.append(retry or now)
                statuses.append(
                    DeliveryStatus.DELIVERED
                    if outcome.ok
                    else DeliveryStatus.PENDING
                    if retry
                    else DeliveryStatus.FAILED
                )
            await session.execute(
                _RECORD,
                {
                    "now": now,
                    "subs": [r.subscription_id for r in due],
                    "citizens": [r.citizen_id for r in due],
                    "seqs": [r.seq for r in due],
                    "statuses": statuses,
                    "nexts": nexts,
                    "codes": [o.status_code for o in outcomes],
                    "errors": [o.error for o in outcomes],
                },
            )
            return len(due)

    async def _send(self, row: Any) -> _Outcome:
        message_id = str(row.event_id)
        now = clock.now()
        try:
            secret = self._box.open(row.secret, row.subscription_id)
        except SecretUnreadable:  # the key changed: nothing is sent unsigned
            return _Outcome(None, "the subscription's secret does not open with this key")
        headers = {
            "content-type": "application/json",
            "user-agent": "competence-passport-webhooks/1",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, now, row.body),
        }
        try:
            # The answer's body is never read: a receiver cannot make us hold megabytes.
            async with self._http.stream(
                "POST",
                row.url,
                content=row.body.encode(),
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
            ) as response:
                code = response.status_code
        except httpx.HTTPError as exc:
            return _Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
        return _Outcome(code, None if 200 <= code < 300 else f"HTTP {code}")


def webhook_client(settings: Settings) -> httpx.AsyncClient:
    """Its own client: subscribers' endpoints never share connections with the identity
    provider's, and no proxy settings from the environment apply to them."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=settings.webhook_batch_size),
        timeout=settings.webhook_timeout_seconds,
        trust_env=False,
    )


def dispatcher_for(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], http: httpx.AsyncClient
) -> Dispatcher | None:
    if not settings.webhook_dispatcher:
        return None
    return Dispatcher(
        sessions,
        http,
        RetryPolicy(
            settings.webhook_retry_base_seconds,
            settings.webhook_retry_max_seconds,
            settings.webhook_max_attempts,
        ),
        SecretBox(settings.webhook_key()),
        batch_size=settings.webhook_batch_size,
        poll_seconds=settings.webhook_poll_seconds,
        timeout_seconds=settings.webhook_timeout_seconds,
    )
