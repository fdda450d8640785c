"""The floor of an ``issueClaim`` in Python: its own work behind a bare ASGI app, no framework.

``bench/core.py`` runs this beside the service and PostGraphile, in the same rounds, to tell
what bounds the service's write: the work itself, or the layers around it. Each request does
what the service's does, with the service's own code, and nothing else:

- the request's JSON read with orjson;
- the caller looked up by the service's statement (``_ACTIVE_CLIENT``; the bench client, whose
  token the service verifies once and then keeps);
- the input checked by the service's pydantic rules (``IssueClaimInput``), the national
  number hashed;
- the competence looked up by the service's statement (``_COMPETENCE``);
- the claim's row, its event and its digest made by the service's functions;
- the one write statement (``_ISSUE``), outside any transaction, as the service sends it;
- the answer the service gives (``claim { id }``) written with orjson.

Left out: FastAPI and Starlette (routing, middleware), Strawberry and graphql-core (parsing,
validation, execution, argument conversion), the token's signature (which the service
verifies once and then keeps), the rate limit, metrics, tracing and the access log's line. It
runs under uvicorn with its defaults (uvloop, httptools) and a listening socket per worker, as
``passport serve`` runs the service.

Run by ``bench/core.py`` (``floor_server``); by hand: ``python -m bench.floor --port 8001``
with ``PASSPORT_DATABASE_URL`` and ``PASSPORT_INSZ_HMAC_KEY`` set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvicorn
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core import _plain, issue_arguments
from service.auth.resolve import _ACTIVE_CLIENT
from service.claims.rules import IssueClaimInput
from service.claims.service import _COMPETENCE, _ISSUE
from service.db.embedded import asyncpg_dsn
from service.db.engine import server_settings
from service.db.raw import driver_args
from service.serving import reserve, run_workers
from service.settings import Settings
from service.validation import validate

PROJECT = Path(__file__).resolve().parents[1]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Floor:
    """The ASGI app: one pool per worker process, made at its startup."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.key = os.environ.get("PASSPORT_INSZ_HMAC_KEY", "").encode()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            answer = await self._issue(await _body(receive))
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(answer)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": answer})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                url = make_url(os.environ["PASSPORT_DATABASE_URL"])
                self.pool = await asyncpg.create_pool(
                    asyncpg_dsn(url),
                    min_size=1,
                    max_size=20,
                    # As the service's connections start: its role, no JIT.
                    server_settings=server_settings(Settings().database_role or None),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _issue(self, body: bytes) -> bytes:
        assert self.pool is not None
        data = orjson.loads(body)["variables"]["input"]
        async with self.pool.acquire() as conn:
            caller = await conn.fetchrow(
                _ACTIVE_CLIENT[0], *driver_args(_ACTIVE_CLIENT, {"client_id": "bench-client"})
            )
            client_pk, organisation_id = caller[0], caller[2]
            spec = validate(IssueClaimInput, _plain(data))
            competence = await conn.fetchrow(_COMPETENCE, spec.competence_uri)
            given, _, _ = issue_arguments(
                spec, organisation_id, client_pk, competence["id"], self.key
            )
            outcome, found, _ = await conn.fetchrow(_ISSUE, *given)
        assert outcome in ("created", "retry"), outcome
        claim = {"__typename": "ClaimIssued", "claim": {"id": str(found)}}
        return orjson.dumps({"data": {"issueClaim": claim}})


async def _body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


app = Floor()


@asynccontextmanager
async def floor_server(url: str, port: int, workers: int) -> AsyncIterator[int]:
    """The floor on 127.0.0.1:``port`` in a child process over the database at ``url``,
    answering once this yields the process's id."""
    env = {**os.environ, "PASSPORT_DATABASE_URL": url, "PASSPORT_INSZ_HMAC_KEY": "b" * 48}
    command = ["-m", "bench.floor", "--port", str(port), "--workers", str(workers)]
    server = await asyncio.create_subprocess_exec(sys.executable, *command, env=env, cwd=PROJECT)
    try:
        for _ in range(150):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError("the floor did not start")
        yield server.pid
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    config = uvicorn.Config(
        "bench.floor:app",
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )
    run_workers(config, reserve("127.0.0.1", args.port))
