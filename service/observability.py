"""Metrics, request ids and optional tracing: what an operator watches, without personal data.

Prometheus metrics are labelled only by things the service itself bounds (route templates,
GraphQL operation types, error codes, organisation kinds); client-chosen operation names are
kept to a fixed number of distinct values. With several worker processes, set
``PROMETHEUS_MULTIPROC_DIR`` (``passport serve`` does) so /metrics adds up all of them.

Tracing (OpenTelemetry, off unless ``PASSPORT_OTEL_ENABLED``) covers HTTP requests and SQL
statements. SQL is recorded without its parameters; GraphQL documents and variables are never
recorded, since they may carry a national number.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.ext.asyncio import AsyncEngine

logger = structlog.get_logger("passport.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

HTTP_DURATION = Histogram(
    "passport_http_request_duration_seconds",
    "HTTP requests by route template, method and status",
    ["method", "route", "status"],
)
GRAPHQL_DURATION = Histogram(
    "passport_graphql_operation_duration_seconds",
    "GraphQL operations by name and type",
    ["operation", "type"],
)
GRAPHQL_ERRORS = Counter(
    "passport_graphql_errors_total", "GraphQL errors by machine-readable code", ["code"]
)
CLAIMS_ISSUED = Counter(
    "passport_claims_issued_total",
    "Claims recorded (retries not counted), by the issuing organisation's kind",
    ["organisation_kind"],
)
DB_POOL = Gauge(
    "passport_db_pool_connections",
    "Database connections of this process's pool, by state",
    ["state"],
    multiprocess_mode="livesum",
)

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{8,128}")
_OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_OPERATION_NAMES = 200
_seen_operations: set[str] = set()


def operation_label(name: str | None) -> str:
    """A client's operation name as a label, bounded: at most MAX_OPERATION_NAMES distinct."""
    if not name or not _OPERATION_NAME.fullmatch(name):
        return "anonymous"
    if name not in _seen_operations and len(_seen_operations) >= MAX_OPERATION_NAMES:
        return "other"
    _seen_operations.add(name)
    return name


def claim_issued(organisation_kind: str | None) -> None:
    CLAIMS_ISSUED.labels(organisation_kind or "unknown").inc()


def observe_pool(engine: AsyncEngine) -> None:
    pool: Any = engine.pool
    if not hasattr(pool, "checkedout"):
        return
    DB_POOL.labels("checked_out").set(pool.checkedout())
    DB_POOL.labels("idle").set(pool.checkedin())
    DB_POOL.labels("overflow").set(max(0, pool.overflow()))
    DB_POOL.labels("size").set(pool.size())


def metrics_body() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it looks like one (so ids join up across services),
    otherwise a new one; never free text that could carry personal data into the logs."""
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            candidate = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


class RequestContext:
    """Pure ASGI middleware: a request id in every log line and in the response, the request's
    duration by route template, and one access log line (no query string, no headers)."""

    def __init__(self, app: ASGIApp, engine: Callable[[], AsyncEngine | None]) -> None:
        self.app = app
        self.engine = engine

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", "unmatched")
                HTTP_DURATION.labels(scope["method"], route, str(status)).observe(elapsed)
                engine = self.engine()
                if engine is not None:
                    observe_pool(engine)
                if not route.startswith(("/health", "/metrics")):
                    logger.info(
                        "request",
                        method=scope["method"],
                        route=route,
                        status=status,
                        ms=round(elapsed * 1000, 1),
                    )


def setup_tracing(app: Any, service_name: str) -> Any:
    """OpenTelemetry for HTTP requests, exported over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT);
    returns the provider, for ``trace_engine`` once the engine exists."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter()))
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="health/live,health/ready,metrics"
    )
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)
    return provider


def trace_engine(engine: AsyncEngine, provider: Any) -> None:
    """SQL statements as spans; their text only (bind parameters are never recorded)."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine,
        tracer_provider=provider,
        enable_commenter=False,
        # It names SQLAlchemy < 2.1 as what it supports; the events it uses are unchanged.
        skip_dep_check=True,
    )


def span_exporter() -> Any:
    """The OTLP exporter; a test replaces this function to capture spans in memory."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()
