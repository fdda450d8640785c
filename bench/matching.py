"""Competence-check benchmark: `occupationMatches` and `competenceCheck` for a citizen with 200
verified claims, against the full shipped ESCO (about 3,000 occupations, 124,000 relations).

Run: `.venv/bin/python bench/matching.py`. Starts a fresh embedded PostgreSQL unless
PASSPORT_BENCH_DATABASE_URL names a server; drives the application in-process (the whole
stack: authentication, GraphQL, the passport read and its access record, the ranking), one
request at a time, so the figures are the latency one user sees.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core import bench_database, pct, seed
from service.app import create_app
from service.auth.keys import load_or_create_dev_key
from service.auth.tokens import mint_dev_token
from service.db.embedded import asyncpg_dsn
from service.db.engine import create_engine
from service.db.migrate import upgrade_async
from service.settings import Settings
from service.taxonomy.esco_import import SHIPPED_ESCO_DIR, import_esco
from tests import factories

ISSUE = """mutation($input: IssueClaimInput!) { issueClaim(input: $input) { __typename } }"""
MATCHES = """query($c: CitizenRef!) { occupationMatches(citizen: $c, first: 20) {
  ... on OccupationMatches { matches { occupation { uri label { text } } essentialRatio
  matched { uri } missing { uri label { text } } } } } }"""
CHECK = """query($c: CitizenRef!, $o: String!) { competenceCheck(citizen: $c, occupationUri: $o) {
  ... on CompetenceCheck { essential { verifiedRatio } requirements { status light
  competence { label { text } } } learningPlan { closes { uri } } } } }"""


async def _skills_of_popular_occupations(url: str, n: int) -> tuple[list[str], str]:
    """Skills a real career would hold: the essential skills of a few related occupations."""
    conn = await asyncpg.connect(asyncpg_dsn(make_url(url)))
    try:
        rows = await conn.fetch(
            """
            SELECT c.uri FROM occupation_competences oc
            JOIN competences c ON c.id = oc.competence_id
            WHERE c.concept_type = 'skill' GROUP BY c.uri ORDER BY count(*) DESC LIMIT $1
            """,
            n,
        )
        occupation = await conn.fetchval(
            "SELECT o.uri FROM occupations o JOIN occupation_competences oc "
            "ON oc.occupation_id = o.id GROUP BY o.uri ORDER BY count(*) DESC LIMIT 1"
        )
    finally:
        await conn.close()
    return [r["uri"] for r in rows], str(occupation)


async def _time(
    http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any], n: int
) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies = []
    for _ in range(n):
        started = time.perf_counter()
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200 and "errors" not in response.json(), response.text
    return latencies


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="passport-bench-matching-"))
    async with bench_database(workdir) as url:
        await upgrade_async(url)
        engine = create_engine(url)
        await import_esco(engine, SHIPPED_ESCO_DIR)
        await engine.dispose()
        settings = Settings(
            database_url=url,
            data_dir=workdir / "app",
            insz_hmac_key="b" * 48,
            rate_limits=dict.fromkeys(("partner", "reader", "citizen"), "100000000/minute"),
            log_level="WARNING",
        )
        await seed(url, settings)
        key = load_or_create_dev_key(settings.data_dir)
        partner = mint_dev_token(
            key, settings, subject="bench-client", client_id="bench-client", scopes=["claims:write"]
        )
        citizen = factories.insz()
        me = mint_dev_token(key, settings, subject=citizen)
        skills, occupation = await _skills_of_popular_occupations(url, args.claims)
        random.Random(7).shuffle(skills)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                for uri in skills:
                    data = factories.claim_input(citizen, uri)
                    response = await http.post(
                        "/graphql",
                        json={"query": ISSUE, "variables": {"input": data}},
                        headers={"Authorization": f"Bearer {partner}"},
                    )
                    assert response.json()["data"]["issueClaim"]["__typename"] == "ClaimIssued"
                who = {"insz": citizen}
                await _time(http, me, MATCHES, {"c": who}, 5)  # warm caches
                matches = await _time(http, me, MATCHES, {"c": who}, args.requests)
                checks = await _time(http, me, CHECK, {"c": who, "o": occupation}, args.requests)
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "claims": len(skills),
        "requests": args.requests,
        "occupation_matches_p50_ms": round(pct(matches, 50), 1),
        "occupation_matches_p99_ms": round(pct(matches, 99), 1),
        "competence_check_p50_ms": round(pct(checks, 50), 1),
        "competence_check_p99_ms": round(pct(checks, 99), 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures, indent=2))
    for name, label in (
        ("occupation_matches", f"occupationMatches(first: 20), {figures['claims']} claims"),
        ("competence_check", "competenceCheck, same passport"),
    ):
        p50, p99 = figures[f"{name}_p50_ms"], figures[f"{name}_p99_ms"]
        print(f"{label:42}: p50 {p50} ms, p99 {p99} ms")
