"""Webhook queries: an organisation's subscriptions and what became of each delivery."""

from __future__ import annotations

import strawberry

from service.errors import DomainError
from service.pagination import encode_cursor
from service.schema.common import PageInfo, clamp_first
from service.schema.context import Info
from service.schema.enums import DeliveryStatus
from service.schema.errors import error_result
from service.schema.ids import parse_uuid
from service.schema.webhooks.types import (
    DeliveriesResult,
    WebhookDeliveryConnection,
    WebhookDeliveryEdge,
    WebhookSubscription,
    delivery_type,
    subscription_type,
)
from service.webhooks import subscriptions


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="Your organisation's webhook subscriptions, oldest first")
    async def webhook_subscriptions(self, info: Info) -> list[WebhookSubscription]:
        ctx = info.context
        views = await subscriptions.subscriptions(ctx.session, ctx.principal)
        return [subscription_type(view) for view in views]

    @strawberry.field(description="Deliveries of one subscription, newest first")
    async def webhook_deliveries(
        self,
        info: Info,
        subscription_id: strawberry.ID,
        status: DeliveryStatus | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> DeliveriesResult:
        ctx = info.context
        try:
            page = await subscriptions.deliveries(
                ctx.session,
                ctx.principal,
                parse_uuid(subscription_id, "webhook subscription"),
                status=status,
                first=clamp_first(first, ctx.settings.max_page_size),
                after=after,
            )
        except DomainError as exc:
            return error_result(exc)
        return WebhookDeliveryConnection(
            edges=[
                WebhookDeliveryEdge(
                    cursor=encode_cursor(view.created_at, view.event_id), node=delivery_type(view)
                )
                for view in page.items
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )
