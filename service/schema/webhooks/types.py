"""Webhook subscriptions and their deliveries as GraphQL types."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from service.schema.common import PageInfo
from service.schema.enums import DeliveryStatus, WebhookEventType
from service.schema.errors import (
    ErrorResult,
)
from service.webhooks.subscriptions import DeliveryView, SubscriptionView


@strawberry.type
class DeliveryCounts:
    pending: int
    delivered: int
    failed: int


@strawberry.type
class WebhookSubscription:
    id: strawberry.ID
    url: str
    event_types: list[WebhookEventType]
    created_at: dt.datetime
    active: bool
    disabled_at: dt.datetime | None
    deliveries: DeliveryCounts = strawberry.field(description="Deliveries so far, by status")
    last_delivered_at: dt.datetime | None


def subscription_type(view: SubscriptionView) -> WebhookSubscription:
    return WebhookSubscription(
        id=strawberry.ID(str(view.id)),
        url=view.url,
        event_types=[WebhookEventType(t) for t in view.event_types],
        created_at=view.created_at,
        active=view.disabled_at is None,
        disabled_at=view.disabled_at,
        deliveries=DeliveryCounts(
            pending=view.counts["pending"],
            delivered=view.counts["delivered"],
            failed=view.counts["failed"],
        ),
        last_delivered_at=view.last_delivered_at,
    )


@strawberry.type
class WebhookSubscriptionCreated:
    subscription: WebhookSubscription
    secret: str = strawberry.field(
        description="Signs every delivery (Standard Webhooks, HMAC-SHA256); shown only now"
    )


@strawberry.type
class WebhookDelivery:
    event_id: strawberry.ID = strawberry.field(description="Sent as the webhook-id header")
    event_type: WebhookEventType
    created_at: dt.datetime
    status: DeliveryStatus
    attempts: int
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_response_status: int | None
    last_error: str | None
    delivered_at: dt.datetime | None


def delivery_type(view: DeliveryView) -> WebhookDelivery:
    return WebhookDelivery(
        event_id=strawberry.ID(str(view.event_id)),
        event_type=WebhookEventType(view.event_type),
        created_at=view.created_at,
        status=DeliveryStatus(view.status),
        attempts=view.attempts,
        next_attempt_at=view.next_attempt_at,
        last_attempt_at=view.last_attempt_at,
        last_response_status=view.last_response_status,
        last_error=view.last_error,
        delivered_at=view.delivered_at,
    )


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDelivery


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo


CreateSubscriptionResult = Annotated[
    WebhookSubscriptionCreated | ErrorResult, strawberry.union("CreateWebhookSubscriptionResult")
]
SubscriptionResult = Annotated[
    WebhookSubscription | ErrorResult, strawberry.union("WebhookSubscriptionResult")
]
DeliveriesResult = Annotated[
    WebhookDeliveryConnection | ErrorResult, strawberry.union("WebhookDeliveriesResult")
]
