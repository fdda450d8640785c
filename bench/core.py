"""Core benchmark: claims issued through GraphQL, passport reads over HTTP, and raw asyncpg.

Run: `make bench` (or `.venv/bin/python bench/core.py`). Starts a fresh embedded PostgreSQL unless
PASSPORT_BENCH_DATABASE_URL names a server; runs the service with uvicorn on 127.0.0.1 in a child
process; all load goes to 127.0.0.1 and is bounded in count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import psutil
from pydantic.alias_generators import to_snake
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.auth.keys import load_or_create_dev_key
from service.auth.tokens import mint_dev_token
from service.claims.views import claims_select
from service.consent.service import OrganisationRef
from service.db.embedded import EmbeddedPostgres, asyncpg_dsn, ensure_database
from service.db.engine import create_engine
from service.db.migrate import upgrade_async
from service.models import Claim
from service.settings import Settings
from service.taxonomy.esco_import import SHIPPED_ESCO_DIR, import_esco
from tests import factories

ISSUE = """mutation($input: IssueClaimInput!) { issueClaim(input: $input) {
  __typename ... on ClaimIssued { claim { id } } } }"""
REVOKE = """mutation($input: RevokeClaimInput!) { revokeClaim(input: $input) {
  __typename ... on ClaimRevoked { claim { id status } } } }"""
GRANT = """mutation($input: GrantAccessInput!) { grantAccess(input: $input) {
  __typename ... on AccessGranted { created grant { id status } } } }"""
READ = """query($c: CitizenRef!) {
  passport(citizen: $c, purpose: "benchmark", legalBasis: "BENCH") {
  __typename ... on Passport { competences { competence { uri label { text } } status lastUsedOn
  highestLevel { level } distinctOrganisations claims { id status acquiredOn lastUsedOn
  assessmentMethod issuer { name kind } } } } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


async def run_load(
    total: int, concurrency: int, op: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            start = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), latencies


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and all its descendants (the server's workers)."""
    own = psutil.Process(pid).cpu_times()
    return own.user + own.system + sum(worker_cpu_seconds(pid).values())


def worker_cpu_seconds(pid: int) -> dict[int, float]:
    """User and system CPU of each of the server's descendants: uvicorn's workers share one
    port, and one of them sometimes gets most of the connections."""
    seconds: dict[int, float] = {}
    for process in psutil.Process(pid).children(recursive=True):
        with suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
    return seconds


def postgres_cpu_seconds() -> float:
    """User and system CPU of every PostgreSQL process on the machine (the bench's server)."""
    total = 0.0
    for process in psutil.process_iter(["name"]):
        if (process.info["name"] or "").startswith("postgres"):
            with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                times = process.cpu_times()
                total += times.user + times.system
    return total


class Connection:
    """One keep-alive HTTP/1.1 connection sending one prepared POST over and over."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections to one server, opened as concurrency needs them, each sending one
    request at a time (the soak's and the read benches', the peer's too)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[Connection] = []

    async def post(self, request: bytes) -> tuple[int, bytes]:
        reused = bool(self.idle)
        conn = self.idle.pop() if reused else await Connection.open(self.port)
        try:
            answer = await conn.post(request)
        except (asyncio.IncompleteReadError, ConnectionError):
            conn.close()
            if not reused:
                raise
            # uvicorn and Node close a connection idle for 5 s: open another, as a browser does
            conn = await Connection.open(self.port)
            try:
                answer = await conn.post(request)
            except BaseException:
                conn.close()
                raise
        except BaseException:  # a timeout's cancellation too: the answer may still come
            conn.close()
            raise
        self.idle.append(conn)
        return answer

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


def prepared_post(path: str, token: str, body: dict[str, Any]) -> bytes:
    payload = orjson.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


@asynccontextmanager
async def bench_database(workdir: Path) -> AsyncIterator[str]:
    """A database of its own, gone afterwards: on PASSPORT_BENCH_DATABASE_URL's server if set
    (created, then dropped), else on a fresh embedded PostgreSQL (started, then stopped)."""
    server_url = os.environ.get("PASSPORT_BENCH_DATABASE_URL")
    if not server_url:
        embedded = EmbeddedPostgres(workdir)
        try:
            url = await ensure_database(embedded.url(), "bench")
            yield url.render_as_string(hide_password=False)
        finally:
            embedded.stop()
        return
    base = make_url(server_url).set(drivername="postgresql+asyncpg")
    name = f"passport_bench_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(asyncpg_dsn(base))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(asyncpg_dsn(base))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def service_process(url: str, settings: Settings, workers: int) -> AsyncIterator[int]:
    """The service under uvicorn on 127.0.0.1 in a child process, rate limits lifted (the bench
    measures throughput, not the limits: one client sends it all); yields its port."""
    async with service_server(url, settings, workers) as (port, _):
        yield port


@asynccontextmanager
async def service_server(
    url: str, settings: Settings, workers: int
) -> AsyncIterator[tuple[int, asyncio.subprocess.Process]]:
    """As service_process, yielding the uvicorn master process too: the soak watches the memory
    of it and of its workers."""
    port = free_port()
    env = {
        **os.environ,
        "PASSPORT_DATABASE_URL": url,
        "PASSPORT_DATA_DIR": str(settings.data_dir),
        "PASSPORT_INSZ_HMAC_KEY": "b" * 48,
        "PASSPORT_DB_POOL_SIZE": "20",
        "PASSPORT_RATE_LIMITS": json.dumps(
            dict.fromkeys(("partner", "reader"), "100000000/minute")
        ),
        "PASSPORT_LOG_LEVEL": "WARNING",
    }
    # As shipped (`passport serve`, uvicorn with a listening socket per worker); Granian was
    # measured against uvicorn with bench/request_path.py: see the README.
    command = [
        *("-c", "from service.cli import app; app()", "serve", "--no-migrate"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
    ]
    server = await asyncio.create_subprocess_exec(
        sys.executable, *command, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        yield port, server
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=20)


async def wait_ready(http: httpx.AsyncClient) -> None:
    for _ in range(100):
        try:
            if (await http.get("/health/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)


async def seed(
    url: str,
    settings: Settings,
    *,
    kind: str = "public_employment_service",
    name: str = "Bench org",
    client_id: str = "bench-client",
    scopes: tuple[str, ...] = ("claims:write", "passports:read"),
    legal_basis: str | None = "BENCH",
) -> uuid.UUID:
    """An organisation with one client (and a legal basis, unless None); returns its id."""
    from service.auth.principal import Principal
    from service.db.engine import session_factory
    from service.models.enums import PrincipalKind
    from service.organisations import service as registry

    admin = Principal(kind=PrincipalKind.ADMIN, subject="bench", scopes=frozenset({"admin"}))
    engine = create_engine(url)
    async with session_factory(engine)() as session, session.begin():
        org = await registry.register_organisation(
            session,
            admin,
            {
                "kind": kind,
                "name": name,
                "enterprise_number": factories.enterprise_number(),
            },
        )
        await registry.register_client(
            session,
            admin,
            {
                "organisation_id": org.id,
                "client_id": client_id,
                "name": "bench",
                "scopes": list(scopes),
            },
        )
        if legal_basis is not None:
            await registry.grant_legal_basis(
                session,
                admin,
                {"organisation_id": org.id, "code": legal_basis, "reference": "benchmark"},
                settings.legal_basis_organisation_kinds,
            )
        organisation_id: uuid.UUID = org.id
    await engine.dispose()
    return organisation_id


def bench_token(
    settings: Settings,
    subject: str,
    *,
    client_id: str | None = None,
    scopes: list[str] | None = None,
) -> str:
    """A client's token (give client_id and scopes) or, with neither, the citizen `subject`'s;
    it lives as long as the verifier allows (oidc_max_token_lifetime_seconds)."""
    return mint_dev_token(
        load_or_create_dev_key(settings.data_dir),
        settings,
        subject=subject,
        client_id=client_id,
        scopes=scopes,
    )


@dataclass(frozen=True)
class Prepared:
    settings: Settings
    token: str  # the bench client's: claims:write and passports:read
    esco_seconds: float


async def prepare(url: str, workdir: Path) -> Prepared:
    """A migrated database with ESCO, the bench organisation, its client and legal basis."""
    settings = Settings(database_url=url, data_dir=workdir / "app", insz_hmac_key="b" * 48)
    await upgrade_async(url)
    engine = create_engine(url)
    report = await import_esco(engine, SHIPPED_ESCO_DIR)
    await engine.dispose()
    await seed(url, settings)
    token = bench_token(
        settings,
        "bench-client",
        client_id="bench-client",
        scopes=["claims:write", "passports:read"],
    )
    return Prepared(settings, token, report.seconds)


def run_facts(workers: int) -> dict[str, Any]:
    """What every bench prints first: when, on what, with how many workers."""
    return {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "workers": workers,
    }


async def competence_uris(url: str, n: int) -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(make_url(url)))
    rows = await conn.fetch(
        "SELECT uri FROM competences WHERE concept_type = 'skill' ORDER BY id LIMIT $1", n
    )
    await conn.close()
    return [r["uri"] for r in rows]


ISSUE_MANY = """mutation($inputs: [IssueClaimInput!]!) {
  issueClaims(inputs: $inputs) { ... on ClaimsIssued { accepted } } }"""


async def seed_claims(port: int, token: str, citizens: list[str], uris: list[str]) -> None:
    """Every citizen gets a claim per competence (acquired 400 days ago, used 30 days ago), in
    one issueClaims batch per citizen."""
    acquired = (date.today() - timedelta(days=400)).isoformat()
    used = (date.today() - timedelta(days=30)).isoformat()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ) as http:
        await wait_ready(http)
        for citizen in citizens:
            inputs = [
                factories.claim_input(citizen, uri, acquiredOn=acquired, lastUsedOn=used)
                for uri in uris
            ]
            response = await http.post(
                "/graphql", json={"query": ISSUE_MANY, "variables": {"inputs": inputs}}
            )
            accepted = response.json()["data"]["issueClaims"]["accepted"]
            assert accepted == len(uris), response.text[:300]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="passport-bench-"))
    async with bench_database(workdir) as url:
        return await _run(args, workdir, url)


async def _run(args: argparse.Namespace, workdir: Path, url: str) -> dict[str, Any]:
    prepared = await prepare(url, workdir)
    settings, token = prepared.settings, prepared.token
    results = {**run_facts(args.workers), "esco_import_seconds": round(prepared.esco_seconds, 1)}
    async with (
        service_server(url, settings, args.workers) as (port, server),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=64),
            timeout=30,
        ) as http,
    ):
        await wait_ready(http)
        uris = await competence_uris(url, 200)
        acquired = (date.today() - timedelta(days=400)).isoformat()

        results.update(await write_rounds(args, url, settings, http, uris, server.pid))

        citizen = fresh_insz()
        for i in range(200):
            data = factories.claim_input(citizen, uris[i], acquiredOn=acquired, lastUsedOn=None)
            await http.post("/graphql", json={"query": ISSUE, "variables": {"input": data}})

        async def read(_: int) -> None:
            response = await http.post(
                "/graphql", json={"query": READ, "variables": {"c": {"insz": citizen}}}
            )
            body = response.json()["data"]["passport"]
            assert len(body["competences"]) == 200, response.text[:300]

        await run_load(50, 8, read)
        rate, lat = await run_load(args.reads, 16, read)
        results["read_200_per_s"] = round(rate)
        results["read_p50_ms"], results["read_p99_ms"] = (
            round(pct(lat, 50), 1),
            round(pct(lat, 99), 1),
        )
        single: list[float] = []
        for _ in range(50):
            start = time.perf_counter()
            await read(0)
            single.append(time.perf_counter() - start)
        results["read_unloaded_p50_ms"] = round(pct(single, 50), 1)

    # The same passport read done with raw asyncpg: the query the service runs, no HTTP or GraphQL.
    conn = await asyncpg.connect(asyncpg_dsn(make_url(url)))
    citizen_id = await conn.fetchval(
        "SELECT citizen_id FROM claims GROUP BY citizen_id HAVING count(*) = 200 LIMIT 1"
    )
    await conn.close()
    compiled = (
        claims_select(Claim.citizen_id == citizen_id)
        .params(today=date.today())
        .compile(dialect=postgresql.asyncpg.dialect(), compile_kwargs={"literal_binds": True})
    )
    sql = str(compiled)
    pool = await asyncpg.create_pool(asyncpg_dsn(make_url(url)), min_size=16, max_size=16)

    async def raw(_: int) -> None:
        async with pool.acquire() as c:
            rows = await c.fetch(sql)
            assert len(rows) == 200

    await run_load(100, 16, raw)
    rate, lat = await run_load(args.reads, 16, raw)
    results["raw_read_200_per_s"] = round(rate)
    results["raw_read_p50_ms"] = round(pct(lat, 50), 1)
    results["raw_read_p99_ms"] = round(pct(lat, 99), 1)
    await pool.close()
    return results


async def _write_facts(conn: Any, uris: list[str]) -> tuple[Any, Any, list[int]]:
    """The bench client's organisation and id, and the competences' ids."""
    row = await conn.fetchrow(
        "SELECT organisation_id, id FROM api_clients WHERE client_id = 'bench-client'"
    )
    ids = await conn.fetch("SELECT id FROM competences WHERE uri = ANY($1::text[])", uris)
    return row["organisation_id"], row["id"], [r["id"] for r in ids]


_TAKEN: set[str] = set()


def fresh_insz() -> str:
    """A national number no other write of this run used: the raw revocations name the
    citizen each raw write made, and the service's, the floor's and the raw writes' some
    6,000 random numbers would collide about once a run."""
    while (insz := factories.insz()) in _TAKEN:
        pass
    _TAKEN.add(insz)
    return insz


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL claim input as the domain takes it: snake_case names, enum values."""
    enums = {"assessmentMethod", "learningContext"}
    plain = {k: v.lower() if k in enums else v for k, v in data.items()}
    if plain.get("proficiency"):
        plain["proficiency"] = {
            **plain["proficiency"],
            "scale": plain["proficiency"]["scale"].lower(),
        }
    plain["evidence"] = [{**e, "kind": e["kind"].lower()} for e in plain.get("evidence", [])]
    return {to_snake(k): v for k, v in plain.items()}


def issue_arguments(
    spec: Any, organisation_id: uuid.UUID, client_pk: uuid.UUID, competence_id: int, key: bytes
) -> tuple[tuple[Any, ...], uuid.UUID, uuid.UUID]:
    """The arguments of ``issueClaim``'s write statement for a checked input (``spec``) of a
    citizen new to the service, made by the service's own functions as it makes them; and the
    citizen's and the claim's new ids."""
    from service.claims.service import claim_row, digest_parts
    from service.events.chain import new_event
    from service.events.outbox import claim_notice
    from service.events.payloads import claim_payload
    from service.identity.numbers import INSZ_KEY_VERSION, insz_hash
    from service.models.enums import EventType

    citizen_id, claim_id, at = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    row = claim_row(
        spec,
        client_pk=client_pk,
        organisation_id=organisation_id,
        citizen_id=citizen_id,
        claim_id=claim_id,
        competence_id=competence_id,
        recorded_at=at,
        supersedes=None,
    )
    notice = claim_notice(
        organisation_id, citizen_id, claim_id, spec.external_ref, spec.competence_uri
    )
    event = new_event(EventType.CLAIM_ISSUED, claim_payload(row), at, notice)
    given = (
        insz_hash(spec.insz, key),
        INSZ_KEY_VERSION,
        citizen_id,
        orjson.dumps(row, default=str).decode(),
        *digest_parts(spec, None),
        orjson.dumps([event]).decode(),
    )
    return given, citizen_id, claim_id


async def raw_ops(
    pool: Any, settings: Settings, uris: list[str], count: int
) -> tuple[Callable[[int], Awaitable[None]], Callable[[int], Awaitable[None]]]:
    """The raw limit of the writes: the same one statement issueClaim sends
    (``passport_issue_claim_or_refuse``, a new citizen each time), then the one revokeClaim sends
    (``passport_revoke_claim``) for each of those claims, straight on asyncpg in a
    transaction each, 16 connections, their arguments made by the service's own functions;
    no HTTP, GraphQL or session, and not the reads around them (the claim the service answers
    with, the caller's lookup)."""

    from service.claims.rules import IssueClaimInput
    from service.events.chain import new_event
    from service.events.outbox import claim_notice
    from service.models.enums import EventType
    from service.validation import validate

    async with pool.acquire() as conn:
        organisation_id, client_pk, competence_ids = await _write_facts(conn, uris)
    key = settings.insz_hmac_key.get_secret_value().encode() if settings.insz_hmac_key else b""
    sql = (
        "SELECT outcome FROM passport_issue_claim_or_refuse"
        "($1, $2, $3, $4::jsonb, $5, $6, $7::jsonb)"
    )
    revoke_sql = "SELECT passport_revoke_claim($1, $2, $3, $4, $5, $6::jsonb)"
    made: list[tuple[Any, ...]] = []  # (citizen, claim, external ref, competence uri)

    def arguments(i: int) -> tuple[Any, ...]:
        spec = validate(IssueClaimInput, _plain(factories.claim_input(fresh_insz(), uris[i])))
        competence_id = competence_ids[i % len(competence_ids)]
        given, citizen_id, claim_id = issue_arguments(
            spec, organisation_id, client_pk, competence_id, key
        )
        made.append((citizen_id, claim_id, spec.external_ref, spec.competence_uri))
        return given

    prepared = [arguments(i % len(uris)) for i in range(count)]  # made before the clock runs

    async def write(i: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            assert await conn.fetchval(sql, *prepared[i]) == "created"

    def revocation(i: int) -> tuple[Any, ...]:
        citizen_id, claim_id, ref, uri = made[i]
        at = datetime.now(UTC)
        notice = claim_notice(organisation_id, citizen_id, claim_id, ref, uri)
        payload = {"claimId": str(claim_id), "organisationId": str(organisation_id)}
        event = new_event(EventType.CLAIM_REVOKED, payload, at, notice)
        return (citizen_id, claim_id, "benchmark", at, client_pk, orjson.dumps(event).decode())

    revocations = [revocation(i) for i in range(count)]

    async def revoke(i: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            assert await conn.fetchval(revoke_sql, *revocations[i]) == "revoked"

    return write, revoke


async def raw_grants(
    pool: Any, settings: Settings, count: int
) -> tuple[Callable[[int], Awaitable[None]], list[dict[str, Any]]]:
    """The raw limit of grantAccess: the one call it writes with (``passport_record_grant``, a
    new citizen granting the bench organisation each time) straight on asyncpg, 16
    connections, its arguments made by the service's own ``grant_call``; and the service's
    inputs for grants like them (by other citizens), with their citizens' tokens, all made
    before the clock runs."""
    from service.consent.service import RECORD_GRANT, BeforeGrant, NewGrant, grant_call
    from service.identity.numbers import insz_hash
    from service.models.enums import GranteeKind

    async with pool.acquire() as conn:
        org = await conn.fetchrow(
            "SELECT o.id, o.name, o.kind, o.enterprise_number FROM organisations o "
            "JOIN api_clients c ON c.organisation_id = o.id WHERE c.client_id = 'bench-client'"
        )
    key = settings.hmac_key()
    expires = datetime.now(UTC) + timedelta(days=30)
    inputs: list[dict[str, Any]] = []
    calls: list[tuple[Any, ...]] = []
    for _ in range(count):
        insz = fresh_insz()
        data = {
            "granteeKind": "ORGANISATION",
            "organisationId": str(org["id"]),
            "purpose": "job application",
            "expiresAt": expires.isoformat(),
            "idempotencyKey": factories.ref(),
        }
        inputs.append({"token": bench_token(settings, insz), "input": data})
        grant = NewGrant(
            grantee_kind=GranteeKind.ORGANISATION,
            organisation=OrganisationRef(*org.values()),
            purpose=data["purpose"],
            competences=None,
            expires_at=expires,
            request_key=data["idempotencyKey"],
            request_digest=secrets.token_bytes(32),
            now=datetime.now(UTC),
        )
        other = BeforeGrant(insz_hash(fresh_insz(), key), None, None, None)  # not the same
        calls.append(grant_call(other, grant)[1])

    async def write(i: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            assert (await conn.fetchrow(RECORD_GRANT, *calls[i]))["outcome"] == "created"

    return write, inputs


@asynccontextmanager
async def peer_op(url: str, uris: list[str]) -> AsyncIterator[Callable[[int], Awaitable[None]]]:
    """PostGraphile 5's generated create mutation writing one claim row (no citizen lookup,
    key, event or chain: one INSERT), over the same database."""
    from bench.peer import CREATE, postgraphile

    conn = await asyncpg.connect(asyncpg_dsn(make_url(url)))
    organisation_id, client_pk, competence_ids = await _write_facts(conn, uris)
    citizen_id = uuid.uuid4()
    await conn.execute("INSERT INTO citizens (citizen_id) VALUES ($1)", citizen_id)
    await conn.close()
    acquired = (date.today() - timedelta(days=400)).isoformat()
    async with postgraphile(url) as port:
        peer = Pool(port)  # the same keep-alive client as the service's writes

        async def create(i: int) -> None:
            claim = {
                "citizenId": str(citizen_id),
                "claimId": str(uuid.uuid4()),
                "organisationId": str(organisation_id),
                "clientId": str(client_pk),
                "competenceId": competence_ids[i % len(competence_ids)],
                "assessmentMethod": "exam",
                "learningContext": "formal",
                "acquiredOn": acquired,
                "recordedAt": datetime.now(UTC).isoformat(),
                "externalRef": f"peer-{uuid.uuid4()}",
            }
            request = prepared_post(
                "/graphql", "peer", {"query": CREATE, "variables": {"claim": claim}}
            )
            status, body = await peer.post(request)
            assert status == 200 and b'"errors"' not in body, body[:300]

        yield create
        peer.close()


@asynccontextmanager
async def floor_op(
    url: str, workers: int, post: Callable[[int, int], Awaitable[dict[str, Any]]]
) -> AsyncIterator[tuple[Callable[[int], Awaitable[None]], int]]:
    """issueClaim's floor (``bench/floor.py``: its work and statements behind a bare ASGI
    app), sent what the service's write is sent, by ``post`` (port, index); yields the write
    and the floor's process id."""
    from bench.floor import floor_server

    port = free_port()
    async with floor_server(url, port, workers) as pid:

        async def write(i: int) -> None:
            answer = (await post(port, i))["issueClaim"]
            assert answer["__typename"] == "ClaimIssued", answer

        yield write, pid


def shifted(op: Callable[[int], Awaitable[None]], by: int) -> Callable[[int], Awaitable[None]]:
    """``op`` on the indexes from ``by`` on: every write of a run gets its own arguments."""
    return lambda i: op(by + i)


async def write_rounds(
    args: argparse.Namespace,
    url: str,
    settings: Settings,
    http: httpx.AsyncClient,
    uris: list[str],
    server_pid: int,
) -> dict[str, Any]:
    """issueClaim, its raw statement and PostGraphile's createClaim, then revokeClaim and its
    raw statement, then grantAccess and its raw call, in interleaved rounds (A B C A B C ...)
    of the same size, 16 clients each: a machine that gets busier or quieter during the run
    moves them alike. Each figure is the
    median of its rounds; p50 and p99 are over all its requests. For the service's writes,
    also its CPU per request and each worker's share of it."""
    acquired = (date.today() - timedelta(days=400)).isoformat()
    per_round = max(1, args.claims // args.rounds)
    total = per_round * args.rounds + 200  # and a warm-up of 200 each
    issued: list[str] = []

    token = http.headers["Authorization"].removeprefix("Bearer ")
    assert http.base_url.port is not None
    service = Pool(http.base_url.port)  # keep-alive, as light a client as the peer's

    async def post(query: str, variables: dict[str, Any], as_: str = token) -> dict[str, Any]:
        request = prepared_post("/graphql", as_, {"query": query, "variables": variables})
        status, body = await service.post(request)
        assert status == 200, body[:300]
        answer: dict[str, Any] = orjson.loads(body)["data"]
        return answer

    def issue_input(i: int) -> dict[str, Any]:
        return factories.claim_input(
            fresh_insz(), uris[i % len(uris)], acquiredOn=acquired, lastUsedOn=None
        )

    async def issue(i: int) -> None:
        answer = (await post(ISSUE, {"input": issue_input(i)}))["issueClaim"]
        assert answer["__typename"] == "ClaimIssued", answer
        issued.append(answer["claim"]["id"])

    floors: dict[int, Pool] = {}

    async def post_floor(port: int, i: int) -> dict[str, Any]:
        """issueClaim's request, as ``issue`` sends it, to the floor on ``port``."""
        request = prepared_post(
            "/graphql", token, {"query": ISSUE, "variables": {"input": issue_input(i)}}
        )
        status, body = await floors.setdefault(port, Pool(port)).post(request)
        assert status == 200, body[:300]
        answer: dict[str, Any] = orjson.loads(body)["data"]
        return answer

    async def revoke(i: int) -> None:
        data = {"claimId": issued[i], "reason": "benchmark"}
        answer = (await post(REVOKE, {"input": data}))["revokeClaim"]
        assert answer["claim"]["status"] == "REVOKED", answer

    pool = await asyncpg.create_pool(asyncpg_dsn(make_url(url)), min_size=16, max_size=16)
    raw_issue, raw_revoke = await raw_ops(pool, settings, uris, total)
    raw_grant, grant_inputs = await raw_grants(pool, settings, total)

    async def grant(i: int) -> None:
        given = grant_inputs[i]
        answer = (await post(GRANT, {"input": given["input"]}, given["token"]))["grantAccess"]
        assert answer["__typename"] == "AccessGranted" and answer["created"], answer

    async with AsyncExitStack() as stack:
        workloads: dict[str, Callable[[int], Awaitable[None]]] = {
            "issue": issue,
            "raw_issue": raw_issue,
        }
        pids = {name: server_pid for name in ("issue", "revoke", "grant")}
        if args.floor:
            floor, pids["floor_issue"] = await stack.enter_async_context(
                floor_op(url, args.workers, post_floor)
            )
            workloads["floor_issue"] = floor
        if args.peer:
            workloads["peer_create"] = await stack.enter_async_context(peer_op(url, uris))
        revokes = {"revoke": revoke, "raw_revoke": raw_revoke}
        grants = {"grant": grant, "raw_grant": raw_grant}
        rates: dict[str, list[float]] = {}
        latencies: dict[str, list[float]] = {}
        workers: dict[str, Counter[int]] = {name: Counter() for name in pids}
        for group in (workloads, revokes, grants):
            for op in group.values():  # warm-up: the last 200 of each
                await run_load(200, 16, shifted(op, total - 200))
            for r in range(args.rounds):
                for name, op in group.items():
                    before = worker_cpu_seconds(pids[name]) if name in pids else {}
                    rate, lat = await run_load(per_round, 16, shifted(op, r * per_round))
                    if name in workers:
                        after = worker_cpu_seconds(pids[name])
                        workers[name].update({p: after[p] - before.get(p, 0.0) for p in after})
                    rates.setdefault(name, []).append(round(rate))
                    latencies.setdefault(name, []).extend(lat)
    await pool.close()
    service.close()
    for floor_pool in floors.values():
        floor_pool.close()
    figures: dict[str, Any] = {"write_rounds": args.rounds, "writes_per_round": per_round}
    for name, values in rates.items():
        key = {"issue": "issue_claims", "revoke": "revoke_claims", "grant": "grant_access"}.get(
            name, name
        )
        figures[f"{key}_per_s"] = round(statistics.median(values))
        figures[f"{key}_rounds"] = values
        figures[f"{name}_p50_ms"] = round(pct(latencies[name], 50), 1)
        figures[f"{name}_p99_ms"] = round(pct(latencies[name], 99), 1)
    for name, spent in workers.items():
        busy = sorted((s for s in spent.values() if s > 0.05), reverse=True)
        figures[f"{name}_service_cpu_us"] = round(sum(busy) / (per_round * args.rounds) * 1e6)
        figures[f"{name}_worker_cpu_shares"] = [round(s / sum(busy), 2) for s in busy]
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=3000)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the writes")
    parser.add_argument(
        "--no-peer", dest="peer", action="store_false", help="leave PostGraphile out"
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="leave out issueClaim's floor (bench/floor.py)",
    )
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures, indent=2))
    print()
    print(
        f"writes: median of {figures['write_rounds']} interleaved rounds of "
        f"{figures['writes_per_round']} each"
    )
    print(
        f"issueClaim over GraphQL, 16 clients : {figures['issue_claims_per_s']} claims/s "
        f"(p50 {figures['issue_p50_ms']} ms, p99 {figures['issue_p99_ms']} ms) "
        f"= {figures['issue_claims_per_s'] / figures['raw_issue_per_s']:.2f} of raw"
    )
    print(
        f"  service CPU per issueClaim        : {figures['issue_service_cpu_us']} us "
        f"(workers' shares {figures['issue_worker_cpu_shares']})"
    )
    print(
        f"  raw: its one statement on asyncpg : {figures['raw_issue_per_s']} claims/s "
        f"(p50 {figures['raw_issue_p50_ms']} ms, p99 {figures['raw_issue_p99_ms']} ms)"
    )
    if "floor_issue_per_s" in figures:
        print(
            f"  floor: its work, bare ASGI app    : {figures['floor_issue_per_s']} claims/s "
            f"(p50 {figures['floor_issue_p50_ms']} ms, p99 {figures['floor_issue_p99_ms']} ms; "
            f"CPU {figures['floor_issue_service_cpu_us']} us); issueClaim does "
            f"{figures['issue_claims_per_s'] / figures['floor_issue_per_s']:.2f} of it"
        )
    if "peer_create_per_s" in figures:
        print(
            f"  PostGraphile 5 createClaim (1 row): {figures['peer_create_per_s']} claims/s "
            f"(p50 {figures['peer_create_p50_ms']} ms, p99 {figures['peer_create_p99_ms']} ms); "
            f"issueClaim does {figures['issue_claims_per_s'] / figures['peer_create_per_s']:.2f}"
            " of it"
        )
    print(
        f"revokeClaim over GraphQL, 16 clients: {figures['revoke_claims_per_s']} claims/s "
        f"(p50 {figures['revoke_p50_ms']} ms, p99 {figures['revoke_p99_ms']} ms) "
        f"= {figures['revoke_claims_per_s'] / figures['raw_revoke_per_s']:.2f} of raw"
    )
    print(
        f"  raw: its one statement on asyncpg : {figures['raw_revoke_per_s']} claims/s "
        f"(p50 {figures['raw_revoke_p50_ms']} ms, p99 {figures['raw_revoke_p99_ms']} ms)"
    )
    print(
        f"grantAccess over GraphQL, 16 clients: {figures['grant_access_per_s']} grants/s "
        f"(p50 {figures['grant_p50_ms']} ms, p99 {figures['grant_p99_ms']} ms) "
        f"= {figures['grant_access_per_s'] / figures['raw_grant_per_s']:.2f} of raw"
    )
    print(
        f"  raw: its one call on asyncpg      : {figures['raw_grant_per_s']} grants/s "
        f"(p50 {figures['raw_grant_p50_ms']} ms, p99 {figures['raw_grant_p99_ms']} ms)"
    )
    print(
        f"200-claim passport read, 16 clients : {figures['read_200_per_s']} reads/s "
        f"(p50 {figures['read_p50_ms']} ms, p99 {figures['read_p99_ms']} ms; "
        f"unloaded p50 {figures['read_unloaded_p50_ms']} ms)"
    )
    print(
        f"same read, raw asyncpg, 16 conns    : {figures['raw_read_200_per_s']} reads/s "
        f"(p50 {figures['raw_read_p50_ms']} ms, p99 {figures['raw_read_p99_ms']} ms)"
    )
