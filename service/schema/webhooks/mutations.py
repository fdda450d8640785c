"""Webhook mutations: parse, call one domain function, shape the result."""

from __future__ import annotations

import strawberry

from service.errors import DomainError
from service.schema.context import Info
from service.schema.enums import WebhookEventType
from service.schema.errors import error_result
from service.schema.ids import parse_uuid
from service.schema.webhooks.types import (
    CreateSubscriptionResult,
    SubscriptionResult,
    WebhookSubscriptionCreated,
    subscription_type,
)
from service.webhooks import subscriptions
from service.webhooks.secrets import SecretBox


@strawberry.input
class WebhookSubscriptionInput:
    url: str = strawberry.field(description="https; receives a signed POST per event")
    event_types: list[WebhookEventType]


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="Hear of your organisation's claims, and of grants made to it, by webhook"
    )
    async def create_webhook_subscription(
        self, info: Info, input: WebhookSubscriptionInput
    ) -> CreateSubscriptionResult:
        ctx = info.context
        data = {"url": input.url, "event_types": [t.value for t in input.event_types]}
        try:
            created = await ctx.atomically(
                lambda: subscriptions.create_subscription(
                    ctx.session,
                    ctx.principal,
                    data,
                    ctx.settings.webhooks_may_reach_private,
                    SecretBox(ctx.settings.webhook_key()),
                )
            )
        except DomainError as exc:
            return error_result(exc)
        return WebhookSubscriptionCreated(
            subscription=subscription_type(created.subscription), secret=created.secret
        )

    @strawberry.mutation(description="Stop sending to this subscription (idempotent)")
    async def disable_webhook_subscription(
        self, info: Info, id: strawberry.ID
    ) -> SubscriptionResult:
        ctx = info.context
        try:
            subscription_id = parse_uuid(id, "webhook subscription")
            view = await ctx.atomically(
                lambda: subscriptions.disable_subscription(
                    ctx.session, ctx.principal, subscription_id
                )
            )
        except DomainError as exc:
            return error_result(exc)
        return subscription_type(view)
