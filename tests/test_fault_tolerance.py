"""Writes survive the database dropping every connection mid-flight: 8 clients issue claims
with idempotency keys and retry on any failure; afterwards every acknowledged claim is present
exactly once, nothing else was written, and every hash chain verifies."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import asyncpg
import httpx
from sqlalchemy import select
from sqlalchemy.engine import make_url

from service.db.embedded import asyncpg_dsn
from service.db.engine import create_engine
from service.events.chain import verify_chains
from service.models import Claim, ClaimRef
from service.settings import Settings
from tests import factories
from tests.conftest import make_partner
from tests.graphql_client import Api
from tests.test_bulk_claims import ISSUE_MANY, app_with

ISSUE = """
mutation($input: IssueClaimInput!) {
  issueClaim(input: $input) { __typename ... on ClaimIssued { claim { id externalRef } } }
}"""
CLIENTS = 8
CLAIMS_PER_CLIENT = 30
KILLS = 6


async def _kill_all_connections(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, server_settings={"application_name": "fault-injector"})
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name = 'competence-passport'"
        )
        return int(killed)
    finally:
        await conn.close()


async def test_acknowledged_claims_survive_connections_killed_mid_write(
    api: Api, settings: Settings, database_url: str
) -> None:
    partner = await make_partner(api)
    uris = factories.SKILLS
    citizens = [factories.insz() for _ in range(12)]  # shared, so writers contend for locks
    acknowledged: dict[str, str] = {}  # externalRef -> claim id
    attempts = failures = 0
    dsn = asyncpg_dsn(make_url(database_url))

    async with app_with(settings, db_pool_size=4, db_max_overflow=4) as service:

        async def send(query: str, variables: dict[str, Any]) -> dict[str, Any] | None:
            nonlocal attempts, failures
            attempts += 1
            try:
                response = await service.http.post(
                    "/graphql",
                    json={"query": query, "variables": variables},
                    headers={"Authorization": f"Bearer {partner.token}"},
                )
            except (httpx.HTTPError, OSError):
                failures += 1
                return None
            body = response.json()
            if response.status_code != 200 or body.get("errors"):
                failures += 1
                return None
            return body["data"]

        async def writer(n: int) -> None:
            rng = random.Random(n)
            for i in range(CLAIMS_PER_CLIENT):
                data = factories.claim_input(
                    rng.choice(citizens), uris[(n + i) % len(uris)], evidence=[]
                )
                if i % 10 == 9:  # now and then a batch, retried as a whole
                    batch = [data, factories.claim_input(rng.choice(citizens), uris[i % 5])]
                    while (done := await send(ISSUE_MANY, {"inputs": batch})) is None:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                    for row in done["issueClaims"]["results"]:
                        acknowledged[row["claim"]["externalRef"]] = row["claim"]["id"]
                    continue
                # The same idempotency key, until acknowledged.
                while (done := await send(ISSUE, {"input": data})) is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                claim = done["issueClaim"]["claim"]
                acknowledged[claim["externalRef"]] = claim["id"]

        async def injector() -> int:
            total = 0
            for _ in range(KILLS):
                await asyncio.sleep(0.15)
                total += await _kill_all_connections(dsn)
            return total

        writers = asyncio.gather(*(writer(n) for n in range(CLIENTS)))
        killed = await injector()
        await asyncio.wait_for(writers, 120)

    assert killed >= KILLS  # connections really were dropped mid-flight
    assert failures > 0, "no request failed: the faults never hit a write"
    expected = CLIENTS * (CLAIMS_PER_CLIENT + CLAIMS_PER_CLIENT // 10)
    assert len(acknowledged) == expected

    engine = create_engine(database_url)  # fresh connections: the old ones were killed too
    try:
        async with engine.connect() as conn:
            stored = (
                await conn.execute(
                    select(Claim.external_ref, Claim.claim_id).where(
                        Claim.organisation_id == partner.organisation_id
                    )
                )
            ).all()
            refs = (
                await conn.execute(
                    select(ClaimRef.external_ref, ClaimRef.claim_id).where(
                        ClaimRef.organisation_id == partner.organisation_id
                    )
                )
            ).all()
            owners = set(
                await conn.scalars(
                    select(Claim.citizen_id)
                    .where(Claim.organisation_id == partner.organisation_id)
                    .distinct()
                )
            )
        # Exactly once each, with the id the client was given, and nothing unacknowledged.
        assert sorted(ref for ref, _ in stored) == sorted(acknowledged)
        assert {ref: str(cid) for ref, cid in stored} == acknowledged
        assert {ref: str(cid) for ref, cid in refs} == acknowledged
        for owner in owners:
            report = await verify_chains(engine, owner)
            assert report.breaks == [], report.breaks
        assert len(owners) == len(citizens)
        assert all(isinstance(o, uuid.UUID) for o in owners)
    finally:
        await engine.dispose()
