"""Write benchmark: bulk ingest through POST /claims:bulk and single issueClaim over HTTP, each
printed as a share of the raw limit PostgreSQL and asyncpg reach on this machine.

Run: `.venv/bin/python bench/ingest.py`. Starts a fresh embedded PostgreSQL unless
PASSPORT_BENCH_DATABASE_URL names a server (then a database of its own there, dropped after);
runs the service with uvicorn (2 workers) on 127.0.0.1 in a child process. Raw limits, measured
in the same run on the same database:

- COPY: ``copy_records_to_table`` of claim-shaped rows into a table like ``claims``;
- single-row INSERT/s with 16 connections (autocommit, one row per statement and transaction);
- 50-row lookups/s with 16 connections (a citizen's claims by primary key prefix).

All load goes to 127.0.0.1 and is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
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
    bench_database,
    competence_uris,
    pct,
    prepare,
    run_facts,
    run_load,
    service_process,
    wait_ready,
)
from bench.reads import Connection, paced, prepared_post
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
        service_process(url, settings, args.workers) as port,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        ) as http,
    ):
        await wait_ready(http)
        warm = cohort(uris, 2000, 5)
        await http.post(
            "/claims:bulk", content=warm, headers={"Content-Type": "application/x-ndjson"}
        )
        started = time.perf_counter()
        response = await http.post(
            "/claims:bulk", content=body, headers={"Content-Type": "application/x-ndjson"}
        )
        elapsed = time.perf_counter() - started
        summary = orjson.loads(response.content.splitlines()[-1])["summary"]
        assert summary["accepted"] == args.bulk_rows, summary
        results["bulk_rows"] = args.bulk_rows
        results["bulk_claims_per_s"] = round(args.bulk_rows / elapsed)

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
    results["bulk_share_of_copy"] = round(
        results["bulk_claims_per_s"] / results["raw_copy_rows_per_s"], 3
    )
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
    figures = asyncio.run(main(parser.parse_args()))
    sys.stdout.write(json.dumps(figures, indent=2) + "\n\n")
    sys.stdout.write(
        f"raw COPY                        : {figures['raw_copy_rows_per_s']} rows/s\n"
        f"raw single-row INSERT, 16 conns : {figures['raw_insert_per_s']} rows/s\n"
        f"raw 50-row lookup, 16 conns     : {figures['raw_lookup_per_s']} lookups/s\n"
        f"POST /claims:bulk, {figures['bulk_rows']} rows : {figures['bulk_claims_per_s']} claims/s"
        f" = {figures['bulk_share_of_copy']} of raw COPY (target 40,000/s, about 0.25)\n"
        f"issueClaim, 16 clients          : {figures['issue_per_s']} claims/s"
        f" = {figures['issue_share_of_insert']} of raw INSERT (target 1,500/s)\n"
        f"issueClaim at half that load    : p50 {figures['issue_half_load_p50_ms']} ms,"
        f" p99 {figures['issue_half_load_p99_ms']} ms (target p99 < 20 ms)\n"
    )
