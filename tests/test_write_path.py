"""The hot writes on the request's asyncpg connection (service/db/raw.py): in the session's
own transaction, with the same digest as before, one citizen for concurrent first claims
and grants, and a grant in one database call."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service import canonical
from service.auth.principal import Principal
from service.claims import service as claims
from service.claims.rules import ClaimContent
from service.consent import service as consent
from service.db.engine import session_factory
from service.db.raw import driver
from service.errors import CitizenGone, Conflict
from service.identity.numbers import insz_hash
from service.models import AccessGrant, ApiClient, Citizen, CitizenIdentity, Claim
from service.models.enums import GranteeKind, PrincipalKind
from service.settings import Settings
from service.validation import validate
from tests import factories
from tests.citizen_api import ERASE, grant, grant_input
from tests.conftest import StatementCounter, make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue


async def _partner(engine: AsyncEngine, school: Partner) -> Principal:
    async with engine.connect() as conn:
        client_pk = await conn.scalar(
            select(ApiClient.id).where(ApiClient.client_id == school.client_id)
        )
    return Principal(
        kind=PrincipalKind.PARTNER,
        subject=school.client_id,
        scopes=frozenset({"claims:write"}),
        client_pk=client_pk,
        organisation_id=school.organisation_id,
        organisation_kind="education_provider",
    )


async def test_a_raw_write_as_first_statement_is_undone_with_the_session(
    engine: AsyncEngine, school: Partner, settings: Settings
) -> None:
    """The raw statements run in the transaction the session rolls back, even when nothing
    went through the session before them (the adapter is asked to begin)."""
    citizen = factories.insz()
    data = {
        "insz": citizen,
        "competence_uri": factories.PYTHON,
        "assessment_method": "exam",
        "learning_context": "formal",
        "acquired_on": "2020-01-01",
        "external_ref": factories.ref(),
    }
    partner = await _partner(engine, school)
    async with session_factory(engine)() as session:
        outcome = await claims.issue_claim(session, partner, data, settings.hmac_key())
        assert outcome.created
        await session.rollback()
    async with engine.connect() as conn:
        written = await conn.scalar(
            select(func.count()).select_from(Claim).where(Claim.claim_id == outcome.claim_id)
        )
        identities = await conn.scalar(
            select(func.count())
            .select_from(CitizenIdentity)
            .where(CitizenIdentity.insz_hash == insz_hash(citizen, settings.hmac_key()))
        )
    assert (written, identities) == (0, 0)


def test_the_digest_made_around_the_citizen_is_the_digest_of_the_whole_request() -> None:
    """Retries of claims recorded before the database made the digest must still match."""
    content = ClaimContent.model_validate(
        {
            "competence_uri": factories.PYTHON,
            "assessment_method": "exam",
            "learning_context": "formal",
            "acquired_on": "2020-01-01",
            "external_ref": 'ref"citizen":"x"',
            "context": 'Cours d\'été: "citizen"',
        }
    )
    citizen, supersedes = uuid.uuid4(), uuid.uuid4()
    for older in (None, supersedes):
        body = content.model_dump(mode="json", exclude={"insz"})
        body["citizen"] = str(citizen)
        body["supersedes"] = str(older) if older else None
        expected = hashlib.sha256(canonical.dumps(body)).digest()
        assert claims.claim_digest(content, citizen, older) == expected


async def test_concurrent_first_claims_of_a_new_citizen_make_one_citizen(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen = factories.insz()
    results = await asyncio.gather(
        *(issue(api, school, factories.claim_input(citizen, uri)) for uri in factories.SKILLS)
    )
    assert all(r["created"] for r in results), results
    ids = [uuid.UUID(r["claim"]["id"]) for r in results]
    async with engine.connect() as conn:
        citizens = await conn.scalar(
            select(func.count(func.distinct(Claim.citizen_id))).where(Claim.claim_id.in_(ids))
        )
    assert citizens == 1


async def test_a_grant_is_one_write_call_after_one_read(
    api: Api, count_statements: StatementCounter
) -> None:
    """grantAccess, to an organisation and as a share link, for a citizen new to the service
    and for one already known: the reads before it (one statement), then the write in one
    call to ``passport_record_grant`` (migration 0015), then COMMIT; a faithful retry sends
    no write at all."""
    partner_org = await make_partner(api, kind="EMPLOYER")
    citizen = factories.insz()
    token = api.citizen(citizen)
    for overrides in (
        {"granteeKind": "ORGANISATION", "organisationId": str(partner_org.organisation_id)},
        {},  # a share link, for the citizen the first grant made
    ):
        data = grant_input(**overrides)
        count_statements.statements.clear()
        result = await grant(api, token, **data)
        await asyncio.sleep(0.05)  # asyncpg calls its loggers soon after, not at once
        assert result["__typename"] == "AccessGranted" and result["created"], result
        calls = [s for s in count_statements.statements if "passport_record_grant" in s]
        reads = [s for s in count_statements.statements if "FROM citizen_identities" in s]
        assert (len(calls), len(reads)) == (1, 1), count_statements.statements
        others = {s for s in count_statements.statements if s not in calls + reads}
        # ";": the pool's ping, when db_pool_pre_ping is on
        assert others <= {"BEGIN;", "COMMIT;", ";"}, count_statements.statements
        count_statements.statements.clear()
        again = await grant(api, token, **data)
        await asyncio.sleep(0.05)
        assert again["created"] is False and again["grant"] == result["grant"], again
        assert not [s for s in count_statements.statements if "passport_record_grant" in s], (
            count_statements.statements
        )


async def test_concurrent_grants_of_a_new_citizen_make_one_citizen_and_one_grant_per_key(
    api: Api, engine: AsyncEngine, settings: Settings
) -> None:
    """Five first grants at once, three of them under one key: the database makes the citizen
    once, and the key's grant once; the two retries under it get that grant back."""
    citizen = factories.insz()
    token = api.citizen(citizen)
    shared = grant_input()
    inputs = [shared, shared, shared, grant_input(), grant_input()]
    results = await asyncio.gather(*(grant(api, token, **data) for data in inputs))
    assert [r["__typename"] for r in results] == ["AccessGranted"] * 5, results
    assert sorted(r["created"] for r in results[:3]) == [False, False, True], results
    assert len({r["grant"]["id"] for r in results[:3]}) == 1, results
    ids = [uuid.UUID(r["grant"]["id"]) for r in results]
    async with engine.connect() as conn:
        citizens, grants = (
            await conn.execute(
                select(
                    func.count(func.distinct(AccessGrant.citizen_id)),
                    func.count(func.distinct(AccessGrant.grant_id)),
                ).where(AccessGrant.grant_id.in_(ids))
            )
        ).one()
        identity = await conn.scalar(
            select(CitizenIdentity.citizen_id).where(
                CitizenIdentity.insz_hash == insz_hash(citizen, settings.hmac_key())
            )
        )
        owner = await conn.scalar(
            select(AccessGrant.citizen_id).where(AccessGrant.grant_id.in_(ids)).limit(1)
        )
    assert (citizens, grants, owner) == (1, 3, identity)


