"""List-read benchmark: a caseworker dashboard reads 100 passports (10 claims each) in one request.

Run: `.venv/bin/python bench/passport_list.py`. Starts a fresh embedded PostgreSQL unless
PASSPORT_BENCH_DATABASE_URL names a server (then a database of its own there, dropped after);
runs the service with uvicorn on 127.0.0.1 in a child process (bench/core.py's helpers) and
measures, one client after a warm-up, p50/p95 of ``Query.passports`` for all 100 citizens under
a legal basis, with the dashboard's selection, over HTTP (bench/reads.py's keep-alive client).
It also counts the SQL statements one such request runs, on the same database through the app
in process (the statement counter of the tests): the batch runs a fixed number whatever the
number of citizens. Each request writes 100 access records; all load goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core import (
    Connection,
    bench_database,
    pct,
    prepare,
    prepared_post,
    run_facts,
)
from bench.reads import services
from service.app import create_app
from service.settings import Settings
from tests import factories
from tests.conftest import StatementCounter

LIST = """query List($c: [CitizenRef!]!) {
  passports(citizens: $c, purpose: "benchmark", legalBasis: "BENCH") {
    __typename
    ... on Passport {
      competences { competence { uri } status lastUsedOn
                    claims { status assessmentMethod issuer { name } } }
    }
  }
}"""


async def count_statements(settings: Settings, token: str, body: dict[str, Any]) -> list[str]:
    """The statements one list read runs, through the app in this process."""
    app = create_app(settings.model_copy(update={"log_level": "WARNING"}))
    counter = StatementCounter()
    async with app.router.lifespan_context(app):
        engine = app.state.passport.engine.sync_engine
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            headers = {"Authorization": f"Bearer {token}"}
            await http.post("/graphql", json=body, headers=headers)  # warm: the client lookup
            event.listen(engine, "before_cursor_execute", counter)
            try:
                response = await http.post("/graphql", json=body, headers=headers)
            finally:
                event.remove(engine, "before_cursor_execute", counter)
            assert "errors" not in response.json(), response.text[:300]
    return counter.statements


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="passport-bench-list-"))
    async with bench_database(workdir) as url:
        return await _run(args, workdir, url)


async def _run(args: argparse.Namespace, workdir: Path, url: str) -> dict[str, Any]:
    prepared = await prepare(url, workdir)
    settings, token = prepared.settings, prepared.token
    citizens = [factories.insz() for _ in range(args.citizens)]
    body = {"query": LIST, "variables": {"c": [{"insz": c} for c in citizens]}}
    request = prepared_post("/graphql", token, body)
    results: dict[str, Any] = {
        **run_facts(args.workers),
        "citizens": args.citizens,
        "claims_each": args.claims,
        "requests": args.requests,
    }
    async with AsyncExitStack() as stack:
        ports = await services(
            stack, url, prepared, citizens, args.claims, args.workers, args.compare
        )
        conns = {prefix: await Connection.open(p) for prefix, (p, _) in ports.items()}
        latencies: dict[str, list[float]] = {prefix: [] for prefix in ports}
        answers: dict[str, bytes] = {}
        try:
            for i in range(5 + args.requests):  # 5 warm-up requests; the services in turn
                for prefix, conn in conns.items():
                    started = time.perf_counter()
                    status, answer = await conn.post(request)
                    elapsed = time.perf_counter() - started
                    passports = orjson.loads(answer)["data"]["passports"]
                    assert status == 200 and len(passports) == args.citizens, answer[:300]
                    assert all(len(p["competences"]) == args.claims for p in passports)
                    if i >= 5:
                        latencies[prefix].append(elapsed)
                    answers[prefix] = answer
        finally:
            for conn in conns.values():
                conn.close()
        results["response_bytes"] = len(answers[""])
        results["cost"] = orjson.loads(answers[""])["extensions"]["cost"]
    for prefix, measured in latencies.items():
        results[prefix + "p50_ms"] = round(pct(measured, 50), 1)
        results[prefix + "p95_ms"] = round(pct(measured, 95), 1)
    statements = await count_statements(settings, token, body)
    results["statements_per_request"] = len(statements)
    results["statements"] = [" ".join(sql.split())[:60] for sql in statements]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--citizens", type=int, default=100)
    parser.add_argument("--claims", type=int, default=10, help="per citizen")
    parser.add_argument("--requests", type=int, default=30, help="measured, after 5 warm-up")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also the same service resolving every field in Python (compiled reads off), "
        "its requests in turn with the compiled one's",
    )
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures, indent=2))
    print(
        f"\n{figures['citizens']} passports x {figures['claims_each']} claims in one request: "
        f"p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms over {figures['requests']}, "
        f"{figures['statements_per_request']} statements, cost {figures['cost']}"
    )
    if "resolvers_p50_ms" in figures:
        print(
            f"  same service, resolvers: p50 {figures['resolvers_p50_ms']} ms, "
            f"p95 {figures['resolvers_p95_ms']} ms (requests in turn with the compiled ones)"
        )
