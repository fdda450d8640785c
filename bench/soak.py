"""Soak: a mixed workload held at half capacity for minutes, watching errors, latency, memory and
database connections minute by minute, so that a leak or a slow drift shows before production.

Run: `.venv/bin/python bench/soak.py --seconds 600` (the default). Starts a fresh embedded
PostgreSQL unless PASSPORT_BENCH_DATABASE_URL names a server (then a database of its own there,
dropped after); runs the service with uvicorn (2 workers) on 127.0.0.1 in a child process, as the
other benches do; all load goes to 127.0.0.1 and is bounded in request count and time.

Seeded first: 200 citizens with 20 claims each (one bulk upload by the issuer, a public
employment service with a legal basis), each of whom grants their whole passport to an employer
(a second organisation, a reader with no legal basis). The last 40 of them change their consent
during the run. Claims issued during the run go to 2,000 other citizens, so the passports read
stay the same size and the minutes compare like with like.

The mix, each request drawn at random (seeded, `--seed`):

- 35% the issuer reads a passport under its legal basis, 35% the employer reads one under the
  citizen's consent; both ask for some 25 typed fields per claim (``READ``);
- 20% issueClaim with a fresh externalRef (the idempotency key);
- 5% a retry of an earlier issueClaim, same key and input: the earlier claim, created false;
- 2.5% revokeClaim of a claim issued earlier in the run;
- 2.5% a citizen withdraws their grant to the employer, or grants it again.

Each answer is checked: the typed outcome the state calls for (a consent read of a citizen who
has withdrawn is NotFound, and a Passport again once they grant it; while a change is in flight
either is right). Anything else (a status other than 200, a GraphQL error, an unexpected union
member or content, a timeout of 30 s, or a request shed because 256 were already in flight) is an
error.

Phases: (1) capacity, closed loop: 16 clients, each sending its next request when the last is
answered, for about 20 s (`--capacity-seconds`) after a warm-up; (2) the soak, open loop at half
that rate (`--share`) for `--seconds`: requests leave on a fixed schedule whatever the answers
do, each latency counted from its scheduled start. Every 10 s it samples the resident memory
(VmRSS from /proc) and CPU time of every service process (the uvicorn master and its
workers: the CPU time shows each worker served its share), the connections pg_stat_activity
shows to the service's database (and how many run a statement or wait for a lock), and, to tell
the service's slowness from the machine's, the statements active in the server's other
databases and the load average.

Prints per minute and overall: requests, errors, p50/p95/p99 latency, RSS per process,
connections; then a JSON summary. Exits 1 if more than 0.1% of the requests of either phase
failed, if a process's mean RSS in the last minute exceeds its mean in the first minute by more
than 20%, or if a service process exited during the soak.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core import (
    Pool,
    bench_database,
    bench_token,
    competence_uris,
    pct,
    prepare,
    prepared_post,
    run_facts,
    run_load,
    seed,
    service_server,
    wait_ready,
)
from bench.reads import paced
from service.db.embedded import asyncpg_dsn
from tests import factories

CLIENTS = 16
TIMEOUT_SECONDS = 30.0
MAX_IN_FLIGHT = 256
SAMPLE_SECONDS = 10.0
ERROR_BUDGET = 0.001
MEMORY_BUDGET = 0.20
# Tokens live oidc_max_token_lifetime_seconds (7,200 s by default) from the seeding on.
MAX_SECONDS = 5400
MIX = {
    "read_basis": 35.0,
    "read_consent": 35.0,
    "issue": 20.0,
    "retry": 5.0,
    "revoke": 2.5,
    "consent": 2.5,
}

READ = """query Read($c: CitizenRef!, $purpose: String, $basis: String) {
  passport(citizen: $c, purpose: $purpose, legalBasis: $basis) {
    __typename
    ... on Passport {
      citizenId readAt basis
      competences {
        competence { uri skillType label { text language } }
        status firstAcquiredOn lastUsedOn distinctOrganisations
        highestLevel { scale level rank }
        claims {
          id status acquiredOn lastUsedOn validUntil recordedAt
          assessmentMethod learningContext context issuerRole
          proficiency { scale level rank }
          issuer { id name kind }
          evidence { kind title url }
        }
      }
    }
    ... on Error { code message }
  }
}"""
ISSUE = """mutation($input: IssueClaimInput!) { issueClaim(input: $input) {
  __typename ... on ClaimIssued { created claim { id status } } ... on Error { code message } } }"""
REVOKE = """mutation($input: RevokeClaimInput!) { revokeClaim(input: $input) {
  __typename ... on ClaimRevoked { claim { id status } } ... on Error { code message } } }"""
GRANT = """mutation($input: GrantAccessInput!) { grantAccess(input: $input) { __typename
  ... on AccessGranted { created grant { id status } } ... on Error { code message } } }"""
# Every SAMPLE_SECONDS: the service's connections, and how busy the shared server is otherwise.
ACTIVITY = """SELECT
  count(*) FILTER (WHERE datname = $1) AS connections,
  count(*) FILTER (WHERE datname = $1 AND state = 'active') AS active,
  count(*) FILTER (WHERE datname = $1 AND wait_event_type = 'Lock') AS lock_waits,
  count(*) FILTER (WHERE datname IS DISTINCT FROM $1 AND state = 'active') AS active_elsewhere
FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"""
ACTIVITY_KEYS = ("connections", "active", "lock_waits", "active_elsewhere")
WITHDRAW = """mutation($id: ID!) { revokeAccess(id: $id) {
  __typename ... on AccessRevoked { grant { id status } } ... on Error { code message } } }"""


class Unexpected(Exception):
    """An answer that is not the typed outcome the request should have had."""

    def __init__(self, key: str, detail: bytes | str) -> None:
        super().__init__(key)
        self.key = key
        self.detail = detail if isinstance(detail, str) else detail[:300].decode(errors="replace")


@dataclass
class Outcome:
    kind: str
    error: str | None = None
    detail: str | None = None


@dataclass
class Citizen:
    insz: str
    token: str
    grant_id: str | None = None
    churns: bool = False
    version: int = 0  # odd while a consent change is in flight
    uncertain: bool = False  # a change failed: its grant is not known any more


@dataclass
class Workload:
    pool: Pool
    issuer: str  # tokens
    employer: str
    employer_id: str
    readers: list[Citizen]
    issue_pool: list[str]
    uris: list[str]
    per_citizen: int
    rng: random.Random
    retryable: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    revocable: deque[str] = field(default_factory=deque)
    issued: int = 0

    async def one(self) -> Outcome:
        kind = self.rng.choices(list(MIX), list(MIX.values()))[0]
        operation = self.operation(kind)
        kind = operation.__name__  # what it became: a retry before any issue is an issue
        try:
            await asyncio.wait_for(operation(), TIMEOUT_SECONDS)
        except Unexpected as exc:
            return Outcome(kind, f"{kind}: {exc.key}", exc.detail)
        except TimeoutError:
            return Outcome(kind, f"{kind}: timeout after {TIMEOUT_SECONDS:.0f} s")
        except Exception as exc:
            return Outcome(kind, f"{kind}: {type(exc).__name__}", str(exc)[:300])
        return Outcome(kind)

    def operation(self, kind: str) -> Callable[[], Awaitable[None]]:
        """The request to send for a kind drawn from MIX, or the nearest one possible now."""
        if kind == "retry" and not self.retryable:
            kind = "issue"
        if kind == "revoke" and not self.revocable:
            kind = "consent"
        churning = [c for c in self.readers if c.churns and c.version % 2 == 0 and not c.uncertain]
        if kind == "consent" and not churning:
            kind = "read_consent"

        async def read_basis() -> None:
            await self.read(self.rng.choice(self.readers), consent=False)

        async def read_consent() -> None:
            await self.read(self.rng.choice(self.readers), consent=True)

        async def issue() -> None:
            await self.issue()

        async def retry() -> None:
            await self.retry(*self.rng.choice(self.retryable))

        async def revoke() -> None:
            await self.revoke(self.revocable.popleft())

        async def consent() -> None:
            await self.change_consent(self.rng.choice(churning))

        operations = (read_basis, read_consent, issue, retry, revoke, consent)
        return {op.__name__: op for op in operations}[kind]

    async def gql(self, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        request = prepared_post("/graphql", token, {"query": query, "variables": variables})
        status, body = await self.pool.post(request)
        if status != 200:
            raise Unexpected(f"HTTP {status}", body)
        answer = orjson.loads(body)
        if answer.get("errors"):
            raise Unexpected("GraphQL error", body)
        data: dict[str, Any] = answer["data"]
        return data

    async def read(self, citizen: Citizen, *, consent: bool) -> None:
        version, granted = citizen.version, citizen.grant_id is not None
        steady = version % 2 == 0 and not citizen.uncertain
        data = await self.gql(
            self.employer if consent else self.issuer,
            READ,
            {
                "c": {"insz": citizen.insz},
                "purpose": "job application" if consent else "benchmark",
                "basis": None if consent else "BENCH",
            },
        )
        passport = data["passport"]
        shown = (
            passport["__typename"] == "Passport"
            and passport["basis"] == ("CONSENT" if consent else "LEGAL_BASIS")
            and len(passport["competences"]) == self.per_citizen
        )
        refused = passport["__typename"] == "NotFound"
        if not consent or (steady and citizen.version == version):
            right = shown if granted or not consent else refused
        else:  # the consent changed meanwhile: either answer is right
            right = shown or refused
        if not right:
            raise Unexpected(passport["__typename"], orjson.dumps(passport))

    def claim(self, insz: str) -> dict[str, Any]:
        return factories.claim_input(
            insz,
            self.rng.choice(self.uris),
            acquiredOn=(date.today() - timedelta(days=400)).isoformat(),
            lastUsedOn=(date.today() - timedelta(days=30)).isoformat(),
        )

    async def issue(self) -> None:
        data = self.claim(self.rng.choice(self.issue_pool))
        result = (await self.gql(self.issuer, ISSUE, {"input": data}))["issueClaim"]
        if result["__typename"] != "ClaimIssued" or not result["created"]:
            raise Unexpected(result["__typename"], orjson.dumps(result))
        self.issued += 1
        if self.issued % 4 == 0:  # a revoked claim's key is not retried: its answer changes
            self.revocable.append(result["claim"]["id"])
        else:
            self.retryable.append((data, result["claim"]["id"]))

    async def retry(self, data: dict[str, Any], claim_id: str) -> None:
        result = (await self.gql(self.issuer, ISSUE, {"input": data}))["issueClaim"]
        if (
            result["__typename"] != "ClaimIssued"
            or result["created"]
            or result["claim"]["id"] != claim_id
        ):
            raise Unexpected(result["__typename"], orjson.dumps(result))

    async def revoke(self, claim_id: str) -> None:
        variables = {"input": {"claimId": claim_id, "reason": "issued in error"}}
        result = (await self.gql(self.issuer, REVOKE, variables))["revokeClaim"]
        if result["__typename"] != "ClaimRevoked" or result["claim"]["status"] != "REVOKED":
            raise Unexpected(result["__typename"], orjson.dumps(result))

    async def change_consent(self, citizen: Citizen) -> None:
        citizen.version += 1
        changed = False
        try:
            if citizen.grant_id is None:
                citizen.grant_id = await self.grant(citizen)
            else:
                result = (await self.gql(citizen.token, WITHDRAW, {"id": citizen.grant_id}))[
                    "revokeAccess"
                ]
                if result["__typename"] != "AccessRevoked" or result["grant"]["status"] != (
                    "REVOKED"
                ):
                    raise Unexpected(result["__typename"], orjson.dumps(result))
                citizen.grant_id = None
            changed = True
        finally:
            citizen.uncertain = citizen.uncertain or not changed
            citizen.version += 1

    async def grant(self, citizen: Citizen) -> str:
        expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        grant = {
            "granteeKind": "ORGANISATION",
            "organisationId": self.employer_id,
            "purpose": "job application",
            "expiresAt": expires,
            "idempotencyKey": factories.ref(),
        }
        result = (await self.gql(citizen.token, GRANT, {"input": grant}))["grantAccess"]
        if (
            result["__typename"] != "AccessGranted"
            or not result["created"]
            or result["grant"]["status"] != "ACTIVE"
        ):
            raise Unexpected(result["__typename"], orjson.dumps(result))
        grant_id: str = result["grant"]["id"]
        return grant_id


@dataclass
class Record:
    at: float  # seconds from the phase's start (the scheduled start, open loop)
    latency: float
    outcome: Outcome


@dataclass
class Sample:
    at: float
    rss_kib: dict[int, int]
    cpu_seconds: dict[int, float]  # user + system, since the process started
    connections: int  # to the service's database
    active: int  # of them, running a statement
    lock_waits: int  # of them, waiting for a lock
    active_elsewhere: int  # statements running in the server's other databases (other work)
    load: float  # the machine's 1-minute load average


def service_pids(master: int) -> list[int]:
    """The master and every process descended from it (workers, multiprocessing's helpers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [master]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(found)


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_label(pid: int, master: int) -> str:
    if pid == master:
        return "master"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        cmdline = ""
    return f"{'resource_tracker' if 'resource_tracker' in cmdline else 'worker'}-{pid}"


async def sample(
    master: int, dsn: str, database: str, origin: float, stop: asyncio.Event
) -> tuple[list[Sample], dict[int, str]]:
    """Every SAMPLE_SECONDS until stop, and once more at stop; with each process's label, read
    while it runs."""
    samples: list[Sample] = []
    labels: dict[int, str] = {}
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            rss = {pid: kib for pid in service_pids(master) if (kib := rss_kib(pid)) is not None}
            for pid in rss:
                labels.setdefault(pid, process_label(pid, master))
            db = await conn.fetchrow(ACTIVITY, database)
            load = load_average()
            cpu = {pid: used for pid in rss if (used := cpu_seconds(pid)) is not None}
            at = time.perf_counter() - origin
            activity = {key: int(db[key]) for key in ACTIVITY_KEYS}
            samples.append(Sample(at, rss, cpu, load=load, **activity))
            if stop.is_set():
                return samples, labels
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)
    finally:
        await conn.close()