async def _read_before_grant(
    engine: AsyncEngine, settings: Settings, citizen: str, request_key: str
) -> consent.BeforeGrant:
    """What grantAccess reads before its call, as the citizen, in a transaction of its own:
    the tests then change the world before they make the call."""
    principal = Principal(
        kind=PrincipalKind.CITIZEN, subject=citizen, scopes=frozenset(), insz=citizen
    )
    async with session_factory(engine)() as session:
        before = await consent.before_grant(session, principal, settings.hmac_key(), request_key)
        await session.rollback()
    return before


async def test_a_grant_for_a_citizen_erased_since_its_read_never_brings_them_back(
    api: Api, engine: AsyncEngine, settings: Settings
) -> None:
    """The read before a grant found the citizen; an erasure then commits before the grant's
    call. The call finds them gone (the mutation then runs again, for a new passport): it
    never makes the erased citizen again under their old id."""
    citizen = factories.insz()
    token = api.citizen(citizen)
    await grant(api, token)
    before = await _read_before_grant(engine, settings, citizen, "after-erasure")
    assert before.citizen_id is not None
    erased = await api.gql(token, ERASE)
    assert erased["data"]["requestErasure"]["__typename"] == "ErasureCompleted", erased
    now = datetime.now(UTC)
    spec = validate(
        consent.GrantInput,
        {
            "grantee_kind": GranteeKind.LINK,
            "purpose": "job application",
            "expires_at": now + timedelta(days=30),
            "idempotency_key": "after-erasure",
        },
    )
    async with session_factory(engine)() as session:
        with pytest.raises(CitizenGone):
            await consent.record_grant(session, before, consent.new_grant(spec, None, None, now))
        await session.rollback()
    async with engine.connect() as conn:
        back = await conn.scalar(
            select(func.count()).select_from(Citizen).where(Citizen.citizen_id == before.citizen_id)
        )
    assert back == 0


