"""Webhooks end to end: the outbox, signed deliveries to a real local HTTP receiver, retries
with backoff, order per citizen, delivery status, and restarts of the dispatcher."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook
from starlette.requests import Request
from starlette.responses import Response

from service import clock
from service.db.engine import create_engine, session_factory
from service.models import WebhookDelivery, WebhookSubscription
from service.settings import Settings
from service.webhooks.dispatcher import Dispatcher, RetryPolicy
from service.webhooks.secrets import SecretBox, SecretUnreadable
from tests import factories
from tests.citizen_api import REVOKE_GRANT, grant
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_bulk_claims import ISSUE_MANY

SUBSCRIBE = """
mutation($input: WebhookSubscriptionInput!) {
  createWebhookSubscription(input: $input) {
    __typename
    ... on WebhookSubscriptionCreated { secret subscription { id url eventTypes active } }
    ... on Error { code message }
    ... on ValidationFailed { problems { field code } }
  }
}"""
STATUS = """
query($id: ID!) {
  webhookSubscriptions { id deliveries { pending delivered failed } lastDeliveredAt }
  webhookDeliveries(subscriptionId: $id, first: 100) {
    __typename
    ... on WebhookDeliveryConnection {
      edges { node { eventId eventType status attempts lastResponseStatus lastError } }
    }
  }
}"""
ISSUE = """
mutation($input: IssueClaimInput!) {
  issueClaim(input: $input) { ... on ClaimIssued { claim { id } } }
}"""
REVOKE = """
mutation($input: RevokeClaimInput!) { revokeClaim(input: $input) { __typename } }"""
SUPERSEDE = """
mutation($input: SupersedeClaimInput!) {
  supersedeClaim(input: $input) { ... on ClaimSuperseded { claim { id } } }
}"""
ALL_TYPES = ["CLAIM_ISSUED", "CLAIM_REVOKED", "CLAIM_SUPERSEDED", "GRANT_CREATED", "GRANT_REVOKED"]


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request and how it answered."""

    url: str = ""
    delay: float = 0.0
    # Called with (webhook-id, attempt number at this receiver); returns the status to answer.
    answer: Callable[[str, int], int] = lambda _id, _n: 204
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)  # ids answered with a 2xx
    tries: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    in_flight: int = 0  # requests received and not yet answered

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        headers = dict(request.headers)
        self.received.append((headers, body))
        message_id = headers.get("webhook-id", "")
        self.tries[message_id] += 1
        self.in_flight += 1
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        status = self.answer(message_id, self.tries[message_id])
        if 200 <= status < 300:
            self.acknowledged.append(message_id)
        await Response(status_code=status)(scope, receive, send)

    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _, body in self.received]


@asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[Receiver]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}/hooks"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def app_sessions(database_url: str, settings: Settings) -> AsyncIterator[AppSide]:
    """Sessions as the application has them (the restricted role's privileges must suffice),
    and the key the application sealed the subscriptions' secrets with."""
    engine = create_engine(database_url, role="passport_app")
    yield AppSide(session_factory(engine), SecretBox(settings.webhook_key()))
    await engine.dispose()


@dataclass(frozen=True)
class AppSide:
    sessions: async_sessionmaker[AsyncSession]
    box: SecretBox


def dispatcher(
    app: AppSide,
    http: httpx.AsyncClient,
    *,
    base: float = 0.05,
    attempts: int = 5,
    batch: int = 100,
) -> Dispatcher:
    return Dispatcher(
        app.sessions,
        http,
        RetryPolicy(base, 0.2, attempts),
        app.box,
        batch_size=batch,
        poll_seconds=0.02,
        timeout_seconds=5,
    )


async def subscribe(
    api: Api, partner: Partner, url: str, types: list[str] = ALL_TYPES
) -> tuple[str, str]:
    body = await api.gql(partner.token, SUBSCRIBE, {"input": {"url": url, "eventTypes": types}})
    created = body["data"]["createWebhookSubscription"]
    assert created["__typename"] == "WebhookSubscriptionCreated", created
    return created["subscription"]["id"], created["secret"]