def latency_figures(records: list[Record]) -> dict[str, Any]:
    answered = [r.latency for r in records if r.outcome.kind != "shed"]
    errors = sum(r.outcome.error is not None for r in records)
    figures: dict[str, Any] = {
        "requests": len(records),
        "errors": errors,
        "error_rate": round(errors / len(records), 5) if records else 0.0,
    }
    if answered:
        for p in (50, 95, 99):
            figures[f"p{p}_ms"] = round(pct(answered, p), 1)
    return figures


def summarise(
    records: list[Record], samples: list[Sample], labels: dict[int, str], seconds: float
) -> dict[str, Any]:
    minutes = max(1, math.ceil(seconds / 60))

    def minute(at: float) -> int:
        return min(minutes - 1, max(0, int(at // 60)))

    rows = []
    for m in range(minutes):
        in_minute = [s for s in samples if minute(s.at) == m]
        row = {"minute": m + 1, **latency_figures([r for r in records if minute(r.at) == m])}
        row["rss_mib"] = {
            labels[pid]: round(sum(kibs) / len(kibs) / 1024, 1)
            for pid in sorted(labels)
            if (kibs := [s.rss_kib[pid] for s in in_minute if pid in s.rss_kib])
        }
        row["db_connections_max"] = max((s.connections for s in in_minute), default=0)
        row["db_active_max"] = max((s.active for s in in_minute), default=0)
        row["db_lock_waits_max"] = max((s.lock_waits for s in in_minute), default=0)
        row["other_databases_active_max"] = max((s.active_elsewhere for s in in_minute), default=0)
        row["load_average"] = round(sum(s.load for s in in_minute) / max(1, len(in_minute)), 2)
        rows.append(row)
    memory = {}
    first, last = rows[0]["rss_mib"], rows[-1]["rss_mib"]
    for pid, label in sorted(labels.items()):
        if label in first and label in last:
            kibs = [s.rss_kib[pid] for s in samples if pid in s.rss_kib]
            cpu = [s.cpu_seconds[pid] for s in samples if pid in s.cpu_seconds]
            memory[label] = {
                "first_minute_mib": first[label],
                "last_minute_mib": last[label],
                "growth": round(last[label] / first[label] - 1, 4),
                "min_mib": round(min(kibs) / 1024, 1),
                "max_mib": round(max(kibs) / 1024, 1),
                "cpu_seconds_in_soak": round(cpu[-1] - cpu[0], 1) if cpu else None,
            }
    started_with = set(samples[0].rss_kib) if samples else set()
    ended_with = set(samples[-1].rss_kib) if samples else set()
    return {
        "minutes": rows,
        "memory": memory,
        "processes_exited": sorted(labels[p] for p in started_with - ended_with),
        "processes_started": sorted(labels[p] for p in ended_with - started_with),
        "db_connections_max": max((s.connections for s in samples), default=0),
        "samples": len(samples),
    }


def by_kind(records: list[Record]) -> dict[str, Any]:
    kinds = sorted({r.outcome.kind for r in records})
    return {k: latency_figures([r for r in records if r.outcome.kind == k]) for k in kinds}


def error_kinds(records: list[Record]) -> tuple[dict[str, int], dict[str, str]]:
    counts = Counter(r.outcome.error for r in records if r.outcome.error is not None)
    examples: dict[str, str] = {}
    for r in records:
        if r.outcome.error is not None and r.outcome.detail:
            examples.setdefault(r.outcome.error, r.outcome.detail)
    return dict(counts.most_common()), examples


async def seed_passports(
    port: int, settings: Any, token: str, employer_id: str, uris: list[str], args: Any
) -> list[Citizen]:
    """The read pool: citizens with claims (one bulk upload), each granting the employer."""
    wanted: set[str] = set()
    while len(wanted) < args.citizens:
        wanted.add(factories.insz())
    citizens = [Citizen(insz, bench_token(settings, insz)) for insz in sorted(wanted)]
    for citizen in citizens[-args.churn :] if args.churn else []:
        citizen.churns = True
    acquired = (date.today() - timedelta(days=400)).isoformat()
    used = (date.today() - timedelta(days=30)).isoformat()
    lines = [
        orjson.dumps(factories.claim_input(c.insz, uri, acquiredOn=acquired, lastUsedOn=used))
        for c in citizens
        for uri in uris[: args.claims_per_citizen]
    ]
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=600,
    ) as http:
        await wait_ready(http)
        response = await http.post(
            "/claims:bulk",
            content=b"\n".join(lines) + b"\n",
            headers={"Content-Type": "application/x-ndjson"},
        )
    summary = orjson.loads(response.content.splitlines()[-1])["summary"]
    assert summary["accepted"] == len(lines), summary
    return citizens


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="passport-bench-soak-"))
    async with bench_database(workdir) as url:
        return await _run(args, workdir, url)


