"""Team competence check benchmark: 2,000 consenting staff against five ESCO occupations.

Run: `.venv/bin/python bench/team_check.py`. Starts a fresh embedded PostgreSQL unless
PASSPORT_BENCH_DATABASE_URL names a server; loads ESCO; an employer opens a team check and
2,000 citizens join it (a third counted only, a tenth sharing chosen competences only), each
with about 30 claims on the five occupations' competences (some stale, some below the level,
some self-declared), written through ``POST /claims:bulk``; a provider publishes 40 learning
offers. Then it drives the application in-process (authentication, cost, GraphQL, the
consents, the locks, the aggregate, 2,000 access records, the plan), one request at a time,
with an HR dashboard's selection, and prints p50/p95 beside the same run's yardstick: the
plain SQL aggregate of the same claims (count per competence of the staff holding each,
current claims only) on raw asyncpg, run after each check so both see the same moments of
a shared machine. It also counts the statements one check runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core import bench_database, bench_token, pct, run_facts, seed
from service.app import create_app
from service.db.embedded import asyncpg_dsn
from service.db.engine import create_engine
from service.db.migrate import upgrade_async
from service.settings import Settings
from service.taxonomy.esco_import import SHIPPED_ESCO_DIR, import_esco
from tests import factories
from tests.conftest import StatementCounter

CREATE = """mutation($input: CreateTeamCheckInput!) {
  createTeamCheck(input: $input) { ... on TeamCheckCreated { teamCheck { id } } } }"""
JOIN = """mutation($input: JoinTeamCheckInput!) {
  joinTeamCheck(input: $input) { __typename } }"""
DECLARE = """mutation($input: SelfDeclareInput!) { selfDeclare(input: $input) { __typename } }"""
PUBLISH = """mutation($inputs: [LearningOpportunityInput!]!) {
  publishLearningOpportunities(inputs: $inputs) { __typename } }"""
COUNT = "count fewerThanFive atLeast"
DASHBOARD = f"""query($o: [String!]) {{
  teamCompetenceCheck(occupationUris: $o) {{
    __typename
    ... on TeamCompetenceCheck {{
      consented named countedOnly
      competences {{ competence {{ uri label {{ text }} }} essential
                    held {{ {COUNT} }} stale {{ {COUNT} }} belowLevel {{ {COUNT} }}
                    selfDeclared {{ {COUNT} }} notShared {{ {COUNT} }} missing {{ {COUNT} }} }}
      largestGaps {{ competence {{ uri label {{ text }} }} gap {{ {COUNT} }} }}
      plan {{ opportunity {{ title }} closes {{ uri }} peopleGaps namedHelped
              helps(first: 20) {{ passportId }} }}
      people(first: 20) {{ edges {{ node {{ passportId gaps {{ uri }} }} }} }}
    }}
  }}
}}"""
# The yardstick: how many of the staff hold each competence, current claims only, in SQL.
PLAIN = """
SELECT c.competence_id, count(DISTINCT c.citizen_id)
FROM claims c
WHERE c.citizen_id = ANY($1) AND c.competence_id = ANY($2)
  AND (c.valid_until IS NULL OR c.valid_until >= current_date)
  AND NOT EXISTS (SELECT 1 FROM claim_revocations r
                  WHERE r.citizen_id = c.citizen_id AND r.claim_id = c.claim_id)
  AND NOT EXISTS (SELECT 1 FROM claims n
                  WHERE n.citizen_id = c.citizen_id AND n.supersedes_claim_id = c.claim_id)
