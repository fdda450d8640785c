"""issueClaims: many claims in one transaction, with the rules and idempotency of one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from service.auth.keys import load_or_create_dev_key
from service.events.chain import verify_chain
from service.identity.numbers import insz_hash
from service.models import CitizenEvent, CitizenIdentity, Claim
from service.settings import Settings
from tests import factories
from tests.conftest import make_partner
from tests.databases import on_citus
from tests.graphql_client import Api, Partner

ISSUE_MANY = """
mutation($inputs: [IssueClaimInput!]!) {
  issueClaims(inputs: $inputs) {
    __typename
    ... on ClaimsIssued {
      accepted duplicates rejected
      results {
        __typename
        ... on ClaimIssued { created claim { id externalRef status competence { uri } } }
        ... on Error { code message }
        ... on ValidationFailed { problems { field code } }
        ... on Conflict { existingId }
      }
    }
    ... on Error { code message }
    ... on ValidationFailed { problems { field code } }
  }
}"""


async def issue_many(api: Api, partner: Partner, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    body = await api.gql(partner.token, ISSUE_MANY, {"inputs": inputs})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["issueClaims"]
    return result


async def test_batch_accepts_rejects_and_retries_row_by_row(api: Api, engine: AsyncEngine) -> None:
    partner = await make_partner(api)
    alice, bob = factories.insz(), factories.insz()
    good = [
        factories.claim_input(alice, factories.PYTHON),
        factories.claim_input(alice, factories.SQL),
        factories.claim_input(bob, factories.TEAMWORK),
    ]
    bad_date = factories.claim_input(bob, factories.SQL, acquiredOn="2999-01-01")
    not_a_skill = factories.claim_input(bob, factories.SKILL_GROUP)
    first = await issue_many(api, partner, [*good, bad_date, not_a_skill])
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (3, 0, 2)
    kinds = [r["__typename"] for r in first["results"]]
    assert kinds == ["ClaimIssued"] * 3 + ["ValidationFailed"] * 2
    assert first["results"][3]["problems"][0]["field"] == "inputs.3.acquiredOn"
    assert first["results"][4]["problems"][0]["code"] == "unknown_competence"
    ids = [r["claim"]["id"] for r in first["results"][:3]]
    assert [r["claim"]["externalRef"] for r in first["results"][:3]] == [
        g["externalRef"] for g in good
    ]

    # The same batch again: every good row is a retry, answered with the same claim.
    again = await issue_many(api, partner, [*good, bad_date])
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 3, 1)
    assert [r["claim"]["id"] for r in again["results"][:3]] == ids
    assert all(r["created"] is False for r in again["results"][:3])

    # A ref reused for something else is a conflict naming the claim it belongs to.
    changed = {**good[0], "context": "something else"}
    conflict = await issue_many(api, partner, [changed])
    assert conflict["results"][0]["__typename"] == "Conflict"
    assert conflict["results"][0]["existingId"] == ids[0]

    async with engine.connect() as conn:
        stored = await conn.scalar(
            select(func.count()).where(Claim.claim_id.in_([uuid.UUID(i) for i in ids]))
        )
        citizens = list(
            await conn.scalars(
                select(Claim.citizen_id).where(Claim.claim_id.in_([uuid.UUID(i) for i in ids]))
            )
        )
    assert stored == 3
    for citizen_id in set(citizens):
        assert await verify_chain(engine, citizen_id) == []


async def test_batch_continues_existing_chains_and_repeats_within_a_batch(
    api: Api, engine: AsyncEngine
) -> None:
    partner = await make_partner(api)
    citizen = factories.insz()
    await issue_many(api, partner, [factories.claim_input(citizen, factories.PYTHON)])
    twice = factories.claim_input(citizen, factories.SQL)
    other = factories.claim_input(citizen, factories.ENGLISH)
    result = await issue_many(api, partner, [twice, other, twice, {**twice, "context": "x y"}])
    assert [r["__typename"] for r in result["results"]] == [
        "ClaimIssued",
        "ClaimIssued",
        "ClaimIssued",
        "Conflict",
    ]
    assert result["results"][2]["claim"]["id"] == result["results"][0]["claim"]["id"]
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (2, 1, 1)
    citizen_id = uuid.UUID(
        (await api.gql(partner.token, ISSUE_MANY, {"inputs": [twice]}))["data"]["issueClaims"][
            "results"
        ][0]["claim"]["id"]
    )
    async with engine.connect() as conn:
        owner = await conn.scalar(select(Claim.citizen_id).where(Claim.claim_id == citizen_id))
        seqs = list(
            await conn.scalars(
                select(CitizenEvent.seq)
                .where(CitizenEvent.citizen_id == owner)
                .order_by(CitizenEvent.seq)
            )
        )
    assert seqs == [1, 2, 3]
    assert owner is not None
    assert await verify_chain(engine, owner) == []


async def test_batch_limits_and_authorization(api: Api) -> None:
    reader = await make_partner(api, "PUBLIC_EMPLOYMENT_SERVICE", ("PASSPORTS_READ",))
    refused = await issue_many(api, reader, [factories.claim_input(factories.insz())])
    assert refused["__typename"] == "NotAuthorized"
    partner = await make_partner(api)
    rows = [factories.claim_input(factories.insz(), evidence=[]) for _ in range(1001)]
    too_many = await issue_many(api, partner, rows)
    assert too_many["__typename"] == "ValidationFailed"
    assert too_many["problems"][0]["code"] == "too_many"


# --- POST /claims:bulk ---------------------------------------------------------------------

NDJSON = "application/x-ndjson"


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


async def upload(
    api: Api, partner: Partner, body: bytes, media_type: str = NDJSON, key: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {partner.token}", "Content-Type": media_type}
    if key:
        headers["Idempotency-Key"] = key
    return await api.http.post("/claims:bulk", content=body, headers=headers)


def report(response: httpx.Response) -> tuple[list[dict[str, Any]], dict[str, int]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(NDJSON)
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert "summary" in lines[-1]
    return lines[:-1], lines[-1]["summary"]


async def test_an_upload_declared_too_large_is_refused_before_any_work(api: Api) -> None:
    declared = str(api.settings.bulk_max_bytes + 1)
    response = await api.http.post(
        "/claims:bulk",
        content=b"",
        headers={"Content-Type": NDJSON, "Content-Length": declared},  # no token at all
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_an_upload_row_naming_a_field_twice_is_rejected(api: Api) -> None:
    partner = await make_partner(api)
    good = factories.claim_input(factories.insz())
    twice = ndjson([good])[:-2] + b', "context": "first", "context": "second"}\n'
    rows, summary = report(await upload(api, partner, twice))
    assert summary == {"rows": 1, "accepted": 0, "duplicates": 0, "rejected": 1}
    assert rows[0]["problems"][0]["message"] == "JSON naming a key twice in one object"


@asynccontextmanager
async def app_with(settings: Settings, **overrides: Any) -> AsyncIterator[Api]:
    configured = settings.model_copy(update=overrides)
    application = create_app(configured)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://bulk") as http:
            yield Api(http=http, key=load_or_create_dev_key(settings.data_dir), settings=configured)


async def test_ndjson_upload_reports_every_line(api: Api, engine: AsyncEngine) -> None:
    partner = await make_partner(api)
    citizen = factories.insz()
    good = factories.claim_input(citizen, factories.PYTHON)
    lowercase = factories.claim_input(
        citizen, factories.SQL, assessmentMethod="exam", learningContext="formal"
    )
    body = b"".join(
        [
            ndjson([good]),
            b"\n",  # blank lines are skipped, but keep their numbers
            b"{not json\n",
            ndjson([factories.claim_input(citizen, acquiredOn="2999-01-01")]),
            ndjson([lowercase, good]),
            ndjson([{**factories.claim_input(citizen), "colour": "blue"}]),
            b"[1, 2]\n",
        ]
    )
    rows, summary = report(await upload(api, partner, body))
    assert summary == {"rows": 7, "accepted": 2, "duplicates": 1, "rejected": 4}
    by_line = {row["line"]: row for row in rows}
    assert sorted(by_line) == [1, 3, 4, 5, 6, 7, 8]
    assert by_line[1]["status"] == "accepted" and by_line[5]["status"] == "accepted"
    assert by_line[6] == {"line": 6, "status": "duplicate", "claimId": by_line[1]["claimId"]}
    assert by_line[3]["problems"][0] == {
        "field": "line 3",
        "message": "not valid JSON",
        "code": "invalid_row",
    }
    assert by_line[4]["problems"][0]["field"] == "line 4.acquiredOn"
    assert by_line[7]["problems"][0]["field"] == "line 7.colour"
    assert by_line[8]["code"] == "VALIDATION_FAILED"
    assert citizen not in response_text(rows)  # the report never repeats a national number

    accepted = [uuid.UUID(by_line[n]["claimId"]) for n in (1, 5)]
    async with engine.connect() as conn:
        owner = await conn.scalar(select(Claim.citizen_id).where(Claim.claim_id == accepted[0]))
        events = await conn.scalar(select(func.count()).where(CitizenEvent.citizen_id == owner))
    assert events == 2
    assert owner is not None and await verify_chain(engine, owner) == []


def response_text(rows: list[dict[str, Any]]) -> str:
    return orjson.dumps(rows).decode()


async def test_csv_upload(api: Api) -> None:
    partner = await make_partner(api)
    citizen = factories.insz()
    evidence = (
        '[{""kind"": ""CERTIFICATE"", ""title"": ""Exam"", ""url"": ""https://example.org/1""}]'
    )
    body = (
        "insz,competenceUri,externalRef,assessmentMethod,learningContext,acquiredOn,"
        "lastUsedOn,proficiencyScale,proficiencyLevel,context,evidence\r\n"
        f'{citizen},{factories.PYTHON},r-1,EXAM,FORMAL,2020-06-30,,EQF,5,"Course, with comma",'
        f'"{evidence}"\r\n'
        f"{citizen},{factories.SQL},r-2,exam,formal,2020-06-30,2019-01-01,,,,\r\n"
        f"{citizen},{factories.ENGLISH},r-3,EXAM,FORMAL\r\n"
        "\r\n"
    ).replace("r-", factories.ref() + "-")
    rows, summary = report(await upload(api, partner, body.encode(), "text/csv"))
    assert summary == {"rows": 3, "accepted": 1, "duplicates": 0, "rejected": 2}
    assert [r["line"] for r in rows] == [2, 3, 4]
    assert rows[1]["problems"][0]["field"] == "line 3.lastUsedOn"
    assert "cells" in rows[2]["problems"][0]["message"]

    bad_header = await upload(api, partner, b"insz,favouriteColour\r\n1,2\r\n", "text/csv")
    assert bad_header.status_code == 422
    assert "favourite_colour" in bad_header.json()["title"]


async def test_idempotency_key_makes_a_retried_upload_a_no_op(
    api: Api, engine: AsyncEngine
) -> None:
    partner = await make_partner(api)
    rows = [factories.claim_input(factories.insz()) for _ in range(5)]
    body = ndjson(rows) + b"oops\n"
    key = "nightly-" + factories.ref()
    first = await upload(api, partner, body, key=key)
    _, summary = report(first)
    assert summary["accepted"] == 5

    async def totals() -> tuple[int, int]:
        async with engine.connect() as conn:
            claims = await conn.scalar(
                select(func.count()).where(Claim.organisation_id == partner.organisation_id)
            )
            events = await conn.scalar(select(func.count()).select_from(CitizenEvent))
        return claims or 0, events or 0

    before = await totals()
    again = await upload(api, partner, body, key=key)
    assert again.content == first.content  # the very same report, accepted rows and all
    assert again.headers["idempotent-replayed"] == "true"
    assert await totals() == before

    other = await upload(api, partner, ndjson(rows[:1]), key=key)
    assert other.status_code == 409
    assert other.json()["code"] == "CONFLICT"

    # Without a key, the retry writes nothing either: every row is a duplicate.
    _, replay = report(await upload(api, partner, body))
    assert replay == {"rows": 6, "accepted": 0, "duplicates": 5, "rejected": 1}
    assert await totals() == before


async def test_upload_is_written_chunk_by_chunk_and_bounded(
    api: Api, settings: Settings, engine: AsyncEngine
) -> None:
    partner = await make_partner(api)
    citizen = factories.insz()
    uris = [factories.PYTHON, factories.SQL, factories.TEAMWORK, factories.ENGLISH]
    rows = [factories.claim_input(citizen, uris[i % 4]) for i in range(10)]
    async with app_with(
        settings, bulk_chunk_rows=3, bulk_max_rows=10, bulk_max_bytes=20_000
    ) as small:
        lines, summary = report(await upload(small, partner, ndjson(rows)))
        assert summary["accepted"] == 10
        owner_claim = uuid.UUID(lines[0]["claimId"])
        async with engine.connect() as conn:
            owner = await conn.scalar(select(Claim.citizen_id).where(Claim.claim_id == owner_claim))
        assert owner is not None and await verify_chain(engine, owner) == []

        eleven = ndjson([factories.claim_input(factories.insz()) for _ in range(11)])
        refused = await upload(small, partner, eleven)
        assert refused.status_code == 413
        huge = await upload(small, partner, b" " * 20_001)
        assert huge.status_code == 413


async def test_upload_refusals(api: Api) -> None:
    partner = await make_partner(api)
    body = ndjson([factories.claim_input(factories.insz())])
    assert (await upload(api, partner, body, "application/json")).status_code == 415
    assert (await upload(api, partner, b"\xff\xfe{}\n")).status_code == 422
    assert (await upload(api, partner, body, key="bad key")).status_code == 422
    anonymous = await api.http.post("/claims:bulk", content=body, headers={"Content-Type": NDJSON})
    assert anonymous.status_code == 401
    reader = await make_partner(api, "PUBLIC_EMPLOYMENT_SERVICE", ("PASSPORTS_READ",))
    assert (await upload(api, reader, body)).status_code == 403


async def _chain_events(engine: AsyncEngine, claim_ids: list[str]) -> dict[uuid.UUID, list[str]]:
    """Per citizen of these claims, the claim ids its claim.issued events name, by seq."""
    async with engine.connect() as conn:
        owners = set(
            await conn.scalars(
                select(Claim.citizen_id).where(
                    Claim.claim_id.in_([uuid.UUID(i) for i in claim_ids])
                )
            )
        )
        rows = await conn.execute(
            select(CitizenEvent.citizen_id, CitizenEvent.payload)
            .where(CitizenEvent.citizen_id.in_(owners))
            .order_by(CitizenEvent.citizen_id, CitizenEvent.seq)
        )
        chains: dict[uuid.UUID, list[str]] = {}
        for citizen_id, payload in rows:
            chains.setdefault(citizen_id, []).append(payload["claimId"])
    for citizen_id in chains:
        assert await verify_chain(engine, citizen_id) == []
    return chains


async def test_chunks_in_flight_together_commit_in_the_files_order(
    api: Api, settings: Settings, engine: AsyncEngine
) -> None:
    """Chunks naming other citizens and refs than the one before run beside it; one that
    shares a citizen or a ref waits for it: a retry across chunks is a duplicate, a reused
    ref a conflict, and each chain holds its claims in the file's order."""
    partner = await make_partner(api)
    a, b, c, d, e, f, g, h = (factories.insz() for _ in range(8))
    first = [factories.claim_input(x, factories.PYTHON) for x in (a, b, c)]
    second = [factories.claim_input(x, factories.SQL) for x in (d, e, f)]  # apart: in flight
    third = [  # refs the chunk before is writing: a retry, and one reused for someone else
        second[0],
        {**second[1], "insz": h},
        factories.claim_input(g, factories.PYTHON),
    ]
    fourth = [
        factories.claim_input(a, factories.SQL),
        {**first[1], "context": "something else"},
        factories.claim_input(g, factories.SQL),
    ]
    async with app_with(settings, bulk_chunk_rows=3) as small:
        lines, summary = report(
            await upload(small, partner, ndjson(first + second + third + fourth))
        )
    assert summary == {"rows": 12, "accepted": 9, "duplicates": 1, "rejected": 2}
    statuses = [line["status"] for line in lines]
    assert statuses == ["accepted"] * 6 + ["duplicate", "rejected", "accepted"] + [
        "accepted",
        "rejected",
        "accepted",
    ]
    assert lines[6]["claimId"] == lines[3]["claimId"]
    assert lines[7]["code"] == "CONFLICT"
    assert lines[10]["code"] == "CONFLICT"
    ids = [line["claimId"] for line in lines if line["status"] == "accepted"]
    chains = await _chain_events(engine, ids)
    assert sorted(chains.values()) == sorted(
        [[lines[0]["claimId"], lines[9]["claimId"]]]  # a
        + [[lines[i]["claimId"]] for i in (1, 2, 3, 4, 5)]
        + [[lines[8]["claimId"], lines[11]["claimId"]]]  # g
    )
    # The ref reused for h was refused without leaving a passport behind for h.
    async with engine.connect() as conn:
        passports = await conn.scalar(
            select(func.count()).where(
                CitizenIdentity.insz_hash == insz_hash(h, settings.hmac_key())
            )
        )
    assert passports == 0


