"""Every state change is an event in the citizen's hash chain; tampering is detected."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from typer.testing import CliRunner

from service import clock
from service.cli import app as cli
from service.db.engine import create_engine, session_factory
from service.events.chain import GENESIS, append_event, event_hash, hash_parts, verify_chain
from service.models import CitizenEvent, Claim
from service.models.enums import EventType
from service.settings import get_settings
from tests import factories
from tests.citizen_api import REVOKE_GRANT, grant
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
    assert await verify_chain(engine, citizen_id) == []


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
    breaks = await verify_chain(engine, citizen_id)
    assert [(b.seq, b.reason) for b in breaks] == [
        (1, "hash does not match content"),
        (None, f"claim {claim['id']} differs from its event"),
    ]
    await _restore(engine, citizen_id)  # later tests verify the whole database


TAMPER = (
    "UPDATE citizen_events "
    "SET payload = jsonb_set(payload, '{acquiredOn}', to_jsonb(CAST(:v AS text))) "
    "WHERE citizen_id = :c AND seq = 1"
)
VERIFY = """
query($id: ID) {
  verifyEventChains(citizenId: $id) {
    citizensChecked eventsChecked intact breaks { citizenId seq reason }
  }
}"""


async def _tampered_citizen(api: Api, school: Partner, engine: AsyncEngine) -> uuid.UUID:
    claim = (await issue(api, school, factories.claim_input(factories.insz())))["claim"]
    citizen_id = await _citizen_of(engine, claim["id"])
    async with engine.begin() as conn:
        await conn.execute(text(TAMPER), {"c": citizen_id, "v": "1999-01-01"})
    return citizen_id


async def _restore(engine: AsyncEngine, citizen_id: uuid.UUID) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(TAMPER), {"c": citizen_id, "v": "2020-06-30"})


async def test_admin_query_reports_breaks(api: Api, school: Partner, engine: AsyncEngine) -> None:
    citizen_id = await _tampered_citizen(api, school, engine)
    try:
        body = await api.gql(api.admin(), VERIFY, {"id": str(citizen_id)})
        report = body["data"]["verifyEventChains"]
        assert report["intact"] is False and report["eventsChecked"] == 1
        assert report["breaks"][0] == {
            "citizenId": str(citizen_id),
            "seq": 1,
            "reason": "hash does not match content",
        }
        denied = await api.gql(school.token, VERIFY, {"id": str(citizen_id)})
        assert denied["errors"][0]["extensions"]["code"] == "NOT_AUTHORIZED"
    finally:
        await _restore(engine, citizen_id)
    body = await api.gql(api.admin(), VERIFY, {"id": str(citizen_id)})
    assert body["data"]["verifyEventChains"]["intact"] is True


async def test_deleted_events_and_rows_written_behind_the_back_are_found(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    """A chain cannot see its own tail cut off; the cross-check with the claims can."""
    citizen = factories.insz()
    first = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    second = (await issue(api, school, factories.claim_input(citizen, factories.SQL)))["claim"]
    citizen_id = await _citizen_of(engine, first["id"])
    async with engine.begin() as conn:
        saved = (
            (
                await conn.execute(
                    text("SELECT * FROM citizen_events WHERE citizen_id = :c AND seq = 2"),
                    {"c": citizen_id},
                )
            )
            .mappings()
            .one()
        )
        await conn.execute(
            text("DELETE FROM citizen_events WHERE citizen_id = :c AND seq = 2"), {"c": citizen_id}
        )
    try:
        breaks = await verify_chain(engine, citizen_id)
        assert [(b.seq, b.reason) for b in breaks] == [(None, f"claim {second['id']} has no event")]
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO citizen_events VALUES (:citizen_id, :seq, :event_id, "
                    ":event_type, :occurred_at, CAST(:payload AS jsonb), :prev_hash, :hash)"
                ),
                {**saved, "payload": json.dumps(saved["payload"])},
            )
    assert await verify_chain(engine, citizen_id) == []


def test_verify_chain_command_reports_breaks(database_url: str, tmp_path: Path) -> None:
    """`passport verify-chain` as an operator runs it: exit code 1 and the break, by citizen
    or over the whole database, then 0 once the chain is whole again."""
    citizen_id = asyncio.run(_tamper_with_engine(database_url))
    env = {"PASSPORT_DATABASE_URL": database_url, "PASSPORT_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    get_settings.cache_clear()
    try:
        one = runner.invoke(cli, ["verify-chain", "--citizen", str(citizen_id)], env=env)
        assert one.exit_code == 1, one.output
        assert f"BREAK citizen {citizen_id} seq 1: hash does not match content" in one.output
        everyone = runner.invoke(cli, ["verify-chain"], env=env)
        assert everyone.exit_code == 1
        assert f"BREAK citizen {citizen_id} seq 1" in everyone.output
        asyncio.run(_restore_with_engine(database_url, citizen_id))
        whole = runner.invoke(cli, ["verify-chain", "--citizen", str(citizen_id)], env=env)
        assert whole.exit_code == 0, whole.output
        assert "1 citizens, 1 events checked: intact" in whole.output
        bad = runner.invoke(cli, ["verify-chain", "--citizen", "nope"], env=env)
        assert bad.exit_code == 2
    finally:
        get_settings.cache_clear()


async def _tamper_with_engine(url: str) -> uuid.UUID:
    """A one-event chain, then tampered, from a loop of its own (as the command runs)."""
    own = create_engine(url)
    try:
        async with own.begin() as conn:
            citizen_id = await conn.scalar(text("SELECT gen_random_uuid()"))
            await conn.execute(
                text("INSERT INTO citizens (citizen_id) VALUES (:c)"), {"c": citizen_id}
            )
        async with session_factory(own)() as session, session.begin():
            await append_event(
                session,
                citizen_id,
                EventType.CLAIM_SUPERSEDED,
                {"claimId": "x", "supersededBy": "y"},
                clock.now(),
            )
        async with own.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE citizen_events SET payload = jsonb_set(payload, '{supersededBy}', "
                    "'\"z\"') WHERE citizen_id = :c"
                ),
                {"c": citizen_id},
            )
        return citizen_id
    finally:
        await own.dispose()


async def _restore_with_engine(url: str, citizen_id: uuid.UUID) -> None:
    own = create_engine(url)
    try:
        async with own.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE citizen_events SET payload = jsonb_set(payload, '{supersededBy}', "
                    "'\"y\"') WHERE citizen_id = :c"
                ),
                {"c": citizen_id},
            )
    finally:
        await own.dispose()


async def _triggers_off(conn: AsyncConnection) -> None:
    """For the rest of the transaction, on every node: Citus passes SET LOCAL on to the
    workers only when told to (on plain PostgreSQL the first setting is inert)."""
    await conn.execute(text("SET LOCAL citus.propagate_set_commands = 'local'"))
    await conn.execute(text("SET LOCAL session_replication_role = replica"))


async def test_rows_edited_behind_the_back_no_longer_match_their_events(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    """With triggers off and the owner's rights, what no application role can do: change a
    claim's facts and un-revoke a consent. The chain itself is intact; the cross-check is not."""
    citizen = factories.insz()
    claim = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    me = api.citizen(citizen)
    made = await grant(api, me)
    await api.gql(me, REVOKE_GRANT, {"id": made["grant"]["id"]})
    citizen_id = await _citizen_of(engine, claim["id"])
    edits = (
        ("UPDATE claims SET acquired_on = '2001-01-01' WHERE claim_id = :x", claim["id"]),
        ("UPDATE access_grants SET revoked_at = NULL WHERE grant_id = :x", made["grant"]["id"]),
    )
    async with engine.begin() as conn:
        await _triggers_off(conn)
        for statement, target in edits:
            await conn.execute(text(statement), {"x": target})
    try:
        breaks = {b.reason for b in await verify_chain(engine, citizen_id)}
        assert breaks == {
            f"claim {claim['id']} differs from its event",
            f"event of revocation of grant of {made['grant']['id']} but none recorded",
        }
    finally:
        async with engine.begin() as conn:
            await _triggers_off(conn)
            await conn.execute(
                text("UPDATE claims SET acquired_on = '2020-06-30' WHERE claim_id = :x"),
                {"x": claim["id"]},
            )
            await conn.execute(
                text("UPDATE access_grants SET revoked_at = now() WHERE grant_id = :x"),
                {"x": made["grant"]["id"]},
            )
    assert await verify_chain(engine, citizen_id) == []


@settings(max_examples=200, deadline=None)
@given(
    payload=st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.one_of(st.text(max_size=20), st.integers(-(2**31), 2**31), st.none()),
        max_size=6,
    ),
    seq=st.integers(1, 10**12),
)
def test_the_spliced_canonical_form_is_rfc_8785(payload: dict[str, object], seq: int) -> None:
    """What the database hashes ('{"citizenId":"' + citizen + middle + seq + tail) is exactly
    the event's canonical JSON, whatever the payload holds (even keys named seq or type)."""
    citizen, event_id = uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 12, 3, 21, 0, tzinfo=UTC)
    middle, tail = hash_parts(
        event_id=event_id, event_type="claim.issued", occurred_at=at, payload=payload
    )
    spliced = ('{"citizenId":"' + str(citizen) + middle + str(seq) + tail).encode()
    assert hashlib.sha256(GENESIS + spliced).digest() == event_hash(
        GENESIS,
        citizen_id=citizen,
        seq=seq,
        event_id=event_id,
        event_type="claim.issued",
        occurred_at=at,
        payload=payload,
    )
