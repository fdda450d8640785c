"""Write benchmark: bulk ingest through POST /claims:bulk and single issueClaim over HTTP, each
printed as a share of the raw limit PostgreSQL and asyncpg reach on this machine.

Run: `.venv/bin/python bench/ingest.py`. Starts a fresh embedded PostgreSQL unless
PASSPORT_BENCH_DATABASE_URL names a server (then a database of its own there, dropped after);
runs the service with uvicorn (2 workers) on 127.0.0.1 in a child process. Raw limits, measured
in the same run on the same database:

- COPY of the same rows into the same indexed tables: what the upload writes for its rows (the
  citizens and their identities, the idempotency refs, the claims and their chained events, as
  ``raw_bulk_copy`` builds them outside the clock), one binary COPY per table in one
  transaction into the real tables with their indexes, keys and checks, run before and after
  the upload and averaged; the goal is half of it;
- COPY of claim-shaped rows alone into an unindexed table like ``claims`` (the ceiling of COPY);
- single-row INSERT/s with 16 connections (autocommit, one row per statement and transaction);
- 50-row lookups/s with 16 connections (a citizen's claims by primary key prefix).

And, for the upload, the CPU per row of the service's processes and of PostgreSQL (and of
PostgreSQL for the raw COPY): CPU moves less than throughput with what else the machine runs.

All load goes to 127.0.0.1 and is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core import (
    ISSUE,
    Connection,
    bench_database,
    competence_uris,
    cpu_seconds,
    pct,
    postgres_cpu_seconds,
    prepare,
    prepared_post,
    run_facts,
    run_load,
    service_server,
    wait_ready,
)
from bench.reads import paced
from service.db.embedded import asyncpg_dsn
from tests import factories

CLIENTS = 16


async def raw_limits(dsn: str, rows: int, seconds: float) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE bench_claims (LIKE claims INCLUDING DEFAULTS)")
    competence = await conn.fetchval("SELECT id FROM competences LIMIT 1")
    now = datetime.now(UTC)
    citizens = [uuid.uuid4() for _ in range(max(1, rows // 50))]  # 50 rows each

    def record(i: int) -> tuple[Any, ...]:
        return (
            citizens[i % len(citizens)], uuid.uuid4(), None, None, None, competence, "eqf", "5",
            625, "context", "exam", "formal", "[]", date(2020, 1, 1), None, None, now,
            f"ref-{i}", None,
        )  # fmt: skip

    columns = [
        r["attname"]
        for r in await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'bench_claims'::regclass"
            " AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        )
    ]
    records = [record(i) for i in range(rows)]
    started = time.perf_counter()
    await conn.copy_records_to_table("bench_claims", columns=columns, records=records)
    copy_rate = rows / (time.perf_counter() - started)
    lookup_citizen = citizens[0]
    await conn.execute("CREATE INDEX ON bench_claims (citizen_id)")
    await conn.execute("ANALYZE bench_claims")
    await conn.close()

    pool = await asyncpg.create_pool(dsn, min_size=CLIENTS, max_size=CLIENTS)
    placeholders = ", ".join(f"${i + 1}" for i in range(len(columns)))
    insert = f"INSERT INTO bench_claims ({', '.join(columns)}) VALUES ({placeholders})"
    deadline = time.perf_counter() + seconds
    counts = [0] * CLIENTS

    async def inserter(n: int) -> None:
        async with pool.acquire() as c:
            while time.perf_counter() < deadline:
                await c.execute(insert, *record(rows + n * 1_000_000 + counts[n]))
                counts[n] += 1

    started = time.perf_counter()
    await asyncio.gather(*(inserter(n) for n in range(CLIENTS)))
    insert_rate = sum(counts) / (time.perf_counter() - started)

    lookups = [0] * CLIENTS
    deadline = time.perf_counter() + seconds

    async def looker(n: int) -> None:
        async with pool.acquire() as c:
            while time.perf_counter() < deadline:
                found = await c.fetch(
                    "SELECT * FROM bench_claims WHERE citizen_id = $1 LIMIT 50", lookup_citizen
                )
                assert len(found) == 50
                lookups[n] += 1

    started = time.perf_counter()
    await asyncio.gather(*(looker(n) for n in range(CLIENTS)))
    lookup_rate = sum(lookups) / (time.perf_counter() - started)
    await pool.close()
    return {
        "raw_copy_rows_per_s": round(copy_rate),
        "raw_insert_per_s": round(insert_rate),
        "raw_lookup_per_s": round(lookup_rate),
    }


async def raw_bulk_copy(dsn: str, body: bytes, hmac_key: bytes, tag: str) -> tuple[float, float]:
    """Claims/s for COPY of ``body``'s rows into the real tables (see the module's docstring),
    renamed by ``tag`` (other citizens and refs, the same sizes) so the upload's own rows stay
    new, and PostgreSQL's CPU seconds per row for it. Every row is built as the upload builds
    it, before the clock starts."""
    from service import canonical
    from service.events.chain import GENESIS, event_hash
    from service.events.payloads import claim_payload

    conn = await asyncpg.connect(dsn)
    org, client = await conn.fetchrow("SELECT organisation_id, id FROM api_clients LIMIT 1")
    competences = {
        uri: cid
        for cid, uri in await conn.fetch("SELECT id, uri FROM competences WHERE uri IS NOT NULL")
    }
    now = datetime.now(UTC)
    citizens: dict[str, uuid.UUID] = {}
    heads: dict[uuid.UUID, tuple[int, bytes]] = {}
    refs, claims, events = [], [], []
    for line in body.splitlines():
        data = orjson.loads(line)
        number = data["insz"]
        citizen = citizens.setdefault(number, uuid.uuid4())
        claim_id = uuid.uuid4()
        level = data["proficiency"]["level"]
        row = {
            "citizen_id": citizen, "claim_id": claim_id, "organisation_id": org,
            "client_id": client, "issuer_role": data.get("issuerRole"),
            "competence_id": competences[data["competenceUri"]], "proficiency_scale": "eqf",
            "proficiency_level": level, "proficiency_rank": 625, "context": data.get("context"),
            "assessment_method": data["assessmentMethod"].lower(),
            "learning_context": data["learningContext"].lower(),
            "evidence": orjson.dumps(data.get("evidence", [])).decode(),
            "acquired_on": date.fromisoformat(data["acquiredOn"]), "last_used_on": None,
            "valid_until": None, "recorded_at": now, "external_ref": tag + data["externalRef"],
            "supersedes_claim_id": None,
        }  # fmt: skip
        claims.append(tuple(row.values()))
        refs.append(
            (
                org,
                row["external_ref"],
                citizen,
                claim_id,
                hashlib.sha256(canonical.dumps(data)).digest(),
            )
        )
        seq, prev = heads.get(citizen, (0, GENESIS))
        event_id, payload = uuid.uuid4(), claim_payload(row)
        link = event_hash(
            prev, citizen_id=citizen, seq=seq + 1, event_id=event_id,
            event_type="claim.issued", occurred_at=now, payload=payload,
        )  # fmt: skip
        heads[citizen] = (seq + 1, link)
        events.append(
            (citizen, seq + 1, event_id, "claim.issued", now, orjson.dumps(payload).decode(),
             prev, link)
        )  # fmt: skip
    identities = [
        (hmac.new(hmac_key, (tag + n).encode(), hashlib.sha256).digest(), c, 1)
        for n, c in citizens.items()
    ]
    column_names = list(row)
    database = postgres_cpu_seconds()
    started = time.perf_counter()
    async with conn.transaction():
        await conn.copy_records_to_table(
            "citizens", columns=["citizen_id"], records=[(c,) for c in citizens.values()]
        )
        await conn.copy_records_to_table(
            "citizen_identities", columns=["insz_hash", "citizen_id", "key_version"],
            records=identities,
        )  # fmt: skip
        await conn.copy_records_to_table(
            "claim_refs",
            columns=["organisation_id", "external_ref", "citizen_id", "claim_id", "payload_digest"],
            records=refs,
        )
        await conn.copy_records_to_table("claims", columns=column_names, records=claims)
        await conn.copy_records_to_table(
            "citizen_events",
            columns=["citizen_id", "seq", "event_id", "event_type", "occurred_at", "payload",
                     "prev_hash", "hash"],
            records=events,
        )  # fmt: skip
    elapsed = time.perf_counter() - started
    spent = postgres_cpu_seconds() - database  # the backend still lives: its CPU counts
    await conn.close()
    return len(claims) / elapsed, spent / len(claims)


def cohort(uris: list[str], rows: int, per_citizen: int) -> bytes:
    acquired = (date.today() - timedelta(days=400)).isoformat()
    lines = []
    citizen = factories.insz()
    for i in range(rows):
        if i % per_citizen == 0:
            citizen = factories.insz()
        data = factories.claim_input(
            citizen, uris[i % len(uris)], acquiredOn=acquired, lastUsedOn=None
        )
        lines.append(orjson.dumps(data))
    return b"\n".join(lines) + b"\n"


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="passport-bench-ingest-"))
    async with bench_database(workdir) as url:
        return await _run(args, workdir, url)


async def _run(args: argparse.Namespace, workdir: Path, url: str) -> dict[str, Any]:
    prepared = await prepare(url, workdir)
    settings, token = prepared.settings, prepared.token
    results = run_facts(args.workers)
    dsn = asyncpg_dsn(make_url(url))
    results.update(await raw_limits(dsn, args.bulk_rows, args.seconds))
    uris = await competence_uris(url, 200)
    body = cohort(uris, args.bulk_rows, 5)
    async with (
        service_server(url, settings, args.workers) as (port, server),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        ) as http,
    ):
        await wait_ready(http)
        hmac_key = settings.hmac_key()
        raw_before, raw_cpu = await raw_bulk_copy(dsn, body, hmac_key, "raw-before-")
        results["raw_bulk_copy_postgres_cpu_us_per_row"] = round(raw_cpu * 1e6)
        warm = cohort(uris, 2000, 5)
        await http.post(
            "/claims:bulk", content=warm, headers={"Content-Type": "application/x-ndjson"}
        )
        service, database = cpu_seconds(server.pid), postgres_cpu_seconds()
        started = time.perf_counter()
        response = await http.post(
            "/claims:bulk", content=body, headers={"Content-Type": "application/x-ndjson"}
        )
        elapsed = time.perf_counter() - started
        # Where a row's time goes: the service's processes and PostgreSQL, CPU per row.
        results["bulk_service_cpu_us_per_row"] = round(
            (cpu_seconds(server.pid) - service) / args.bulk_rows * 1e6
        )
        results["bulk_postgres_cpu_us_per_row"] = round(
            (postgres_cpu_seconds() - database) / args.bulk_rows * 1e6
        )
        summary = orjson.loads(response.content.splitlines()[-1])["summary"]
        assert summary["accepted"] == args.bulk_rows, summary
        results["bulk_rows"] = args.bulk_rows
        results["bulk_claims_per_s"] = round(args.bulk_rows / elapsed)
        raw_after, _ = await raw_bulk_copy(dsn, body, hmac_key, "raw-after-")
        results["raw_bulk_copy_claims_per_s"] = round((raw_before + raw_after) / 2)
        results["raw_bulk_copy_before_after"] = [round(raw_before), round(raw_after)]
        results["bulk_share_of_copy"] = round(
            results["bulk_claims_per_s"] / results["raw_bulk_copy_claims_per_s"], 3
        )
        if args.bulk_only:
            return results

        acquired = (date.today() - timedelta(days=400)).isoformat()
        requests = [
            prepared_post(
                "/graphql",
                token,
                {
                    "query": ISSUE,
                    "variables": {
                        "input": factories.claim_input(
                            factories.insz(),
                            uris[i % len(uris)],
                            acquiredOn=acquired,
                            lastUsedOn=None,
                        )
                    },
                },
            )
            for i in range(args.issues * 3)
        ]
        pending = iter(requests)
        connections = [await Connection.open(port) for _ in range(CLIENTS)]
        free: asyncio.Queue[Connection] = asyncio.Queue()
        for c in connections:
            free.put_nowait(c)

        async def issue(_: int = 0) -> None:
            c = await free.get()
            try:
                status, answer = await c.post(next(pending))
                assert status == 200 and b'"ClaimIssued"' in answer, answer[:300]
            finally:
                free.put_nowait(c)

        await run_load(200, CLIENTS, issue)  # warm-up
        rate, latencies = await run_load(args.issues, CLIENTS, issue)
        results["issue_per_s"] = round(rate)
        results["issue_p99_ms_at_max"] = round(pct(latencies, 99), 1)
        half = rate / 2
        _, paced_latencies = await paced(half, min(args.seconds, (args.issues * 1.5) / half), issue)
        results["issue_half_load_per_s"] = round(half)
        results["issue_half_load_p50_ms"] = round(pct(paced_latencies, 50), 1)
        results["issue_half_load_p99_ms"] = round(pct(paced_latencies, 99), 1)
        for c in connections:
            c.close()
    results["issue_share_of_insert"] = round(
        results["issue_per_s"] / results["raw_insert_per_s"], 3
    )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bulk-rows", type=int, default=50_000)
    parser.add_argument("--issues", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bulk-only", action="store_true", help="skip issueClaim")
    figures = asyncio.run(main(parser.parse_args()))
    sys.stdout.write(json.dumps(figures, indent=2) + "\n\n")
    sys.stdout.write(
        f"raw COPY, claim rows, no index  : {figures['raw_copy_rows_per_s']} rows/s\n"
        f"raw COPY of the upload's rows   : {figures['raw_bulk_copy_claims_per_s']} claims/s"
        " (citizens, identities, refs, claims, events; indexed tables)\n"
        f"raw single-row INSERT, 16 conns : {figures['raw_insert_per_s']} rows/s\n"
        f"raw 50-row lookup, 16 conns     : {figures['raw_lookup_per_s']} lookups/s\n"
        f"POST /claims:bulk, {figures['bulk_rows']} rows : {figures['bulk_claims_per_s']} claims/s"
        f" = {figures['bulk_share_of_copy']} of the raw COPY of its rows (goal 0.5)\n"
        f"  CPU per row: service {figures['bulk_service_cpu_us_per_row']} us, PostgreSQL "
        f"{figures['bulk_postgres_cpu_us_per_row']} us (the raw COPY's PostgreSQL: "
        f"{figures['raw_bulk_copy_postgres_cpu_us_per_row']} us)\n"
    )
    if "issue_per_s" in figures:
        sys.stdout.write(
            f"issueClaim, 16 clients          : {figures['issue_per_s']} claims/s"
            f" = {figures['issue_share_of_insert']} of raw INSERT (target 1,500/s)\n"
            f"issueClaim at half that load    : p50 {figures['issue_half_load_p50_ms']} ms,"
            f" p99 {figures['issue_half_load_p99_ms']} ms (target p99 < 20 ms)\n"
        )
