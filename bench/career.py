"""Career benchmark: `careerPaths(first: 20)` for a citizen with 200 verified claims and a work
history, against all 3,007 ESCO occupations, beside the same run's plain SQL scan of the
occupation-skill relations (every one of the 123,788, grouped by occupation), the raw limit of
any answer that looks at them all. Also `careerPlan`, `occupationMatches` and
`competenceCheck` with wants, goals and imported signals, for reference.

The worst case, as in bench/matching.py: the 200 claims are on the 200 skills most occupations
ask for (they touch 2,818 of the 3,007); the work history holds the 3 occupations with the most
essential competences (many suggestions, many reachable occupations); 10 wants and 2 goals;
1,000 imported signals (500 occupations, 500 skills).

Run: `.venv/bin/python bench/career.py`. Starts a fresh embedded PostgreSQL unless
PASSPORT_BENCH_DATABASE_URL names a server; drives the whole stack in-process (authentication,
GraphQL, the passport read and its access record), one request at a time.
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
from bench.matching import ISSUE, _skills_of_popular_occupations, _time
from service.app import create_app
from service.auth.keys import load_or_create_dev_key
from service.auth.tokens import mint_dev_token
from service.career.signals import import_signals
from service.db.embedded import asyncpg_dsn
from service.db.engine import create_engine
from service.db.migrate import upgrade_async
from service.settings import Settings
from service.taxonomy.esco_import import SHIPPED_ESCO_DIR, import_esco
from tests import factories

LIGHT = "kind color source { name } reason { text language }"
PATHS = f"""query($c: CitizenRef!) {{ careerPaths(citizen: $c, first: 20) {{
  ... on CareerPaths {{ weights {{ verified }} paths {{ rank score
  occupation {{ uri label {{ text }} }} missing {{ uri label {{ text }} }}
  suggested {{ uri }} strengths {{ uri }}
  learningPlan {{ closes {{ uri }} }} lights {{ {LIGHT} }} reason {{ text }} }} }} }} }}"""
PLAN = f"""query($c: CitizenRef!, $o: String!) {{ careerPlan(citizen: $c, goalUri: $o) {{
  ... on CareerPlan {{ standing {{ score reasons {{ kind points }} }} steps {{ kind why {{ text }}
  competences {{ uri }} }} lights {{ {LIGHT} }} }} }} }}"""
MATCHES = f"""query($c: CitizenRef!) {{ occupationMatches(citizen: $c, first: 20) {{
  ... on OccupationMatches {{ matches {{ rank score occupation {{ uri }} matched {{ uri }}
  standing {{ reasons {{ kind reason {{ text }} }} }} lights {{ {LIGHT} }} }} }} }} }}"""
CHECK = f"""query($c: CitizenRef!, $o: String!) {{
  competenceCheck(citizen: $c, occupationUri: $o) {{
  ... on CompetenceCheck {{ standing {{ score }} requirements {{ status want strength }}
  lights {{ {LIGHT} }} }} }} }}"""
WORK = """mutation($input: RecordWorkExperienceInput!) {
  recordWorkExperience(input: $input) { __typename } }"""
WANT = """mutation($input: SetCompetenceWantInput!) { setCompetenceWant(input: $input) {
  __typename } }"""
GOAL = """mutation($input: SetCareerGoalInput!) { setCareerGoal(input: $input) { __typename } }"""
SCAN = """
SELECT occupation_id, count(*) FILTER (WHERE relation = 'essential') AS essential,
       count(*) FILTER (WHERE relation = 'optional') AS optional