@asynccontextmanager
async def claim_trigger(engine: AsyncEngine, ref: str, action: str) -> AsyncIterator[str]:
    """A trigger of the test's own on claims: ``action`` (PL/pgSQL, where ``$seq`` names a
    sequence of its own) runs when the claim with this ref is stored, and every claim stored
    is logged in ``<name>_log`` with its transaction's start and the moment it was written.
    The fault or the delay is the database's, not a mock's. Yields the name."""
    if on_citus(engine.url):
        pytest.skip("the test's trigger is on claims: Citus refuses triggers on distributed tables")
    name = "probe_" + uuid.uuid4().hex[:12]
    statements = [
        f"CREATE SEQUENCE {name}",
        f"CREATE TABLE {name}_log (ref text, began timestamptz, written timestamptz)",
        f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
        BEGIN
          IF NEW.external_ref = '{ref}' THEN {action.replace("$seq", name)} END IF;
          INSERT INTO {name}_log VALUES (NEW.external_ref, now(), clock_timestamp());
          RETURN NEW;
        END $$""",
        f"CREATE TRIGGER {name} BEFORE INSERT ON claims FOR EACH ROW EXECUTE FUNCTION {name}()",
    ]
    async with engine.begin() as conn:
        for statement in statements:
            await conn.exec_driver_sql(statement)
    try:
        yield name
    finally:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f"DROP TRIGGER {name} ON claims")
            await conn.exec_driver_sql(f"DROP FUNCTION {name}()")
            await conn.exec_driver_sql(f"DROP TABLE {name}_log")
            await conn.exec_driver_sql(f"DROP SEQUENCE {name}")


def failing_claim(
    engine: AsyncEngine, ref: str, sqlstate: str, times: int
) -> AbstractAsyncContextManager[str]:
    """PostgreSQL refuses to store the claim with this ref, the first ``times`` times, with
    this SQLSTATE; the sequence named as yielded counts the attempts."""
    refuse = (
        f"IF nextval('$seq') <= {times} THEN"
        f" RAISE EXCEPTION 'fault' USING ERRCODE = '{sqlstate}'; END IF;"
    )
    return claim_trigger(engine, ref, refuse)


async def test_the_next_chunk_begins_while_the_one_before_is_writing(
    api: Api, settings: Settings, engine: AsyncEngine
) -> None:
    """Two chunks' transactions really are open at once: with the first chunk's last claim
    taking 0.3 s to store, the second chunk's transaction began before it was stored."""
    partner = await make_partner(api)
    rows = [factories.claim_input(factories.insz(), factories.PYTHON) for _ in range(6)]
    async with (
        claim_trigger(engine, rows[2]["externalRef"], "PERFORM pg_sleep(0.3);") as probe,
        app_with(settings, bulk_chunk_rows=3) as small,
    ):
        _, summary = report(await upload(small, partner, ndjson(rows)))
        async with engine.connect() as conn:
            log = {
                ref: (began, written)
                for ref, began, written in await conn.execute(
                    text(f"SELECT ref, began, written FROM {probe}_log")
                )
            }
    assert summary["accepted"] == 6
    first_written = log[rows[2]["externalRef"]][1]
    second_began = min(log[row["externalRef"]][0] for row in rows[3:])
    assert second_began < first_written


async def _open_transactions(engine: AsyncEngine) -> int:
    """Backends of this database busy or in a transaction: none once an upload answered,
    however its chunks ended."""
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND state <> 'idle'"
                )
            )
            or 0
        )


