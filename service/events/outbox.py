"""The transactional outbox: an event that an organisation may hear of becomes one delivery
row per matching webhook subscription, written in the event's own transaction.

What a subscriber is told (``Notice.data``) names claims and grants by id and the passport by
its pseudonymous id; never a national number or a name.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.models.enums import EventType, WebhookEventType

PASSPORT_MARK = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Notice:
    """Who hears of an event, and what they are told."""

    audience: uuid.UUID  # the organisation
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Announced:
    """An event written to a citizen's chain that has a notice."""

    citizen_id: uuid.UUID
    seq: int
    event_id: uuid.UUID
    event_type: EventType
    occurred_at: datetime
    notice: Notice


def body(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> str:
    """A Standard Webhooks payload: ``type``, ``timestamp`` and ``data``."""
    return orjson.dumps(
        {
            "type": event_type,
            "timestamp": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "data": dict(data),
        }
    ).decode()


def notice_body(event_type: str, occurred_at: datetime, notice: Notice) -> tuple[str, str | None]:
    """The body of an event's deliveries around the passport's id, which the database puts
    in between when it appends the event (it may be creating the citizen right then). A
    notice that names no passport (a counted-only consent) is the whole body, tail None."""
    if "passportId" not in notice.data:
        return body(event_type, occurred_at, notice.data), None
    key = '"passportId":"'
    text = body(event_type, occurred_at, {**notice.data, "passportId": PASSPORT_MARK})
    head, _, tail = text.partition(key + PASSPORT_MARK)  # keys are unique, values escaped
    return head + key, tail


def claim_notice(
    organisation_id: uuid.UUID,
    citizen_id: uuid.UUID,
    claim_id: uuid.UUID,
    external_ref: str,
    competence_uri: str,
    **extra: Any,
) -> Notice:
    return Notice(
        organisation_id,
        {
            "claimId": str(claim_id),
            "externalRef": external_ref,
            "competenceUri": competence_uri,
            "passportId": str(citizen_id),
            **extra,
        },
    )


def grant_notice(
    organisation_id: uuid.UUID, citizen_id: uuid.UUID, grant_id: uuid.UUID, **extra: Any
) -> Notice:
    return Notice(
        organisation_id, {"grantId": str(grant_id), "passportId": str(citizen_id), **extra}
    )


# One statement for any number of events: each is matched to the active subscriptions of its
# audience that asked for its type.
_ENQUEUE = text(
    """
    INSERT INTO webhook_deliveries
      (subscription_id, citizen_id, seq, event_id, event_type, body, created_at, next_attempt_at)
    SELECT s.id, e.citizen_id, e.seq, e.event_id, e.event_type, e.body, e.occurred_at,
           e.occurred_at
    FROM unnest(CAST(:citizens AS uuid[]), CAST(:seqs AS bigint[]), CAST(:events AS uuid[]),
                CAST(:types AS text[]), CAST(:bodies AS text[]), CAST(:times AS timestamptz[]),
                CAST(:audiences AS uuid[]))
         AS e(citizen_id, seq, event_id, event_type, body, occurred_at, audience)
    JOIN webhook_subscriptions s
      ON s.organisation_id = e.audience AND s.disabled_at IS NULL
     AND e.event_type = ANY (s.event_types)
    """
)

SUBSCRIBABLE = frozenset(t.value for t in WebhookEventType)


async def enqueue(session: AsyncSession, announced: Sequence[Announced]) -> None:
    events = [a for a in announced if a.event_type.value in SUBSCRIBABLE]
    if not events:
        return
    await session.execute(
        _ENQUEUE,
        {
            "citizens": [a.citizen_id for a in events],
            "seqs": [a.seq for a in events],
            "events": [a.event_id for a in events],
            "types": [a.event_type.value for a in events],
            "bodies": [body(a.event_type.value, a.occurred_at, a.notice.data) for a in events],
            "times": [a.occurred_at for a in events],
            "audiences": [a.notice.audience for a in events],
        },
    )