async def test_a_key_taken_after_the_read_is_told_apart_under_the_lock(
    api: Api, engine: AsyncEngine, settings: Settings
) -> None:
    """Another request under the key wins between the read and the call: the call finds the
    key taken under the lock and writes nothing; the same request gets that grant back, a
    different one is a conflict naming it."""
    citizen = factories.insz()
    token = api.citizen(citizen)
    await grant(api, token)  # the citizen exists
    data = grant_input()
    before = await _read_before_grant(engine, settings, citizen, data["idempotencyKey"])
    assert before.citizen_id is not None and before.earlier is None
    won = await grant(api, token, **data)  # the winner, after the read
    now = datetime.now(UTC)
    for purpose, expected in (("job application", "retry"), ("something else", "conflict")):
        spec = validate(
            consent.GrantInput,
            {
                "grantee_kind": GranteeKind.LINK,
                "purpose": purpose,
                "expires_at": datetime.fromisoformat(data["expiresAt"]),
                "idempotency_key": data["idempotencyKey"],
            },
        )
        async with session_factory(engine)() as session:
            if expected == "retry":
                outcome = await consent.record_grant(
                    session, before, consent.new_grant(spec, None, None, now)
                )
                assert not outcome.created and outcome.share_token is None
                assert str(outcome.grant.grant_id) == won["grant"]["id"]
            else:
                with pytest.raises(Conflict) as refused:
                    await consent.record_grant(
                        session, before, consent.new_grant(spec, None, None, now)
                    )
                assert refused.value.existing_id == won["grant"]["id"]
            await session.rollback()
    async with engine.connect() as conn:
        grants = await conn.scalar(
            select(func.count())
            .select_from(AccessGrant)
            .where(
                AccessGrant.citizen_id == before.citizen_id,
                AccessGrant.request_key == data["idempotencyKey"],
            )
        )
    assert grants == 1


# The statement that reads a claim back as the answer shows it (service/claims/views.py).
_READ_BACK = "SELECT claims.citizen_id, claims.claim_id"
_ISSUE_IDS = """mutation($input: IssueClaimInput!) { issueClaim(input: $input) { __typename
  ... on ClaimIssued { created claim { __typename id } ... on ClaimIssued { claim { ref: id } } }
  ... on Error { code } } }"""
_ISSUE_FRAGMENT = """mutation($input: IssueClaimInput!) { issueClaim(input: $input) { ...Made } }
fragment Made on ClaimIssued { created claim { id ...More } }
fragment More on Claim { status externalRef }"""
_SUPERSEDE_IDS = """mutation($input: SupersedeClaimInput!) { supersedeClaim(input: $input) {
  __typename ... on ClaimSuperseded { created claim { id } } } }"""