async def pending(engine: AsyncEngine, subscription_id: str) -> int:
    async with engine.connect() as conn:
        n = await conn.scalar(
            select(func.count()).where(
                WebhookDelivery.subscription_id == uuid.UUID(subscription_id),
                WebhookDelivery.status == "pending",
            )
        )
    return n or 0


async def drain(
    d: Dispatcher, engine: AsyncEngine, subscription_id: str, limit: float = 20
) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while await pending(engine, subscription_id):
        assert asyncio.get_running_loop().time() < deadline, "deliveries still pending"
        if not await d.run_once():
            await asyncio.sleep(0.02)


async def test_events_are_delivered_signed_and_in_order(
    api: Api, engine: AsyncEngine, app_sessions: AppSide
) -> None:
    school = await make_partner(api)
    reader = await make_partner(api, "EMPLOYER", ("PASSPORTS_READ",))
    async with serving(Receiver()) as receiver, httpx.AsyncClient() as http:
        sub, secret = await subscribe(api, school, receiver.url)
        reader_sub, reader_secret = await subscribe(
            api, reader, receiver.url, ["GRANT_CREATED", "GRANT_REVOKED"]
        )
        citizen = factories.insz()
        first = factories.claim_input(citizen, factories.PYTHON)
        claim_id = (await api.gql(school.token, ISSUE, {"input": first}))["data"]["issueClaim"][
            "claim"
        ]["id"]
        newer = {k: v for k, v in first.items() if k not in ("insz", "competenceUri")}
        newer.update(claimId=claim_id, externalRef=factories.ref(), context="Refreshed")
        newer_id = (await api.gql(school.token, SUPERSEDE, {"input": newer}))["data"][
            "supersedeClaim"
        ]["claim"]["id"]
        await api.gql(
            school.token, REVOKE, {"input": {"claimId": newer_id, "reason": "issued in error"}}
        )
        batch = [
            factories.claim_input(citizen, factories.SQL),
            factories.claim_input(factories.insz()),
        ]
        await api.gql(school.token, ISSUE_MANY, {"inputs": batch})
        made = await grant(
            api,
            api.citizen(citizen),
            granteeKind="ORGANISATION",
            organisationId=str(reader.organisation_id),
        )
        await api.gql(api.citizen(citizen), REVOKE_GRANT, {"id": made["grant"]["id"]})

        await drain(dispatcher(app_sessions, http), engine, sub)
        await drain(dispatcher(app_sessions, http), engine, reader_sub)

    school_hook, reader_hook = Webhook(secret), Webhook(reader_secret)
    events = []
    for headers, body in receiver.received:
        verifier = reader_hook if orjson.loads(body)["type"].startswith("grant") else school_hook
        events.append(verifier.verify(body, headers))  # raises unless the signature holds
    passport = events[0]["data"]["passportId"]
    mine = sorted(
        (e for e in events if e["data"]["passportId"] == passport),
        key=lambda e: e["type"].startswith("grant"),
    )
    # Each subscriber hears of one citizen's events in the order they happened.
    assert [e["type"] for e in mine if e["type"].startswith("claim")] == [
        "claim.issued",
        "claim.issued",
        "claim.superseded",
        "claim.revoked",
        "claim.issued",
    ]
    assert [e["type"] for e in mine if e["type"].startswith("grant")] == [
        "grant.created",
        "grant.revoked",
    ]
    assert mine[0]["data"]["claimId"] == claim_id
    assert mine[0]["data"]["externalRef"] == first["externalRef"]
    assert mine[0]["data"]["competenceUri"] == factories.PYTHON
    assert mine[2]["data"] == {
        "claimId": claim_id,
        "supersededBy": newer_id,
        "passportId": mine[0]["data"]["passportId"],
    }
    assert len(events) == 8  # and the other citizen's claim
    text = b"".join(body for _, body in receiver.received).decode()
    assert citizen not in text  # no national number ever leaves in a webhook

    status = (await api.gql(school.token, STATUS, {"id": sub}))["data"]
    assert status["webhookSubscriptions"][0]["deliveries"] == {
        "pending": 0,
        "delivered": 6,
        "failed": 0,
    }
    nodes = [e["node"] for e in status["webhookDeliveries"]["edges"]]
    assert {n["status"] for n in nodes} == {"DELIVERED"} and {n["attempts"] for n in nodes} == {1}
    # Another organisation cannot see this subscription's deliveries.
    other = (await api.gql(reader.token, STATUS, {"id": sub}))["data"]
    assert other["webhookDeliveries"]["__typename"] == "NotFound"


