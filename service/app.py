"""The FastAPI application: GraphQL at /graphql, REST beside it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api import (
    citizen,
    claims,
    credentials,
    explorer,
    graphql,
    health,
    learning,
    metrics,
    problems,
    wallet,
)
from service.api.state import AppState
from service.auth.keys import load_or_create_dev_key
from service.auth.ratelimit import RateLimiter
from service.auth.tokens import TokenVerifier
from service.credentials.issuer import Issuer
from service.credentials.keys import KeyRing, load_or_create_dev_keyring
from service.db.engine import create_engine, session_factory
from service.logs import ensure_logging
from service.observability import RequestContext, setup_tracing, trace_sql, untrace_sql
from service.schema import build_schema
from service.settings import Settings, get_settings
from service.webhooks.dispatcher import dispatcher_for, webhook_client


def create_app(settings: Settings | None = None, database_url: str | None = None) -> FastAPI:
    """``database_url`` overrides settings, e.g. with the embedded server `passport serve` runs."""
    settings = settings or get_settings()
    ensure_logging(settings.log_level, settings.library_log_level)
    url = database_url or settings.database_url
    if not url:
        raise RuntimeError("no database URL: set PASSPORT_DATABASE_URL or use `passport serve`")

    # Read at startup, so a bad key file stops the service before it takes traffic.
    keys = (
        KeyRing.load(settings.signing_keys_file)
        if settings.signing_keys_file
        else load_or_create_dev_keyring(settings.data_dir)
    )
    issuer = Issuer(base_url=settings.base_url, name=settings.credential_issuer_name, keys=keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            role=settings.database_role or None,
            pre_ping=settings.db_pool_pre_ping,
            recycle_seconds=settings.db_pool_recycle_seconds,
        )
        if tracer is not None:
            trace_sql(tracer)
        sessions = session_factory(engine)
        async with httpx.AsyncClient() as http, webhook_client(settings) as hooks:
            dev_key = None if settings.is_production else load_or_create_dev_key(settings.data_dir)
            app.state.passport = AppState(
                settings=settings,
                engine=engine,
                sessions=sessions,
                verifier=TokenVerifier(settings, dev_key=dev_key, http=http),
                schema=build_schema(settings),
                hmac_key=settings.hmac_key(),
                http=http,
                limiter=RateLimiter(settings),
                issuer=issuer,
            )
            dispatcher = dispatcher_for(settings, sessions, hooks)
            delivering = asyncio.create_task(dispatcher.run()) if dispatcher else None
            # What startup made lives as long as the process: out of the collector's sight,
            # a collection no longer walks the schema, the mappers and the taxonomy each time
            # a request's objects fill the youngest generation. A 50-claim passport read
            # allocates some 5,000 objects; with the heap frozen, one worker answered it
            # 233 times a second instead of 166 (bench/reads.py; Python's gc.freeze docs).
            gc.collect()
            gc.freeze()
            try:
                yield
            finally:
                gc.unfreeze()  # an app built again in this process (tests) frees the old one
                if dispatcher and delivering:
                    dispatcher.stop()  # the round in flight is sent and recorded first
                    await asyncio.wait_for(delivering, settings.webhook_timeout_seconds + 5)
                await engine.dispose()
                if tracer is not None:
                    untrace_sql()

    app = FastAPI(
        title="Competence Passport",
        version="0.1.0",
        description="A lifelong, verifiable record of a citizen's competences (ESCO).",
        lifespan=lifespan,
        # Swagger UI loads its scripts from a CDN: only when the tools are asked for explicitly
        # (the contract is openapi/openapi.json).
        docs_url="/docs" if settings.graphql_dev_tools else None,
        redoc_url=None,
    )
    tracer = setup_tracing(app, settings.otel_service_name) if settings.otel_enabled else None
    problems.install(app)
    app.include_router(graphql.router)
    app.include_router(explorer.router)
    app.include_router(health.router)
    app.include_router(citizen.router)
    app.include_router(learning.router)
    app.include_router(claims.router)
    app.include_router(credentials.router)
    app.include_router(wallet.router)
    app.include_router(metrics.router)
    app.add_middleware(RequestContext, engine=lambda: _engine(app))
    return app


def _engine(app: FastAPI) -> AsyncEngine | None:
    state = getattr(app.state, "passport", None)
    return state.engine if state is not None else None