async def _written(engine: AsyncEngine, *refs: str) -> dict[str, tuple[str, str | None]]:
    """External ref: (claim id, the id of the claim it supersedes) as stored."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(Claim.external_ref, Claim.claim_id, Claim.supersedes_claim_id).where(
                Claim.external_ref.in_(refs)
            )
        )
        return {ref: (str(c), str(s) if s else None) for ref, c, s in rows}


async def test_a_write_answered_with_the_claims_id_alone_reads_nothing_back(
    api: Api, engine: AsyncEngine, school: Partner, count_statements: StatementCounter
) -> None:
    """``claim { id }`` (with ``__typename`` or an alias, inside a fragment too) is answered
    from the write itself: no statement reads the claim back, none opens a transaction, and
    the id is the claim's, for a new claim, a retry and a newer claim; anything more is read
    back as before."""
    citizen = factories.insz()
    data = factories.claim_input(citizen)
    count_statements.statements.clear()
    made = (await api.gql(school.token, _ISSUE_IDS, {"input": data}))["data"]["issueClaim"]
    await asyncio.sleep(0.05)  # asyncpg calls its loggers soon after, not at once
    assert made["__typename"] == "ClaimIssued" and made["created"] is True, made
    claim_id = made["claim"]["id"]
    assert made["claim"] == {"__typename": "Claim", "id": claim_id, "ref": claim_id}, made
    # Three statements and no transaction: the caller's lookup, the competence, the call,
    # each a unit of work by itself (migration 0016: a refusal undoes what the call wrote).
    sent = count_statements.statements
    assert len(sent) == 3 and "passport_issue_claim_or_refuse" in sent[-1], sent
    assert not {"BEGIN;", "COMMIT;"} & set(sent), sent
    assert await _written(engine, data["externalRef"]) == {data["externalRef"]: (claim_id, None)}

    retry = (await api.gql(school.token, _ISSUE_IDS, {"input": data}))["data"]["issueClaim"]
    assert retry["created"] is False and retry["claim"]["id"] == claim_id, retry

    count_statements.statements.clear()
    full = (await api.gql(school.token, _ISSUE_FRAGMENT, {"input": data}))["data"]["issueClaim"]
    await asyncio.sleep(0.05)
    assert full == {
        "created": False,
        "claim": {"id": claim_id, "status": "ACTIVE", "externalRef": data["externalRef"]},
    }
    # Read back in the write's transaction, under its citizen lock: no erasure in between.
    assert [s for s in count_statements.statements if s.startswith(_READ_BACK)]
    assert {"BEGIN;", "COMMIT;"} <= set(count_statements.statements)

    newer = {k: v for k, v in data.items() if k not in ("insz", "competenceUri")}
    newer.update(claimId=claim_id, externalRef=factories.ref())
    count_statements.statements.clear()
    superseded = await api.gql(school.token, _SUPERSEDE_IDS, {"input": newer})
    await asyncio.sleep(0.05)
    answer = superseded["data"]["supersedeClaim"]
    assert answer["__typename"] == "ClaimSuperseded" and answer["created"] is True, superseded
    # The claim superseded is read (whose it is, what it is about); the new one is not.
    assert len([s for s in count_statements.statements if s.startswith(_READ_BACK)]) == 1
    stored = await _written(engine, newer["externalRef"])
    assert stored == {newer["externalRef"]: (answer["claim"]["id"], claim_id)}


async def test_the_drivers_connection_is_asked_for_once_per_transaction_and_savepoint(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``driver`` keeps the connection for the transaction it was asked in: a commit ends it
    (the next statement runs in a new transaction), and a savepoint is begun when asked inside
    one, so a failure there undoes the savepoint alone."""
    asked: list[object] = []
    connection = AsyncSession.connection

    async def counted(self: AsyncSession, *args: Any, **kwargs: Any) -> Any:
        asked.append(self)
        return await connection(self, *args, **kwargs)

    monkeypatch.setattr(AsyncSession, "connection", counted)
    async with session_factory(engine)() as session:
        first = await driver(session)
        assert await driver(session) is first and len(asked) == 1
        xid = await first.fetchval("SELECT pg_current_xact_id()::text")
        await session.commit()
        after = await (await driver(session)).fetchval("SELECT pg_current_xact_id()::text")
        assert after != xid and len(asked) == 2
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with session.begin_nested():
                await (await driver(session)).fetchval("SELECT 1 / 0")
        assert await (await driver(session)).fetchval("SELECT 1") == 1
        assert await (await driver(session)).fetchval("SELECT pg_current_xact_id()::text") == after