async def test_failures_are_retried_with_backoff_keeping_each_citizens_order(
    api: Api, engine: AsyncEngine, app_sessions: AppSide
) -> None:
    school = await make_partner(api)
    # The first event fails twice; those after it, for the same citizen, must wait for it.
    failing: set[str] = set()

    def answer(message_id: str, attempt: int) -> int:
        return 503 if message_id in failing and attempt <= 2 else 200

    async with serving(Receiver(answer=answer)) as receiver, httpx.AsyncClient() as http:
        sub, _ = await subscribe(api, school, receiver.url, ["CLAIM_ISSUED"])
        citizen = factories.insz()
        rows = [
            factories.claim_input(citizen, uri)
            for uri in (factories.PYTHON, factories.SQL, factories.ENGLISH)
        ]
        for row in rows:
            await api.gql(school.token, ISSUE, {"input": row})
        async with engine.connect() as conn:
            first_event = await conn.scalar(
                select(WebhookDelivery.event_id)
                .where(WebhookDelivery.subscription_id == uuid.UUID(sub))
                .order_by(WebhookDelivery.seq)
                .limit(1)
            )
        failing.add(str(first_event))
        d = dispatcher(app_sessions, http, base=0.1)
        assert await d.run_once() >= 1
        # Only the head was tried: the two later events wait behind it.
        assert [h["webhook-id"] for h, _ in receiver.received] == [str(first_event)]
        async with engine.connect() as conn:
            head = (
                await conn.execute(
                    select(WebhookDelivery.__table__).where(WebhookDelivery.event_id == first_event)
                )
            ).one()
        assert (head.status, head.attempts, head.last_response_status) == ("pending", 1, 503)
        assert head.next_attempt_at > head.last_attempt_at  # backed off
        await drain(d, engine, sub)
    refs = [e["data"]["externalRef"] for e in receiver.events()]
    assert refs[:2] == [rows[0]["externalRef"]] * 2  # the two failed tries of the head
    assert refs[2:] == [rows[0]["externalRef"], rows[1]["externalRef"], rows[2]["externalRef"]]
    assert receiver.acknowledged == list(dict.fromkeys(receiver.acknowledged))  # once each


async def test_a_subscriber_that_never_answers_is_given_up(
    api: Api, engine: AsyncEngine, app_sessions: AppSide
) -> None:
    school = await make_partner(api)
    async with (
        serving(Receiver(answer=lambda _i, _n: 500)) as receiver,
        httpx.AsyncClient() as http,
    ):
        sub, _ = await subscribe(api, school, receiver.url, ["CLAIM_ISSUED"])
        await api.gql(school.token, ISSUE, {"input": factories.claim_input(factories.insz())})
        await drain(dispatcher(app_sessions, http, base=0.01, attempts=3), engine, sub)
    status = (await api.gql(school.token, STATUS, {"id": sub}))["data"]
    node = status["webhookDeliveries"]["edges"][0]["node"]
    assert (node["status"], node["attempts"], node["lastResponseStatus"]) == ("FAILED", 3, 500)
    assert node["lastError"] == "HTTP 500"
    assert len(receiver.received) == 3


async def test_subscription_rules(api: Api, settings: Any) -> None:
    school = await make_partner(api)
    bad = await api.gql(
        school.token,
        SUBSCRIBE,
        {"input": {"url": "ftp://x.example", "eventTypes": ["CLAIM_ISSUED"]}},
    )
    assert bad["data"]["createWebhookSubscription"]["__typename"] == "ValidationFailed"
    none = await api.gql(
        school.token, SUBSCRIBE, {"input": {"url": "https://x.example/h", "eventTypes": []}}
    )
    assert none["data"]["createWebhookSubscription"]["__typename"] == "ValidationFailed"
    citizen = await api.gql(
        api.citizen(factories.insz()),
        SUBSCRIBE,
        {"input": {"url": "https://x.example/h", "eventTypes": ["CLAIM_ISSUED"]}},
    )
    assert citizen["data"]["createWebhookSubscription"]["__typename"] == "NotAuthorized"
    from service.errors import ValidationFailed
    from service.webhooks.subscriptions import check_reachable

    for url in (
        "http://hooks.example/x",
        "https://127.0.0.1/x",
        "https://[::1]:8443/x",
        "https://10.1.2.3/x",
        "https://localhost/x",
    ):
        with pytest.raises(ValidationFailed):
            check_reachable(url, allow_private=False)
    check_reachable("https://hooks.example.org/x", allow_private=False)