GROUP BY c.competence_id
"""


async def _occupations(url: str) -> tuple[list[str], list[str]]:
    """Five related occupations (the ISCO unit group with most occupations asking for many
    essential skills) and the skills they ask for, essential first."""
    conn = await asyncpg.connect(asyncpg_dsn(make_url(url)))
    try:
        rows = await conn.fetch(
            """
            WITH sized AS (
              SELECT o.id, o.uri, o.isco_group, count(*) FILTER (
                WHERE oc.relation = 'essential') AS essential
              FROM occupations o JOIN occupation_competences oc ON oc.occupation_id = o.id
              GROUP BY o.id)
            SELECT uri FROM sized WHERE isco_group = (
              SELECT isco_group FROM sized WHERE essential >= 15 GROUP BY isco_group
              ORDER BY count(*) DESC, isco_group LIMIT 1)
            ORDER BY essential DESC, uri LIMIT 5
            """
        )
        occupations = [r["uri"] for r in rows]
        skills = await conn.fetch(
            """
            SELECT c.uri, bool_or(oc.relation = 'essential') AS essential
            FROM occupations o JOIN occupation_competences oc ON oc.occupation_id = o.id
            JOIN competences c ON c.id = oc.competence_id
            WHERE o.uri = ANY($1) GROUP BY c.uri ORDER BY 2 DESC, 1
            """,
            occupations,
        )
    finally:
        await conn.close()
    return occupations, [r["uri"] for r in skills]


def _claims(
    rng: random.Random, insz: str, skills: list[str], essential: int
) -> list[dict[str, Any]]:
    """About 30 claims: most on essential skills, some used long ago, some at a low level."""
    today = date.today()
    chosen = rng.sample(skills[:essential], min(essential, 24)) + rng.sample(
        skills[essential:], min(len(skills) - essential, 6)
    )
    rows = []
    for uri in chosen:
        stale = rng.random() < 0.15
        used = today - timedelta(days=4000 if stale else rng.randint(10, 900))
        rows.append(
            {
                **factories.claim_input(insz, uri),
                "acquiredOn": (used - timedelta(days=300)).isoformat(),
                "lastUsedOn": used.isoformat(),
                "proficiency": {"scale": "EQF", "level": str(rng.choice((2, 4, 5, 6)))},
                "evidence": [],
            }
        )
    return rows


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="passport-bench-team-"))
    async with bench_database(workdir) as url:
        return await _run(args, workdir, url)


async def _run(args: argparse.Namespace, workdir: Path, url: str) -> dict[str, Any]:
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
        webhook_dispatcher=False,
    )
    await seed(
        url,
        settings,
        kind="education_provider",
        client_id="bench-school",
        scopes=("claims:write",),
        legal_basis=None,
    )
    await seed(
        url,
        settings,
        kind="employer",
        client_id="bench-hr",
        scopes=("passports:read",),
        legal_basis=None,
    )
    school = bench_token(
        settings, "bench-school", client_id="bench-school", scopes=["claims:write"]
    )
    hr = bench_token(settings, "bench-hr", client_id="bench-hr", scopes=["passports:read"])
    occupations, skills = await _occupations(url)
    essential = await _essential_count(url, occupations)
    rng = random.Random(20)
    staff = sorted({factories.insz() for _ in range(args.staff * 2)})[: args.staff]  # distinct
    app = create_app(settings)
    results: dict[str, Any] = {**run_facts(1), "staff": args.staff, "occupations": occupations}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=600
        ) as http:
            started = time.perf_counter()
            rows = [row for insz in staff for row in _claims(rng, insz, skills, essential)]
            body = b"".join(orjson.dumps(row) + b"\n" for row in rows)
            response = await http.post(
                "/claims:bulk",
                content=body,
                headers={
                    "Authorization": f"Bearer {school}",
                    "Content-Type": "application/x-ndjson",
                },
            )
            summary = orjson.loads(response.content.splitlines()[-1])["summary"]
            assert response.status_code == 200 and summary["rejected"] == 0, summary
            results["claims"] = summary["accepted"]
            team = await _gql(http, hr, CREATE, {"input": {"name": "Plant", "externalRef": "t1"}})
            team_id = team["data"]["createTeamCheck"]["teamCheck"]["id"]
            await _join_all(http, settings, staff, team_id, skills, essential, rng)
            await _declare_some(http, settings, staff, skills, essential, rng)
            await _publish(http, settings, url, skills, essential, rng)
            results["seed_seconds"] = round(time.perf_counter() - started, 1)
            await _analyze(url)  # as autovacuum would have, on a database in use
            variables = {"o": occupations}
            answer = await _gql(http, hr, DASHBOARD, variables)
            check = answer["data"]["teamCompetenceCheck"]
            assert check["__typename"] == "TeamCompetenceCheck", answer
            assert check["consented"] == args.staff, check["consented"]
            results["competences"] = len(check["competences"])
            results["named"], results["counted_only"] = check["named"], check["countedOnly"]
            results["plan_steps"] = len(check["plan"])
            results["response_bytes"] = len(orjson.dumps(answer))
            results["cost"] = answer["extensions"]["cost"]
            yardstick = await _Plain.open(url, staff, skills, settings)
            try:
                for _ in range(3):  # warm
                    await _gql(http, hr, DASHBOARD, variables)
                    await yardstick.run()
                # interleaved, so both see the same moments of a shared machine
                latencies, plain = [], []
                for _ in range(args.requests):
                    began = time.perf_counter()
                    await _gql(http, hr, DASHBOARD, variables)
                    latencies.append(time.perf_counter() - began)
                    plain.append(await yardstick.run())
            finally:
                await yardstick.close()
            counter = StatementCounter()
            sync_engine = app.state.passport.engine.sync_engine
            event.listen(sync_engine, "before_cursor_execute", counter)
            try:
                await _gql(http, hr, DASHBOARD, variables)
            finally:
                event.remove(sync_engine, "before_cursor_execute", counter)
            results["statements_per_check"] = counter.count
    results["requests"] = args.requests
    results["p50_ms"] = round(pct(latencies, 50), 1)
    results["p95_ms"] = round(pct(latencies, 95), 1)
    results["plain_sql_p50_ms"] = round(pct(plain, 50), 1)
    results["plain_sql_p95_ms"] = round(pct(plain, 95), 1)
    return results


async def _gql(
    http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    answer: dict[str, Any] = response.json()
    assert response.status_code == 200 and "errors" not in answer, response.text[:500]
    return answer


async def _analyze(url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(make_url(url)))
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _essential_count(url: str, occupations: list[str]) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(make_url(url)))
    try:
        found: int = await conn.fetchval(
            """SELECT count(DISTINCT oc.competence_id) FROM occupation_competences oc
               JOIN occupations o ON o.id = oc.occupation_id
               WHERE o.uri = ANY($1) AND oc.relation = 'essential'""",
            occupations,
        )
    finally:
        await conn.close()
    return found


async def _join_all(
    http: httpx.AsyncClient,
    settings: Settings,
    staff: list[str],
    team_id: str,
    skills: list[str],
    essential: int,
    rng: random.Random,
) -> None:
    """Everyone consents: a third counted only, a tenth sharing 20 chosen skills only."""
    expires = (time_now() + timedelta(days=300)).isoformat()
    gate = asyncio.Semaphore(8)

    async def one(i: int, insz: str) -> None:
        data: dict[str, Any] = {
            "teamCheckId": team_id,
            "disclosure": "COUNTED" if i % 3 == 0 else "NAMED",
            "expiresAt": expires,
            "idempotencyKey": f"join-{i}",
        }
        if i % 10 == 1:
            data["competenceUris"] = rng.sample(skills[:essential], 20)
        async with gate:
            answer = await _gql(http, bench_token(settings, insz), JOIN, {"input": data})
        assert answer["data"]["joinTeamCheck"]["__typename"] == "AccessGranted", answer

    await asyncio.gather(*(one(i, insz) for i, insz in enumerate(staff)))


async def _declare_some(
    http: httpx.AsyncClient,
    settings: Settings,
    staff: list[str],
    skills: list[str],
    essential: int,
    rng: random.Random,
) -> None:
    """One in five declares one essential skill themselves."""
    gate = asyncio.Semaphore(8)

    async def one(insz: str) -> None:
        data = {"competenceUri": rng.choice(skills[:essential]), "acquiredOn": "2019-05-01"}
        async with gate:
            await _gql(http, bench_token(settings, insz), DECLARE, {"input": data})

    await asyncio.gather(*(one(insz) for insz in staff[::5]))


async def _publish(
    http: httpx.AsyncClient,
    settings: Settings,
    url: str,
    skills: list[str],
    essential: int,
    rng: random.Random,
) -> None:
    """A provider's 40 offers, each teaching 2 to 6 of the occupations' skills."""
    await seed(
        url,
        settings,
        kind="education_provider",
        name="Bench academy",
        client_id="bench-academy",
        scopes=("claims:write",),
        legal_basis=None,
    )
    token = bench_token(
        settings, "bench-academy", client_id="bench-academy", scopes=["claims:write"]
    )
    inputs = [
        {
            "externalRef": f"course-{i}",
            "title": f"Course {i}",
            "mode": "ONLINE",
            "language": "nl",
            "url": f"https://academy.example/course/{i}",
            "durationHours": rng.randint(4, 80),
            "competenceUris": rng.sample(skills[:essential], rng.randint(2, 6)),
        }
        for i in range(40)
    ]
    await _gql(http, token, PUBLISH, {"inputs": inputs})


class _Plain:
    """The yardstick: the plain SQL aggregate of the same claims, on raw asyncpg."""

    def __init__(self, conn: Any, statement: Any, citizens: list[uuid.UUID], ids: list[int]):
        self.conn, self.statement, self.citizens, self.ids = conn, statement, citizens, ids

    @classmethod
    async def open(
        cls, url: str, staff: list[str], skills: list[str], settings: Settings
    ) -> _Plain:
        from service.identity.numbers import insz_hash

        conn = await asyncpg.connect(asyncpg_dsn(make_url(url)))
        digests = [insz_hash(insz, settings.hmac_key()) for insz in staff]
        citizens = [
            r["citizen_id"]
            for r in await conn.fetch(
                "SELECT citizen_id FROM citizen_identities WHERE insz_hash = ANY($1)", digests
            )
        ]
        ids = [
            r["id"]
            for r in await conn.fetch("SELECT id FROM competences WHERE uri = ANY($1)", skills)
        ]
        # Planned for its arrays each run, as the check's own statements are (a generic plan,
        # PostgreSQL's choice after five runs, is several times slower for both).
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        return cls(conn, await conn.prepare(PLAIN), citizens, ids)

    async def run(self) -> float:
        began = time.perf_counter()
        await self.statement.fetch(self.citizens, self.ids)
        return time.perf_counter() - began

    async def close(self) -> None:
        await self.conn.close()


def time_now() -> Any:
    from service import clock

    return clock.now()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--staff", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=30, help="measured, after 3 warm-up")
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures, indent=2))
    print(
        f"\nteamCompetenceCheck, {figures['staff']} consenting staff x 5 occupations "
        f"({figures['competences']} competences, {figures['claims']} claims): "
        f"p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms over {figures['requests']}, "
        f"{figures['statements_per_check']} statements, cost {figures['cost']}; "
        f"plain SQL aggregate of the same claims: p50 {figures['plain_sql_p50_ms']} ms, "
        f"p95 {figures['plain_sql_p95_ms']} ms"
    )
