"""The floor of an ``issueClaim`` and of a passport read in Python: their own work behind a
bare ASGI app, no framework.

``bench/core.py`` (the write) and ``bench/reads.py`` (the read) run this beside the service and
PostGraphile, in the same rounds, to tell what bounds the service: the work itself, or the
layers around it. Each request does what the service's does, with the service's own code, and
nothing else. A write (any path but ``/read``):

- the request's JSON read with orjson;
- the caller looked up by the service's statement (``_ACTIVE_CLIENT``; the bench client, whose
  token the service verifies once and then keeps);
- the input checked by the service's pydantic rules (``IssueClaimInput``), the national
  number hashed;
- the competence looked up by the service's statement (``_COMPETENCE``);
- the claim's row, its event and its digest made by the service's functions;
- the one write statement (``_ISSUE``), outside any transaction, as the service sends it;
- the answer the service gives (``claim { id }``) written with orjson.

A read (``POST /read``, ``bench/reads.py``'s ``READ`` with its variables) runs the service's
domain function, ``read_passport``, in one session of the service's engine, as its resolver
does: the caller looked up by the service's function (``_registered_client``), then the legal
basis and the citizen, the citizen's shared lock, the statement compiled from ``READ`` by the
service's compiler (the answer and the access record), and the commit. Its answer is the
service's ``data``, the compiled JSON spliced in unparsed.

Left out of both: FastAPI and Starlette (routing, middleware), Strawberry and graphql-core
(parsing, validation, execution, argument conversion), the token's signature (which the
service verifies once and then keeps), the rate limit, the cost, metrics, tracing and the
access log's line. It runs under uvicorn with its defaults (uvloop, httptools) and a listening
socket per worker, as ``passport serve`` runs the service.

Run by ``bench/core.py`` and ``bench/reads.py`` (``floor_server``); by hand:
``python -m bench.floor --port 8001`` with ``PASSPORT_DATABASE_URL`` and
``PASSPORT_INSZ_HMAC_KEY`` set.
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
from graphql import FieldNode, OperationDefinitionNode, parse
from graphql.execution.values import VariableValues
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core import _plain, issue_arguments
from service.auth.resolve import _ACTIVE_CLIENT, CLIENT_SCOPES, _registered_client
from service.claims.rules import IssueClaimInput
from service.claims.service import _COMPETENCE, _ISSUE
from service.db.embedded import asyncpg_dsn
from service.db.engine import create_engine, server_settings, session_factory
from service.db.raw import driver_args
from service.passports.service import read_passport
from service.schema import build_schema
from service.schema.passports.compiled import Selection, compile_selection
from service.schema.passports.queries import passport_filter
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
        self.engine: AsyncEngine | None = None
        self.sessions: async_sessionmaker[AsyncSession] | None = None
        self.selection: Selection | None = None
        self.settings = Settings()
        self.key = os.environ.get("PASSPORT_INSZ_HMAC_KEY", "").encode()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            body = await _body(receive)
            answer = await (self._read(body) if scope["path"] == "/read" else self._issue(body))
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
                url = os.environ["PASSPORT_DATABASE_URL"]
                role = self.settings.database_role or None
                self.pool = await asyncpg.create_pool(
                    asyncpg_dsn(make_url(url)),
                    min_size=1,
                    max_size=20,
                    # As the service's connections start: its role, no JIT.
                    server_settings=server_settings(role),
                )
                self.engine = create_engine(url, pool_size=20, max_overflow=0, role=role)
                self.sessions = session_factory(self.engine)
                self.selection = _read_selection(self.settings)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                if self.engine is not None:
                    await self.engine.dispose()
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

    async def _read(self, body: bytes) -> bytes:
        assert self.sessions is not None and self.selection is not None
        citizen = orjson.loads(body)["variables"]["c"]
        async with self.sessions() as session:
            principal = await _registered_client(session, "bench-client", CLIENT_SCOPES)
            passport = await read_passport(
                session,
                principal,
                self.key,
                citizen=citizen,
                purpose="benchmark",
                legal_basis="BENCH",
                flt=passport_filter(None),
                legal_basis_kinds=self.settings.legal_basis_organisation_kinds,
                render=self.selection,
            )
            await session.commit()
        assert passport.rendered is not None
        return orjson.dumps({"data": {"passport": passport.rendered.data}})


def _read_selection(settings: Settings) -> Selection:
    """``READ``'s passport field compiled by the service's compiler, as its first read does."""
    from bench.reads import READ

    operation = parse(READ).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    field = operation.selection_set.selections[0]
    assert isinstance(field, FieldNode)
    schema = build_schema(settings)._schema
    selection = compile_selection(schema, operation, (field,), {}, VariableValues({}, {}))
    assert selection is not None, "READ does not compile"
    return selection


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