async def _issue_cohort(
    api: Api, school: Partner, citizens: int, per_citizen: int
) -> dict[str, int]:
    """Each citizen gets ``per_citizen`` claims in one batch; returns each ref's place in it,
    which is the order of that citizen's events."""
    inputs = [
        factories.claim_input(citizen, factories.SKILLS[i], evidence=[])
        for citizen in [factories.insz() for _ in range(citizens)]
        for i in range(per_citizen)
    ]
    body = await api.gql(school.token, ISSUE_MANY, {"inputs": inputs})
    assert body["data"]["issueClaims"]["accepted"] == citizens * per_citizen
    return {row["externalRef"]: place for place, row in enumerate(inputs)}


def _order_kept(receiver: Receiver, places: dict[str, int]) -> None:
    """Per citizen, the first acknowledgement of each event came in the order of the events."""
    acked: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for headers, body in receiver.received:
        event = orjson.loads(body)
        message_id = headers["webhook-id"]
        if message_id in receiver.acknowledged and message_id not in seen:
            seen.add(message_id)
            acked[event["data"]["passportId"]].append(event["data"]["externalRef"])
    assert all(len(refs) > 1 for refs in acked.values())  # order is something to keep
    for refs in acked.values():
        assert refs == sorted(refs, key=places.__getitem__)


async def test_graceful_restart_mid_delivery_delivers_each_event_exactly_once(
    api: Api, engine: AsyncEngine, app_sessions: AppSide
) -> None:
    school = await make_partner(api)
    async with serving(Receiver(delay=0.05)) as receiver, httpx.AsyncClient() as http:
        sub, _ = await subscribe(api, school, receiver.url, ["CLAIM_ISSUED"])
        places = await _issue_cohort(api, school, citizens=40, per_citizen=3)
        for _ in range(3):  # stop three times while requests are in flight, and start again
            d = dispatcher(app_sessions, http, batch=15)
            running = asyncio.create_task(d.run())
            before = len(receiver.received)
            while receiver.in_flight == 0 or len(receiver.received) == before:  # noqa: ASYNC110
                await asyncio.sleep(0.002)
            d.stop()
            await asyncio.wait_for(running, 10)
        await drain(dispatcher(app_sessions, http), engine, sub)
    assert len(receiver.acknowledged) == 120
    assert len(set(receiver.acknowledged)) == 120  # none twice
    assert len(receiver.received) == 120
    _order_kept(receiver, places)


async def test_dispatchers_running_side_by_side_share_the_queue(
    api: Api, engine: AsyncEngine, app_sessions: AppSide
) -> None:
    """Three dispatchers (as in three replicas) drain one queue together: every event is sent
    once, each citizen's in order, and each dispatcher got some of them."""
    school = await make_partner(api)
    async with serving(Receiver(delay=0.02)) as receiver, httpx.AsyncClient() as http:
        sub, _ = await subscribe(api, school, receiver.url, ["CLAIM_ISSUED"])
        places = await _issue_cohort(api, school, citizens=30, per_citizen=3)
        dispatchers = [dispatcher(app_sessions, http, batch=10) for _ in range(3)]
        sent = [0, 0, 0]

        async def work(index: int) -> None:
            while await pending(engine, sub):
                done = await dispatchers[index].run_once()
                sent[index] += done
                if not done:
                    await asyncio.sleep(0.01)

        await asyncio.wait_for(asyncio.gather(*(work(i) for i in range(3))), 60)
    assert len(receiver.acknowledged) == len(set(receiver.acknowledged)) == 90  # once each
    # Each took a share (a try that never reached the receiver, as when a kept-alive
    # connection closes under it, is tried again, so the tries may add up to more).
    assert all(sent) and sum(sent) >= 90, sent
    _order_kept(receiver, places)


