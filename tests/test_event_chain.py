"""Every state change is an event in the citizen's hash chain; tampering is detected."""

from __future__ import annotations

import uuid
from itertools import pairwise

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.engine import session_factory
from service.events.chain import GENESIS, verify_chain
from service.models import CitizenEvent, Claim
from tests import factories
from tests.graphql_client import Api, Partner
from tests.test_claims_api import REVOKE, SUPERSEDE, issue


async def _citizen_of(engine: AsyncEngine, claim_id: str) -> uuid.UUID:
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(Claim.citizen_id).where(Claim.claim_id == uuid.UUID(claim_id))
        )
    assert found is not None
    return found


async def _events(engine: AsyncEngine, citizen_id: uuid.UUID) -> list[CitizenEvent]:
    async with session_factory(engine)() as session:
        rows = await session.scalars(
            select(CitizenEvent)
            .where(CitizenEvent.citizen_id == citizen_id)
            .order_by(CitizenEvent.seq)
        )
        return list(rows)


async def test_issue_revoke_supersede_are_chained(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen = factories.insz()
    first = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    second = (await issue(api, school, factories.claim_input(citizen, factories.SQL)))["claim"]
    await api.gql(school.token, REVOKE, {"input": {"claimId": second["id"], "reason": "mistake"}})
    data = {
        k: v
        for k, v in factories.claim_input(citizen).items()
        if k not in ("insz", "competenceUri")
    }
    await api.gql(school.token, SUPERSEDE, {"input": {**data, "claimId": first["id"]}})
    citizen_id = await _citizen_of(engine, first["id"])
    events = await _events(engine, citizen_id)
    assert [e.event_type for e in events] == [
        "claim.issued",
        "claim.issued",
        "claim.revoked",
        "claim.issued",
        "claim.superseded",
    ]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in pairwise(events))
    async with session_factory(engine)() as session:
        assert await verify_chain(session, citizen_id) == []


async def test_tampering_is_reported(api: Api, school: Partner, engine: AsyncEngine) -> None:
    citizen = factories.insz()
    claim = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    await issue(api, school, factories.claim_input(citizen, factories.SQL))
    citizen_id = await _citizen_of(engine, claim["id"])
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE citizen_events "
                "SET payload = jsonb_set(payload, '{acquiredOn}', '\"1999-01-01\"') "
                "WHERE citizen_id = :c AND seq = 1"
            ),
            {"c": citizen_id},
        )
    async with session_factory(engine)() as session:
        breaks = await verify_chain(session, citizen_id)
    assert [(b.seq, b.reason) for b in breaks] == [(1, "hash does not match content")]