async def _run(args: argparse.Namespace, workdir: Path, url: str) -> dict[str, Any]:
    prepared = await prepare(url, workdir)
    settings, issuer = prepared.settings, prepared.token
    employer_id = await seed(
        url,
        settings,
        kind="employer",
        name="Bench employer",
        client_id="bench-employer",
        scopes=("passports:read",),
        legal_basis=None,
    )
    employer = bench_token(
        settings, "bench-employer", client_id="bench-employer", scopes=["passports:read"]
    )
    uris = await competence_uris(url, 200)
    rng = random.Random(args.seed)
    results: dict[str, Any] = {
        **run_facts(args.workers),
        "database": "PASSPORT_BENCH_DATABASE_URL"
        if os.environ.get("PASSPORT_BENCH_DATABASE_URL")
        else "embedded",
        "mix_percent": MIX,
        "seeded": {
            "citizens": args.citizens,
            "claims_per_citizen": args.claims_per_citizen,
            "consent_churn_citizens": args.churn,
            "issue_pool_citizens": args.issue_pool,
        },
    }
    dsn = asyncpg_dsn(make_url(url))
    database = make_url(url).database or ""
    async with service_server(url, settings, args.workers) as (port, server):
        readers = await seed_passports(port, settings, issuer, str(employer_id), uris, args)
        pool = Pool(port)
        workload = Workload(
            pool,
            issuer,
            employer,
            str(employer_id),
            readers,
            [factories.insz() for _ in range(args.issue_pool)],
            uris,
            args.claims_per_citizen,
            rng,
        )

        async def grant(i: int) -> None:
            readers[i].grant_id = await workload.grant(readers[i])

        await run_load(len(readers), 8, grant)

        capacity: list[Record] = []
        origin = time.perf_counter()

        async def closed(_: int) -> None:
            started = time.perf_counter()
            outcome = await workload.one()
            capacity.append(Record(started - origin, time.perf_counter() - started, outcome))

        warm, _ = await run_load(CLIENTS * 20, CLIENTS, closed)  # warm-up, sizes the next run
        capacity.clear()
        total = max(CLIENTS * 20, round(warm * args.capacity_seconds))
        rate, _ = await run_load(total, CLIENTS, closed)
        results["capacity"] = {
            "clients": CLIENTS,
            "per_s": round(rate, 1),
            "seconds": round(total / rate, 1),
            **latency_figures(capacity),
        }
        target = min(args.max_rate, rate * args.share)

        records: list[Record] = []
        in_flight = 0

        async def open_loop() -> Outcome:
            nonlocal in_flight
            if in_flight >= MAX_IN_FLIGHT:
                return Outcome("shed", f"shed: {MAX_IN_FLIGHT} requests already in flight")
            in_flight += 1
            try:
                return await workload.one()
            finally:
                in_flight -= 1

        def done(at: float, latency: float, outcome: Outcome) -> None:
            records.append(Record(at, latency, outcome))

        stop = asyncio.Event()
        origin = time.perf_counter()
        sampler = asyncio.create_task(sample(server.pid, dsn, database, origin, stop))
        await asyncio.sleep(0)  # the first sample is taken before the load starts
        achieved, _ = await paced(target, args.seconds, open_loop, done)
        stop.set()
        samples, labels = await sampler
        pool.close()

    counts, examples = error_kinds(capacity + records)
    results["soak"] = {
        "seconds": args.seconds,
        "target_per_s": round(target, 1),
        "achieved_per_s": round(achieved, 1),
        **latency_figures(records),
        "by_kind": by_kind(records),
    }
    results["errors_by_kind"] = counts
    results["error_examples"] = examples
    results.update(summarise(records, samples, labels, args.seconds))
    grown = {k: v["growth"] for k, v in results["memory"].items() if v["growth"] > MEMORY_BUDGET}
    results["verdict"] = {
        "error_rate_ok": results["soak"]["error_rate"] <= ERROR_BUDGET
        and results["capacity"]["error_rate"] <= ERROR_BUDGET,
        "memory_ok": not grown,
        "processes_ok": not results["processes_exited"],
    }
    results["verdict"]["passed"] = all(results["verdict"].values())
    return results