async def test_crash_mid_delivery_loses_nothing_and_repeats_only_with_the_same_id(
    api: Api, engine: AsyncEngine, app_sessions: AppSide
) -> None:
    """A dispatcher killed between the receiver's answer and its commit sends those events
    again: with the same webhook-id and the same bytes, which is how receivers recognise them."""
    school = await make_partner(api)
    async with serving(Receiver(delay=0.05)) as receiver, httpx.AsyncClient() as http:
        sub, _ = await subscribe(api, school, receiver.url, ["CLAIM_ISSUED"])
        places = await _issue_cohort(api, school, citizens=30, per_citizen=2)
        d = dispatcher(app_sessions, http)
        running = asyncio.create_task(d.run())
        while len(receiver.received) < 20:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        running.cancel()  # no graceful stop: the round in flight is never recorded
        with pytest.raises(asyncio.CancelledError):
            await running
        await asyncio.sleep(0.2)
        await drain(dispatcher(app_sessions, http), engine, sub)
    ids = [h["webhook-id"] for h, _ in receiver.received]
    assert set(receiver.acknowledged) == set(ids) and len(set(ids)) == 60  # nothing lost
    assert len(ids) > 60  # the crash really left answered events unrecorded
    bodies: dict[str, bytes] = {}
    for headers, body in receiver.received:
        assert bodies.setdefault(headers["webhook-id"], body) == body
    _order_kept(receiver, places)
    async with engine.connect() as conn:
        delivered = await conn.scalar(
            select(func.count()).where(
                WebhookDelivery.subscription_id == uuid.UUID(sub),
                WebhookDelivery.status == "delivered",
            )
        )
    assert delivered == 60


def test_backoff_doubles_up_to_its_cap_and_gives_up() -> None:
    policy = RetryPolicy(base_seconds=10, max_seconds=100, max_attempts=5)
    now = clock.now()
    delays = [(policy.next_attempt(n, now) - now).total_seconds() for n in range(1, 5)]  # type: ignore[operator]
    for delay, full in zip(delays, (10, 20, 40, 80), strict=True):
        assert full / 2 <= delay <= full
    assert policy.next_attempt(5, now) is None
    capped = RetryPolicy(base_seconds=10, max_seconds=100, max_attempts=50).next_attempt(20, now)
    assert capped is not None and capped - now <= timedelta(seconds=100)


async def test_secrets_are_sealed_at_rest(
    api: Api, engine: AsyncEngine, app_sessions: AppSide
) -> None:
    school = await make_partner(api)
    async with serving(Receiver()) as receiver, httpx.AsyncClient() as http:
        sub, secret = await subscribe(api, school, receiver.url)
        other, _ = await subscribe(api, school, receiver.url)
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(WebhookSubscription.id, WebhookSubscription.secret).where(
                    WebhookSubscription.id.in_([uuid.UUID(sub), uuid.UUID(other)])
                )
            )
            stored = {row.id: row.secret for row in rows}
        sealed = stored[uuid.UUID(sub)]
        assert secret.startswith("whsec_") and secret not in sealed
        assert secret.split("_", 1)[1] not in sealed
        assert app_sessions.box.open(sealed, uuid.UUID(sub)) == secret
        with pytest.raises(SecretUnreadable):  # copied into another row, it does not open
            app_sessions.box.open(sealed, uuid.UUID(other))
        with pytest.raises(SecretUnreadable):  # nor under another key
            SecretBox(b"another key entirely, 32 chars long").open(sealed, uuid.UUID(sub))

        # A dispatcher holding another key sends nothing unsigned: it records why.
        await api.gql(school.token, ISSUE, {"input": factories.claim_input(factories.insz())})
        wrong = AppSide(app_sessions.sessions, SecretBox(b"not the key the service sealed with"))
        assert await dispatcher(wrong, http, attempts=1).run_once() > 0
        assert receiver.received == []
        async with engine.connect() as conn:
            errors = list(
                await conn.scalars(
                    select(WebhookDelivery.last_error).where(
                        WebhookDelivery.subscription_id == uuid.UUID(sub)
                    )
                )
            )
        assert errors and all("does not open" in (e or "") for e in errors)
