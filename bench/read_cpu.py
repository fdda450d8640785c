"""CPU per passport read, in-process: what the service's Python and PostgreSQL spend on one read.

Run: `.venv/bin/python bench/read_cpu.py [--reads 3000]`. Starts a fresh embedded PostgreSQL
unless PASSPORT_BENCH_DATABASE_URL names a server (then a database of its own there, dropped
after), builds the app in this process and sends it ``bench/reads.py``'s 50-claim read as ASGI
calls, one after another: no HTTP server, no load generator, no second worker. Prints:

1. the CPU time per read of this process (the service's Python: the request path, GraphQL,
   the statements' round trips) and of the PostgreSQL processes (every statement of the read);
2. the compiled passport statement alone, on its own asyncpg connection and generic plan (as
   the read runs it), as the backend's CPU time per execution, and the answer's size;
3. with ``--issues N``, the same for N of ``bench/core.py``'s ``issueClaim`` requests.

CPU time moves far less than throughput with what else the machine runs, so this is the bench
for telling two versions of the read apart: run it in both checkouts, in turn, a few times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core import (
    ISSUE,
    ISSUE_MANY,
    bench_database,
    competence_uris,
    postgres_cpu_seconds,
    prepare,
)
from bench.reads import READ
from service.app import create_app
from service.db.embedded import asyncpg_dsn
from service.schema.passports import compiled
from tests import factories


async def post(app: Any, token: str, body: dict[str, Any]) -> bytes:
    """One POST /graphql straight into the ASGI app."""
    payload = orjson.dumps(body)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    parts: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(parts)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="passport-bench-cpu-"))
    async with bench_database(workdir) as url:
        prepared = await prepare(url, workdir)
        os.environ.update(
            PASSPORT_DATABASE_URL=url,
            PASSPORT_DATA_DIR=str(prepared.settings.data_dir),
            PASSPORT_INSZ_HMAC_KEY="b" * 48,
            PASSPORT_LOG_LEVEL="WARNING",
            PASSPORT_RATE_LIMITS=json.dumps(
                dict.fromkeys(("partner", "reader"), "100000000/minute")
            ),
        )
        app = create_app()
        async with app.router.lifespan_context(app):
            return await _measure(app, url, prepared.token, args)


async def _measure(app: Any, url: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    citizen = factories.insz()
    acquired = (date.today() - timedelta(days=400)).isoformat()
    used = (date.today() - timedelta(days=30)).isoformat()
    inputs = [
        factories.claim_input(citizen, uri, acquiredOn=acquired, lastUsedOn=used)
        for uri in await competence_uris(url, args.claims)
    ]
    answer = await post(app, token, {"query": ISSUE_MANY, "variables": {"inputs": inputs}})
    assert orjson.loads(answer)["data"]["issueClaims"]["accepted"] == args.claims, answer[:300]
    read = {"query": READ, "variables": {"c": {"insz": citizen}}}

    # The statement the read sends, as the compiled path makes it.
    made: list[tuple[str, tuple[Any, ...]]] = []
    statement_for = compiled.Selection.statement_for

    def spy(self: compiled.Selection, *given: Any) -> tuple[str, tuple[Any, ...]]:
        # Kept without the access record (its id is the read's): the read itself, repeated.
        made.append(statement_for(self, *given[:5]))
        return statement_for(self, *given)

    compiled.Selection.statement_for = spy  # type: ignore[method-assign,assignment]
    try:
        answer = await post(app, token, read)
    finally:
        compiled.Selection.statement_for = statement_for  # type: ignore[method-assign]
    passport = orjson.loads(answer)["data"]["passport"]
    assert len(passport["competences"]) == args.claims, answer[:300]

    for _ in range(100):  # warm-up: plans, caches, pooled connections
        await post(app, token, read)
    python, database = time.process_time(), postgres_cpu_seconds()
    for _ in range(args.reads):
        await post(app, token, read)
    results: dict[str, Any] = {
        "date": date.today().isoformat(),
        "claims": args.claims,
        "reads": args.reads,
        "response_bytes": len(answer),
        "python_cpu_us_per_read": round((time.process_time() - python) / args.reads * 1e6),
        "postgres_cpu_us_per_read": round((postgres_cpu_seconds() - database) / args.reads * 1e6),
    }
    if made:
        sql, given = made[-1]
        conn = await asyncpg.connect(asyncpg_dsn(make_url(url)))
        try:
            backend = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()"))
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            statement = await conn.prepare(sql)
            for _ in range(50):
                rows = await statement.fetch(*given)
            before = sum(backend.cpu_times()[:2])
            for _ in range(args.reads // 2):
                rows = await statement.fetch(*given)
            spent = sum(backend.cpu_times()[:2]) - before
        finally:
            await conn.close()
        results["statement_backend_cpu_us"] = round(spent / (args.reads // 2) * 1e6)
        results["statement_answer_chars"] = len(rows[0][1])
    if args.issues:
        results.update(await _issue_cpu(app, url, token, args.issues))
    return results


async def _issue_cpu(app: Any, url: str, token: str, count: int) -> dict[str, Any]:
    """``bench/core.py``'s ``issueClaim`` (a new citizen each, ``claim { id }`` answered), the
    same way: CPU per request of this process and of PostgreSQL, after 200 to warm up."""
    uris = await competence_uris(url, 200)
    acquired = (date.today() - timedelta(days=400)).isoformat()
    bodies = [
        {
            "query": ISSUE,
            "variables": {
                "input": factories.claim_input(
                    factories.insz(), uris[i % len(uris)], acquiredOn=acquired, lastUsedOn=None
                )
            },
        }
        for i in range(count + 200)
    ]
    for body in bodies[:200]:
        answer = await post(app, token, body)
    assert b'"ClaimIssued"' in answer, answer[:300]
    python, database = time.process_time(), postgres_cpu_seconds()
    for body in bodies[200:]:
        await post(app, token, body)
    return {
        "issues": count,
        "issue_python_cpu_us": round((time.process_time() - python) / count * 1e6),
        "issue_postgres_cpu_us": round((postgres_cpu_seconds() - database) / count * 1e6),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--claims", type=int, default=50)
    parser.add_argument("--issues", type=int, default=0, help="also issueClaim's CPU, this many")
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures, indent=2))
    print()
    print(
        f"{figures['claims']}-claim passport read, in-process, {figures['reads']} reads: "
        f"Python {figures['python_cpu_us_per_read']} us and PostgreSQL "
        f"{figures['postgres_cpu_us_per_read']} us of CPU per read"
    )
    if "statement_backend_cpu_us" in figures:
        print(
            f"  the compiled statement alone, generic plan: {figures['statement_backend_cpu_us']}"
            f" us of backend CPU per execution ({figures['statement_answer_chars']} characters)"
        )
    if "issues" in figures:
        print(
            f"issueClaim, in-process, {figures['issues']} requests: Python "
            f"{figures['issue_python_cpu_us']} us and PostgreSQL "
            f"{figures['issue_postgres_cpu_us']} us of CPU per request"
        )