def table(figures: dict[str, Any]) -> str:
    """Per minute; db: the service's connections (max), those active and waiting for a lock;
    elsewhere: statements active in the server's other databases; load: the machine's."""
    labels = sorted({label for row in figures["minutes"] for label in row["rss_mib"]})
    head = (
        f"{'min':>3} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
        f" {'db conns':>8} {'active':>6} {'locked':>6} {'elsewhere':>9} {'load':>5} "
    )
    head += " ".join(f"{label:>16}" for label in labels)
    lines = [head + "  (RSS MiB, mean of the minute's samples)"]
    for row in figures["minutes"]:
        rss = " ".join(f"{row['rss_mib'].get(label, float('nan')):>16.1f}" for label in labels)
        lines.append(
            f"{row['minute']:>3} {row['requests']:>8} {row['errors']:>6}"
            f" {row.get('p50_ms', 0):>7} {row.get('p95_ms', 0):>7} {row.get('p99_ms', 0):>7}"
            f" {row['db_connections_max']:>8} {row['db_active_max']:>6}"
            f" {row['db_lock_waits_max']:>6} {row['other_databases_active_max']:>9}"
            f" {row['load_average']:>5} {rss}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=600.0, help="of the open-loop soak")
    parser.add_argument("--capacity-seconds", type=float, default=20.0)
    parser.add_argument("--share", type=float, default=0.5, help="of capacity, for the soak")
    parser.add_argument("--max-rate", type=float, default=1000.0, help="requests/s at most")
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--claims-per-citizen", type=int, default=20)
    parser.add_argument("--churn", type=int, default=40, help="citizens who change consent")
    parser.add_argument("--issue-pool", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    if not 0 < arguments.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be in (0, {MAX_SECONDS}]: the bench's tokens expire")
    if not 0 < arguments.claims_per_citizen <= 200:
        parser.error("--claims-per-citizen must be in [1, 200]: one competence each")
    if not 0 <= arguments.churn <= arguments.citizens:
        parser.error("--churn must be at most --citizens")
    figures = asyncio.run(main(arguments))
    print(table(figures))
    print()
    print(json.dumps(figures, indent=2))
    sys.exit(0 if figures["verdict"]["passed"] else 1)
