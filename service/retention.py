"""What is kept only for a while, and removing it once its term is over.

The application role cannot delete anything, so this runs as the schema owner (`passport
purge-retained`, daily). Terms are settings:

- legal-basis reads of erased passports and erasure receipts: ``retained_access_years``
  (see ``service.citizens.erasure`` for why they are kept at all);
- bulk upload receipts, which replay a report to a retried upload: ``bulk_replay_days``;
- finished webhook deliveries (delivered or given up), kept so a subscriber can see what it
  was sent: ``webhook_history_days``. Pending deliveries are never purged;
- a wallet's nonces and access tokens (OpenID4VCI), once expired.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.citizens.erasure import purge_retained, removed_rows
from service.models import BulkUpload, WalletAccessToken, WalletNonce, WebhookDelivery
from service.models.enums import DeliveryStatus
from service.settings import Settings


async def purge_expired(session: AsyncSession, settings: Settings, now: datetime) -> dict[str, int]:
    """Counts of removed rows by kind; one transaction (the caller's)."""
    removed = await purge_retained(session, clock.add_years(now, -settings.retained_access_years))
    uploads = await session.execute(
        delete(BulkUpload).where(
            BulkUpload.created_at < now - timedelta(days=settings.bulk_replay_days)
        )
    )
    deliveries = await session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.status != DeliveryStatus.PENDING.value,
            WebhookDelivery.created_at < now - timedelta(days=settings.webhook_history_days),
        )
    )
    # A wallet's nonces and access tokens are worth nothing once expired (the offers they
    # came from stay, with the citizen, as their record of what went to a wallet).
    nonces = await session.execute(delete(WalletNonce).where(WalletNonce.expires_at < now))
    tokens = await session.execute(
        delete(WalletAccessToken).where(WalletAccessToken.expires_at < now)
    )
    return {
        **removed,
        "bulkUploads": removed_rows(uploads),
        "webhookDeliveries": removed_rows(deliveries),
        "walletNonces": removed_rows(nonces),
        "walletAccessTokens": removed_rows(tokens),
    }
