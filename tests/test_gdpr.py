"""The citizen's rights: a complete export, and an erasure that leaves no trace of them."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service import clock
from service.citizens.erasure import purge_retained
from service.db.engine import session_factory
from service.events.chain import verify_chains
from service.identity.numbers import insz_hash
from service.models import CitizenIdentity, RetainedAccessRecord
from tests import factories
from tests.citizen_api import (
    ERASE,
    EXPORT,
    LEGAL_READ,
    MY_PASSPORT,
    SELF_DECLARE,
    access_log,
    consent_read,
    grant,
    shared_read,
)
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import REVOKE, issue


async def _full_passport(
    api: Api, school: Partner, reader: Partner, citizen: str
) -> dict[str, Any]:
    """A citizen with everything: claims (one revoked), a declaration, grants, reads of all
    kinds; every text about them carries a mark (a word no other data contains)."""
    mark = "zq" + uuid.uuid4().hex[:10]
    me = api.citizen(citizen)
    kept = await issue(
        api,
        school,
        factories.claim_input(
            citizen,
            externalRef=f"{mark}-ref-1",
            context=f"{mark} final exam, grade 17/20",
            issuerRole=f"{mark} assessor",
            evidence=[
                {"kind": "CERTIFICATE", "title": f"{mark} cert", "url": f"https://x.org/{mark}"}
            ],
        ),
    )
    dropped = await issue(
        api, school, factories.claim_input(citizen, factories.SQL, externalRef=f"{mark}-ref-2")
    )
    await api.gql(
        school.token,
        REVOKE,
        {"input": {"claimId": dropped["claim"]["id"], "reason": f"{mark} wrong person"}},
    )
    await api.gql(
        me,
        SELF_DECLARE,
        {
            "input": {
                "competenceUri": factories.ENGLISH,
                "acquiredOn": "2010-01-01",
                "context": f"{mark} lived abroad",
            }
        },
    )
    employer = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    await grant(
        api,
        me,
        granteeKind="ORGANISATION",
        organisationId=str(employer.organisation_id),
        purpose=f"{mark} application",
    )
    link = await grant(api, me, purpose=f"{mark} link")
    await api.gql(me, MY_PASSPORT)
    await consent_read(api, employer.token, citizen)
    await shared_read(api, link["shareLink"]["token"])
    await api.gql(
        reader.token,
        LEGAL_READ,
        {"citizen": {"insz": citizen}, "basis": "GUIDANCE", "purpose": "intake interview"},
    )
    return {"claim": kept["claim"], "link": link["shareLink"]["token"], "mark": mark}


async def test_export_holds_everything(api: Api, school: Partner, reader: Partner) -> None:
    citizen = factories.insz()
    made = await _full_passport(api, school, reader, citizen)
    mark = made["mark"]
    me = api.citizen(citizen)
    document = (await api.gql(me, EXPORT))["data"]["me"]["exportData"]
    assert document["format"] == "competence-passport-export/1"
    claims = {c["competence"]["uri"]: c for c in document["claims"]}
    assert claims[factories.PYTHON]["context"] == f"{mark} final exam, grade 17/20"
    assert claims[factories.PYTHON]["issuer"]["kind"] == "education_provider"
    assert claims[factories.PYTHON]["evidence"][0]["title"] == f"{mark} cert"
    assert claims[factories.SQL]["status"] == "revoked"
    assert claims[factories.SQL]["revocation"]["reason"] == f"{mark} wrong person"
    assert claims[factories.ENGLISH]["selfDeclared"] is True
    assert [e["type"] for e in document["events"]] == [
        "claim.issued",
        "claim.issued",
        "claim.revoked",
        "claim.self_declared",
        "grant.created",
        "grant.created",
    ]
    assert document["events"][1]["prevHash"] == document["events"][0]["hash"]
    assert {g["granteeKind"] for g in document["grants"]} == {"organisation", "link"}
    assert [a["basis"] for a in document["accessLog"]] == [
        "legal_basis",
        "link",
        "consent",
        "self",
    ]
    # The REST download is the same document, and the export is itself a logged read.
    response = await api.http.get("/me/export", headers={"Authorization": f"Bearer {me}"})
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    downloaded = response.json()
    assert downloaded["claims"] == document["claims"]
    assert downloaded["accessLog"][0]["operation"] == "export"
    assert (await access_log(api, me))[0]["operation"] == "export"


async def test_export_needs_the_citizen(api: Api, school: Partner) -> None:
    response = await api.http.get("/me/export")
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"
    assert response.headers["content-type"] == "application/problem+json"
    response = await api.http.get("/me/export", headers={"Authorization": f"Bearer {school.token}"})
    assert response.status_code == 403
    assert response.json()["code"] == "NOT_AUTHORIZED"
    nothing = await api.http.get(
        "/me/export", headers={"Authorization": f"Bearer {api.citizen(factories.insz())}"}
    )
    assert nothing.status_code == 200 and nothing.json()["claims"] == []


async def _rows_mentioning(engine: AsyncEngine, needles: list[str]) -> dict[str, int]:
    """Every table of the database, every row rendered as text, searched for each needle."""
    found: dict[str, int] = {}
    async with engine.connect() as conn:
        tables = await conn.scalars(
            text(
                "SELECT quote_ident(table_name) FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        )
        for table in list(tables):
            for needle in needles:
                count = await conn.scalar(
                    text(f"SELECT count(*) FROM {table} t WHERE strpos(t::text, :n) > 0"),
                    {"n": needle},
                )
                if count:
                    found[f"{table}:{needle}"] = count
    return found


async def test_erasure_leaves_no_trace_and_other_chains_verify(
    api: Api, school: Partner, reader: Partner, engine: AsyncEngine, settings: Any
) -> None:
    citizen, neighbour = factories.insz(), factories.insz()
    made = await _full_passport(api, school, reader, citizen)
    await issue(api, school, factories.claim_input(neighbour))
    me = api.citizen(citizen)
    async with engine.connect() as conn:
        citizen_id = await conn.scalar(
            select(CitizenIdentity.citizen_id).where(
                CitizenIdentity.insz_hash == insz_hash(citizen, settings.hmac_key())
            )
        )
    assert citizen_id is not None
    digest = insz_hash(citizen, settings.hmac_key()).hex()
    needles = [made["mark"], citizen, str(citizen_id), digest, made["claim"]["id"]]
    assert await _rows_mentioning(engine, needles)  # the scan does see the data before

    body = await api.gql(me, ERASE)
    result = body["data"]["requestErasure"]
    assert result["__typename"] == "ErasureCompleted" and result["erasureId"]
    counts = {c["kind"]: c["count"] for c in result["counts"]}
    assert counts["claims"] == 3 and counts["grants"] == 2 and counts["identities"] == 1
    assert counts["retainedAccessRecords"] == 1  # the legal-basis read, kept by law

    assert await _rows_mentioning(engine, needles) == {}
    async with engine.connect() as conn:
        retained = (
            await conn.execute(
                select(RetainedAccessRecord).where(
                    RetainedAccessRecord.erasure_id == uuid.UUID(result["erasureId"])
                )
            )
        ).one()
    assert retained.purpose == "intake interview"
    assert retained.organisation_id == reader.organisation_id
    # Every other citizen's chain still verifies; the erased one has none left to break.
    report = await verify_chains(engine)
    assert report.breaks == []
    # The share link is dead, the citizen starts over empty, and erasing again is harmless.
    assert (await shared_read(api, made["link"]))["status"] == 401
    passport = (await api.gql(me, MY_PASSPORT))["data"]["me"]["passport"]
    assert passport == {"citizenId": None, "basis": "SELF", "competences": [], "selfDeclared": []}
    again = (await api.gql(me, ERASE))["data"]["requestErasure"]
    assert again["erasureId"] is None and again["counts"] == []
    # A partner's claim afterwards makes a new passport, not the old one back.
    await issue(api, school, factories.claim_input(citizen))
    async with engine.connect() as conn:
        fresh = await conn.scalar(
            select(CitizenIdentity.citizen_id).where(
                CitizenIdentity.insz_hash == insz_hash(citizen, settings.hmac_key())
            )
        )
    assert fresh is not None and fresh != citizen_id


async def test_only_the_citizen_erases(api: Api, school: Partner, reader: Partner) -> None:
    for token in (school.token, reader.token, api.admin()):
        body = await api.gql(token, ERASE)
        assert body["data"]["requestErasure"]["code"] == "NOT_AUTHORIZED"


async def test_a_claim_racing_an_erasure_never_lands_in_the_erased_passport(
    api: Api, school: Partner, engine: AsyncEngine, settings: Any
) -> None:
    """Every claim sent while the passport is being erased succeeds, either before the
    erasure (and is erased) or after it (in a new passport), never half in between."""
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    me = api.citizen(citizen)
    erase, claims = await asyncio.gather(
        api.gql(me, ERASE),
        asyncio.gather(
            *(
                api.gql(school.token, _issue_doc(), {"input": factories.claim_input(citizen, uri)})
                for uri in (factories.SQL, factories.TEAMWORK, factories.FORKLIFT)
            )
        ),
    )
    assert erase["data"]["requestErasure"]["__typename"] == "ErasureCompleted"
    assert all(c["data"]["issueClaim"]["__typename"] == "ClaimIssued" for c in claims), claims
    # A claim that waited for the erasure's lock reran against a new passport: every claim
    # that exists has its event in a chain that verifies.
    assert (await verify_chains(engine)).breaks == []


def _issue_doc() -> str:
    from tests.test_claims_api import ISSUE

    return ISSUE


async def _citizen_id(engine: AsyncEngine, insz: str, settings: Any) -> uuid.UUID:
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(CitizenIdentity.citizen_id).where(
                CitizenIdentity.insz_hash == insz_hash(insz, settings.hmac_key())
            )
        )
    assert found is not None
    return found


async def test_a_read_in_flight_is_kept_by_the_erasure_it_precedes(
    api: Api,
    school: Partner,
    reader: Partner,
    engine: AsyncEngine,
    settings: Any,
    monkeypatch: Any,
) -> None:
    """The erasure waits for the read that holds the citizen's lock, then keeps its record."""
    from service.passports import service as passports

    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    slow_load = passports.load_passport_claims

    async def load_slowly(*args: Any, **kwargs: Any) -> Any:
        found = await slow_load(*args, **kwargs)
        await asyncio.sleep(0.5)  # the erasure arrives now
        return found

    monkeypatch.setattr(passports, "load_passport_claims", load_slowly)
    read = asyncio.create_task(
        api.gql(
            reader.token,
            LEGAL_READ,
            {"citizen": {"insz": citizen}, "basis": "GUIDANCE", "purpose": "intake"},
        )
    )
    await asyncio.sleep(0.2)
    erased = await api.gql(api.citizen(citizen), ERASE)
    body = await read
    assert body["data"]["passport"]["__typename"] == "Passport", body
    counts = {c["kind"]: c["count"] for c in erased["data"]["requestErasure"]["counts"]}
    assert counts["retainedAccessRecords"] == 1