async def _stored(engine: AsyncEngine, rows: list[dict[str, Any]]) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                select(func.count()).where(Claim.external_ref.in_([r["externalRef"] for r in rows]))
            )
            or 0
        )


async def test_a_chunk_asked_to_run_again_takes_the_one_behind_it_back(
    api: Api, settings: Settings, engine: AsyncEngine
) -> None:
    """A serialization failure in a chunk while the next is in flight: the next rolls back,
    both run again one after the other, and every row is written once."""
    partner = await make_partner(api)
    rows = [factories.claim_input(factories.insz(), factories.PYTHON) for _ in range(9)]
    async with (
        failing_claim(engine, rows[1]["externalRef"], "40001", times=1) as counter,
        app_with(settings, bulk_chunk_rows=3) as small,
    ):
        lines, summary = report(await upload(small, partner, ndjson(rows)))
        assert await _open_transactions(engine) == 0
        async with engine.connect() as conn:
            attempts = await conn.scalar(text(f"SELECT last_value FROM {counter}"))
    assert summary == {"rows": 9, "accepted": 9, "duplicates": 0, "rejected": 0}
    assert attempts == 2
    assert await _stored(engine, rows) == 9
    await _chain_events(engine, [line["claimId"] for line in lines])


async def test_a_failed_chunk_takes_the_one_behind_it_back_and_keeps_the_ones_before(
    api: Api, settings: Settings, engine: AsyncEngine
) -> None:
    partner = await make_partner(api)
    rows = [factories.claim_input(factories.insz(), factories.PYTHON) for _ in range(9)]
    async with (
        failing_claim(engine, rows[4]["externalRef"], "P0001", times=9),
        app_with(settings, bulk_chunk_rows=3) as small,
    ):
        response = await upload(small, partner, ndjson(rows))
        assert await _open_transactions(engine) == 0
    assert response.status_code >= 500, response.text
    assert await _stored(engine, rows[:3]) == 3  # the chunk before committed
    assert await _stored(engine, rows[3:]) == 0  # the failed one, and the one behind it