FROM occupation_competences GROUP BY occupation_id
"""


async def _world(url: str, n_signals: int) -> dict[str, Any]:
    """The occupations to hold and aim for, and a signal file, from the data itself."""
    conn = await asyncpg.connect(asyncpg_dsn(make_url(url)))
    try:
        held = [
            r["uri"]
            for r in await conn.fetch(
                "SELECT o.uri FROM occupations o JOIN occupation_requirement_counts t "
                "ON t.occupation_id = o.id ORDER BY t.essential_total DESC, o.uri LIMIT 3"
            )
        ]
        occupations = [r["uri"] for r in await conn.fetch("SELECT uri FROM occupations")]
        skills = [
            r["uri"]
            for r in await conn.fetch(
                "SELECT c.uri FROM competences c WHERE c.concept_type = 'skill' AND EXISTS ("
                "SELECT 1 FROM occupation_competences oc WHERE oc.competence_id = c.id)"
            )
        ]
    finally:
        await conn.close()
    rng = random.Random(11)
    kinds = ("shortage", "rising_demand", "falling_demand")
    rows = ["occupationUri,skillUri,kind,region,horizonYear,source,publishedOn"]
    for uri in rng.sample(occupations, n_signals // 2):
        rows.append(f"{uri},,{rng.choice(kinds)},BE2,2030,Bench forecast,2025-06-01")
    for uri in rng.sample(skills, n_signals // 2):
        rows.append(f",{uri},{rng.choice(kinds[1:])},BE,2030,Bench forecast,2025-06-01")
    return {"held": held, "goals": rng.sample(occupations, 2), "signals": rows}


async def _scan(url: str, n: int) -> list[float]:
    conn = await asyncpg.connect(asyncpg_dsn(make_url(url)))
    try:
        await conn.fetch(SCAN)  # warm
        latencies = []
        for _ in range(n):
            started = time.perf_counter()
            rows = await conn.fetch(SCAN)
            latencies.append(time.perf_counter() - started)
            assert len(rows) > 2900
        return latencies
    finally:
        await conn.close()


async def _gql(http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]) -> None:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, response.text
    assert all(v.get("__typename") not in ("ValidationFailed",) for v in body["data"].values())


async def _profile(
    http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any], engine_url: str
) -> None:
    """Where one answer's time goes: cProfile of 20 requests, the top of it by own time."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    await _time(http, token, query, variables, 20)
    profile.disable()
    pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(25)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="passport-bench-career-"))
    async with bench_database(workdir) as url:
        await upgrade_async(url)
        engine = create_engine(url)
        await import_esco(engine, SHIPPED_ESCO_DIR)
        world = await _world(url, args.signals)
        signal_file = workdir / "signals.csv"
        signal_file.write_text("\n".join(world["signals"]) + "\n")
        imported = await import_signals(engine, signal_file)
        assert imported.accepted == args.signals, imported.summary()
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
        skills, widest = await _skills_of_popular_occupations(url, args.claims)
        random.Random(7).shuffle(skills)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                for uri in skills:
                    data = factories.claim_input(citizen, uri)
                    await _gql(http, partner, ISSUE, {"input": data})
                for n, occupation in enumerate(world["held"]):
                    work = {
                        "occupationUri": occupation,
                        "startedOn": f"{2005 + 5 * n}-01-01",
                        "endedOn": f"{2009 + 5 * n}-12-31",
                        "idempotencyKey": f"bench-{n}",
                    }
                    await _gql(http, me, WORK, {"input": work})
                for n, uri in enumerate(skills[:10]):
                    stance = "RATHER_NOT" if n < 5 else "USE_MORE"
                    await _gql(http, me, WANT, {"input": {"competenceUri": uri, "want": stance}})
                for occupation in world["goals"]:
                    await _gql(http, me, GOAL, {"input": {"occupationUri": occupation}})
                who = {"insz": citizen}
                await _time(http, me, PATHS, {"c": who}, 5)  # warm caches
                if args.profile:
                    await _profile(http, me, PATHS, {"c": who}, engine_url=url)
                paths = await _time(http, me, PATHS, {"c": who}, args.requests)
                plans = await _time(http, me, PLAN, {"c": who, "o": widest}, args.requests)
                matches = await _time(http, me, MATCHES, {"c": who}, args.requests)
                checks = await _time(http, me, CHECK, {"c": who, "o": widest}, args.requests)
        scans = await _scan(url, args.requests)
    figures: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "claims": len(skills),
        "held_occupations": len(world["held"]),
        "signals": args.signals,
        "requests": args.requests,
    }
    for name, values in (
        ("career_paths", paths),
        ("career_plan", plans),
        ("occupation_matches", matches),
        ("competence_check", checks),
        ("plain_relation_scan", scans),
    ):
        figures[f"{name}_p50_ms"] = round(pct(values, 50), 1)
        figures[f"{name}_p99_ms"] = round(pct(values, 99), 1)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="print a profile of careerPaths")
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures, indent=2))
    for name, label in (
        ("career_paths", f"careerPaths(first: 20), {figures['claims']} claims (target p99 200)"),
        ("plain_relation_scan", "plain SQL scan of the 123,788 relations"),
        ("career_plan", "careerPlan, the widest occupation"),
        ("occupation_matches", "occupationMatches(first: 20), with wants"),
        ("competence_check", "competenceCheck, the widest occupation"),
    ):
        p50, p99 = figures[f"{name}_p50_ms"], figures[f"{name}_p99_ms"]
        print(f"{label:62}: p50 {p50} ms, p99 {p99} ms")
