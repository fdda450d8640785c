"""`passport purge-retained`: what is kept for a term goes once the term is over, and only that."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service import clock
from service.db.engine import session_factory
from service.models import BulkUpload, WebhookDelivery
from service.retention import purge_expired
from service.settings import Settings
from tests import factories
from tests.conftest import make_partner
from tests.graphql_client import Api
from tests.test_bulk_claims import ndjson, report, upload
from tests.test_webhooks import subscribe


async def test_old_upload_receipts_and_finished_deliveries_are_purged(
    api: Api, engine: AsyncEngine, settings: Settings
) -> None:
    partner = await make_partner(api)
    sub_id, _ = await subscribe(api, partner, "http://127.0.0.1:9/hook")
    rows = [factories.claim_input(factories.insz()) for _ in range(3)]
    old_key, new_key = f"old-{uuid.uuid4()}", f"new-{uuid.uuid4()}"
    _, first = report(await upload(api, partner, ndjson(rows[:2]), key=old_key))
    assert first["accepted"] == 2
    report(await upload(api, partner, ndjson(rows[2:]), key=new_key))
    subscription = uuid.UUID(sub_id)

    async with engine.begin() as conn:  # the test engine is the schema owner
        await conn.execute(
            update(BulkUpload)
            .where(BulkUpload.idempotency_key == old_key)
            .values(created_at=func.now() - text("interval '31 days'"))
        )
        deliveries = (
            await conn.execute(
                select(WebhookDelivery.citizen_id, WebhookDelivery.seq)
                .where(WebhookDelivery.subscription_id == subscription)
                .order_by(WebhookDelivery.created_at)
            )
        ).all()
        assert len(deliveries) == 3
        aged = func.now() - text("interval '31 days'")
        for (citizen_id, seq), status in zip(
            deliveries, ["delivered", "failed", "pending"], strict=True
        ):
            await conn.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.citizen_id == citizen_id,
                    WebhookDelivery.seq == seq,
                    WebhookDelivery.subscription_id == subscription,
                )
                .values(status=status, created_at=aged)
            )

    async with session_factory(engine)() as session, session.begin():
        removed = await purge_expired(session, settings, clock.now())
    assert removed["bulkUploads"] == 1
    assert removed["webhookDeliveries"] == 2  # delivered and given up; pending stays
    async with engine.connect() as conn:
        keys = set(await conn.scalars(select(BulkUpload.idempotency_key)))
        statuses = list(
            await conn.scalars(
                select(WebhookDelivery.status).where(
                    WebhookDelivery.subscription_id == subscription
                )
            )
        )
    assert new_key in keys and old_key not in keys
    assert statuses == ["pending"]

    # Past its replay term, a retried upload is processed again: the claims' own refs still
    # make every row a duplicate, so nothing is written twice.
    _, again = report(await upload(api, partner, ndjson(rows[:2]), key=old_key))
    assert again == {"rows": 2, "accepted": 0, "duplicates": 2, "rejected": 0}
