"""Registering, listing and ending webhook subscriptions, and their delivery status."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.policy import require_organisation
from service.auth.principal import Principal
from service.claims.rules import WebUrl
from service.errors import InvalidState, NotFound, ValidationFailed
from service.models import WebhookDelivery, WebhookSubscription
from service.models.enums import DeliveryStatus, WebhookEventType
from service.pagination import decode_cursor, encode_cursor
from service.validation import validate
from service.webhooks.secrets import SecretBox, new_secret

MAX_SUBSCRIPTIONS = 10


class SubscriptionInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    url: WebUrl
    event_types: list[WebhookEventType] = Field(min_length=1, max_length=len(WebhookEventType))

    @field_validator("event_types")
    @classmethod
    def _distinct(cls, value: list[WebhookEventType]) -> list[WebhookEventType]:
        return sorted(set(value))


@dataclass(frozen=True)
class SubscriptionView:
    id: uuid.UUID
    url: str
    event_types: list[str]
    created_at: datetime
    disabled_at: datetime | None
    counts: Mapping[str, int]  # deliveries by status
    last_delivered_at: datetime | None


@dataclass(frozen=True)
class Created:
    subscription: SubscriptionView
    secret: str  # shown once, at creation


@dataclass(frozen=True)
class DeliveryView:
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    created_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_response_status: int | None
    last_error: str | None
    delivered_at: datetime | None


def check_reachable(url: str, allow_private: bool) -> None:
    """Production subscribers are https and not on loopback, private or link-local addresses
    written as such (a name that resolves to one is the network's egress policy to stop)."""
    if allow_private:
        return
    parts = urlsplit(url)
    name = parts.hostname or ""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    problem = None
    if parts.scheme != "https":
        problem = "must be an https URL"
    elif name == "localhost" or name.endswith(".localhost"):
        problem = "must not point at this machine"
    elif address is not None and not address.is_global:
        problem = "must not point at a private, loopback or link-local address"
    if problem:
        raise ValidationFailed.one("input.url", problem, "unreachable_url")


async def _views(session: AsyncSession, rows: list[WebhookSubscription]) -> list[SubscriptionView]:
    ids = [row.id for row in rows]
    counts: dict[uuid.UUID, dict[str, int]] = {i: dict.fromkeys(DeliveryStatus, 0) for i in ids}
    last: dict[uuid.UUID, datetime | None] = {}
    for sub, status, n, delivered in await session.execute(
        select(
            WebhookDelivery.subscription_id,
            WebhookDelivery.status,
            func.count(),
            func.max(WebhookDelivery.delivered_at),
        )
        .where(WebhookDelivery.subscription_id.in_(ids))
        .group_by(WebhookDelivery.subscription_id, WebhookDelivery.status)
    ):
        counts[sub][status] = n
        if delivered is not None:
            last[sub] = delivered
    return [
        SubscriptionView(
            id=row.id,
            url=row.url,
            event_types=list(row.event_types),
            created_at=row.created_at,
            disabled_at=row.disabled_at,
            counts={str(k): v for k, v in counts[row.id].items()},
            last_delivered_at=last.get(row.id),
        )
        for row in rows
    ]


async def create_subscription(
    session: AsyncSession,
    principal: Principal,
    data: Mapping[str, Any],
    allow_private: bool,
    box: SecretBox,
) -> Created:
    organisation_id = require_organisation(principal)
    spec = validate(SubscriptionInput, data)
    url = str(spec.url)
    check_reachable(url, allow_private)
    active = await session.scalar(
        select(func.count()).where(
            WebhookSubscription.organisation_id == organisation_id,
            WebhookSubscription.disabled_at.is_(None),
        )
    )
    if (active or 0) >= MAX_SUBSCRIPTIONS:
        raise InvalidState(f"at most {MAX_SUBSCRIPTIONS} active subscriptions; end one first")
    assert principal.client_pk is not None
    subscription_id, secret = uuid.uuid4(), new_secret()
    row = WebhookSubscription(
        id=subscription_id,
        organisation_id=organisation_id,
        url=url,
        event_types=[t.value for t in spec.event_types],
        secret=box.seal(secret, subscription_id),
        created_at=clock.now(),
        created_by=principal.client_pk,
    )
    session.add(row)
    await session.flush()
    return Created((await _views(session, [row]))[0], secret)


async def _own(
    session: AsyncSession, organisation_id: uuid.UUID, subscription_id: uuid.UUID
) -> WebhookSubscription:
    row = await session.get(WebhookSubscription, subscription_id)
    if row is None or row.organisation_id != organisation_id:
        raise NotFound("no webhook subscription with this id")
    return row


async def disable_subscription(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID
) -> SubscriptionView:
    """Idempotent. Nothing more is sent; what was pending stays as it was, for the record."""
    organisation_id = require_organisation(principal)
    row = await _own(session, organisation_id, subscription_id)
    if row.disabled_at is None:
        row.disabled_at = clock.now()
        await session.flush()
    return (await _views(session, [row]))[0]


async def subscriptions(session: AsyncSession, principal: Principal) -> list[SubscriptionView]:
    organisation_id = require_organisation(principal)
    rows = list(
        await session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.organisation_id == organisation_id)
            .order_by(WebhookSubscription.created_at)
        )
    )
    return await _views(session, rows)


@dataclass(frozen=True)
class DeliveryPage:
    items: list[DeliveryView]
    has_next_page: bool
    end_cursor: str | None


async def deliveries(
    session: AsyncSession,
    principal: Principal,
    subscription_id: uuid.UUID,
    *,
    status: DeliveryStatus | None,
    first: int,
    after: str | None,
) -> DeliveryPage:
    """Newest first, so a failing endpoint's latest errors are on the first page."""
    organisation_id = require_organisation(principal)
    await _own(session, organisation_id, subscription_id)
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    if after:
        stamp, event_id = decode_cursor(after)
        query = query.where(
            tuple_(WebhookDelivery.created_at, WebhookDelivery.event_id) < tuple_(stamp, event_id)
        )
    rows = list(
        await session.scalars(
            query.order_by(
                WebhookDelivery.created_at.desc(), WebhookDelivery.event_id.desc()
            ).limit(first + 1)
        )
    )
    items = [
        DeliveryView(
            subscription_id=row.subscription_id,
            event_id=row.event_id,
            event_type=row.event_type,
            created_at=row.created_at,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at if row.status == DeliveryStatus.PENDING else None,
            last_attempt_at=row.last_attempt_at,
            last_response_status=row.last_response_status,
            last_error=row.last_error,
            delivered_at=row.delivered_at,
        )
        for row in rows[:first]
    ]
    return DeliveryPage(
        items=items,
        has_next_page=len(rows) > first,
        end_cursor=encode_cursor(items[-1].created_at, items[-1].event_id) if items else None,
    )