async def test_a_read_that_waited_for_an_erasure_finds_nothing(
    api: Api, school: Partner, reader: Partner, engine: AsyncEngine, settings: Any
) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    citizen_id = await _citizen_id(engine, citizen, settings)
    async with engine.connect() as conn:
        transaction = await conn.begin()
        # An erasure in progress: it holds the citizen's lock...
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:c, 0))"), {"c": str(citizen_id)}
        )
        read = asyncio.create_task(
            api.gql(
                reader.token,
                LEGAL_READ,
                {"citizen": {"insz": citizen}, "basis": "GUIDANCE", "purpose": "intake"},
            )
        )
        await asyncio.sleep(0.3)  # ...while the read has found the citizen and waits
        await conn.execute(
            text("SELECT passport_erase_citizen(:c, gen_random_uuid(), now())"),
            {"c": citizen_id},
        )
        await transaction.commit()
    body = await read
    assert body["data"]["passport"]["__typename"] == "NotFound", body


async def test_retained_reads_are_purged_after_their_term(
    api: Api, school: Partner, reader: Partner, engine: AsyncEngine
) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    await api.gql(
        reader.token,
        LEGAL_READ,
        {"citizen": {"insz": citizen}, "basis": "GUIDANCE", "purpose": "intake"},
    )
    erased = (await api.gql(api.citizen(citizen), ERASE))["data"]["requestErasure"]
    erasure_id = erased["erasureId"]
    # Eleven years ago, as a value: Citus refuses a STABLE expression over a column (such as
    # timestamptz - interval) in an UPDATE of a replicated table.
    long_ago = clock.add_years(clock.now(), -11)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE erasures SET erased_at = :t WHERE id = :e"),
            {"e": erasure_id, "t": long_ago},
        )
        await conn.execute(
            text("UPDATE retained_access_records SET accessed_at = :t WHERE erasure_id = :e"),
            {"e": erasure_id, "t": long_ago},
        )
    async with session_factory(engine)() as session, session.begin():
        removed = await purge_retained(session, clock.add_years(clock.now(), -10))
    assert removed == {"retainedAccessRecords": 1, "erasures": 1}
    async with engine.connect() as conn:
        left = await conn.scalar(
            text("SELECT count(*) FROM erasures WHERE id = :e"), {"e": erasure_id}
        )
    assert left == 0


def test_purge_command_runs_as_an_operator_runs_it(database_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from service.cli import app as cli
    from service.settings import get_settings

    env = {"PASSPORT_DATABASE_URL": database_url, "PASSPORT_DATA_DIR": str(tmp_path)}
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["purge-retained"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    removed = json.loads(result.output)["removed"]
    assert set(removed) == {
        "retainedAccessRecords",
        "erasures",
        "bulkUploads",
        "webhookDeliveries",
        "walletNonces",
        "walletAccessTokens",
    }
