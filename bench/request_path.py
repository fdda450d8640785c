"""The request path, A/B: issueClaim through variants of the server, in interleaved rounds.

Run: `.venv/bin/python bench/request_path.py [--variants uvicorn,granian] [--rounds 4]`.
Every variant runs as its own server process on the same database at once; the rounds
alternate between them (A B A B ...), so a machine that gets busier or quieter during the run
moves every variant alike. Prints, per variant and round, claims/s and the CPU time the
server's processes spent per request (user + system, all workers): on a shared machine the
second moves far less with the neighbours' load than the first. Then each variant's medians
and their ratios to the first variant's.

Variants: ``uvicorn`` (as `passport serve` runs it), ``granian`` (Granian's ASGI server; not a
dependency of the project: `pip install granian` first), ``uvicorn-info`` (logging at INFO
rather than WARNING),
``uvicorn-nocache`` (verified tokens not kept: every request verifies its signature),
``uvicorn-ping`` (every pooled connection tested with a round trip before each request:
db_pool_pre_ping on, the default until the free check of service/db/engine.py replaced it).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core import (
    ISSUE,
    bench_database,
    competence_uris,
    cpu_seconds,
    free_port,
    prepare,
    run_facts,
    run_load,
    wait_ready,
)
from service.settings import Settings
from tests import factories

VARIANTS = ("uvicorn", "granian", "uvicorn-info", "uvicorn-nocache", "uvicorn-ping")


def _command(variant: str, port: int, workers: int) -> list[str]:
    if variant == "granian":
        return [
            *("-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", str(workers), "--loop", "uvloop"),
            *("--no-ws", "--log-level", "warning", "service.app:create_app"),
        ]
    return [
        *("-m", "uvicorn", "service.app:create_app", "--factory", "--host", "127.0.0.1"),
        *("--port", str(port), "--workers", str(workers), "--no-access-log"),
        *("--log-level", "warning"),
    ]


@asynccontextmanager
async def variant_server(
    variant: str, url: str, settings: Settings, workers: int
) -> AsyncIterator[tuple[int, int]]:
    port = free_port()
    env = {
        **os.environ,
        "PASSPORT_DATABASE_URL": url,
        "PASSPORT_DATA_DIR": str(settings.data_dir),
        "PASSPORT_INSZ_HMAC_KEY": "b" * 48,
        "PASSPORT_DB_POOL_SIZE": "8",  # several servers share the database
        "PASSPORT_RATE_LIMITS": json.dumps(
            dict.fromkeys(("partner", "reader"), "100000000/minute")
        ),
        "PASSPORT_LOG_LEVEL": "INFO" if variant == "uvicorn-info" else "WARNING",
    }
    if variant == "uvicorn-nocache":
        env["PASSPORT_VERIFIED_TOKEN_CACHE"] = "0"
    if variant == "uvicorn-ping":
        env["PASSPORT_DB_POOL_PRE_PING"] = "true"
    server = await asyncio.create_subprocess_exec(
        sys.executable, *_command(variant, port, workers), env=env
    )
    try:
        yield port, server.pid
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=20)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="passport-bench-"))
    async with bench_database(workdir) as url:
        prepared = await prepare(url, workdir)
        uris = await competence_uris(url, 200)
        acquired = (date.today() - timedelta(days=400)).isoformat()
        async with AsyncExitStack() as stack:
            clients: dict[str, httpx.AsyncClient] = {}
            pids: dict[str, int] = {}
            for variant in args.variants:
                port, pids[variant] = await stack.enter_async_context(
                    variant_server(variant, url, prepared.settings, args.workers)
                )
                clients[variant] = await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=f"http://127.0.0.1:{port}",
                        headers={"Authorization": f"Bearer {prepared.token}"},
                        limits=httpx.Limits(max_connections=64),
                        timeout=30,
                    )
                )
                await wait_ready(clients[variant])

            def issuer(http: httpx.AsyncClient) -> Any:
                async def issue(i: int) -> None:
                    data = factories.claim_input(
                        factories.insz(), uris[i % len(uris)], acquiredOn=acquired, lastUsedOn=None
                    )
                    response = await http.post(
                        "/graphql", json={"query": ISSUE, "variables": {"input": data}}
                    )
                    kind = response.json()["data"]["issueClaim"]["__typename"]
                    assert kind == "ClaimIssued", response.text

                return issue

            for http in clients.values():
                await run_load(200, 16, issuer(http))  # warm-up
            rounds: dict[str, list[float]] = {v: [] for v in args.variants}
            cpu: dict[str, list[float]] = {v: [] for v in args.variants}
            for _ in range(args.rounds):
                for variant, http in clients.items():
                    before = cpu_seconds(pids[variant])
                    rate, _lat = await run_load(args.claims, 16, issuer(http))
                    spent = cpu_seconds(pids[variant]) - before
                    rounds[variant].append(round(rate))
                    cpu[variant].append(round(spent / args.claims * 1e6))
    first_rate = statistics.median(rounds[args.variants[0]])
    first_cpu = statistics.median(cpu[args.variants[0]])
    return {
        **run_facts(args.workers),
        "claims_per_round": args.claims,
        "variants": {
            v: {
                "claims_per_s": rounds[v],
                "server_cpu_us_per_request": cpu[v],
                "median_claims_per_s": statistics.median(rounds[v]),
                "median_cpu_us": statistics.median(cpu[v]),
                "rate_ratio_to_first": round(statistics.median(rounds[v]) / first_rate, 2),
                "cpu_ratio_to_first": round(statistics.median(cpu[v]) / first_cpu, 2),
            }
            for v in args.variants
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--variants",
        type=lambda s: [v for v in s.split(",") if v],
        default=["uvicorn", "granian"],
        help=f"comma-separated, from {', '.join(VARIANTS)}",
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--claims", type=int, default=500, help="per round and variant")
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    unknown = set(options.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    if "granian" in options.variants and importlib.util.find_spec("granian") is None:
        parser.error("the granian variant needs Granian: .venv/bin/pip install granian")
    print(json.dumps(asyncio.run(main(options)), indent=2))
