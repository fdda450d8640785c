"""Metrics, request ids and optional tracing: what an operator watches, without personal data.

Prometheus metrics are labelled only by things the service itself bounds: route templates,
GraphQL operations by their first root field and type, error codes, organisation kinds. With
several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` (``passport serve`` does) so
/metrics adds up all of them.

Tracing (OpenTelemetry, off unless ``PASSPORT_OTEL_ENABLED``) covers HTTP requests and SQL
statements. SQL is recorded without its parameters; GraphQL documents and variables are never
recorded, since they may carry a national number.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import structlog
from graphql import DocumentNode, FieldNode, get_operation_ast
from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status
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

from service.api.problems import unexpected
from service.logs import redact_text

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
    "GraphQL operations by their first root field and type",
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
WEBHOOK_ATTEMPTS = Counter(
    "passport_webhook_attempts_total",
    "Webhook delivery attempts, by outcome (a 2xx answer or anything else)",
    ["outcome"],
)
BULK_ROWS = Counter(
    "passport_bulk_rows_total",
    "Rows of bulk claim uploads, by outcome (accepted, duplicate, rejected)",
    ["outcome"],
)
DB_POOL = Gauge(
    "passport_db_pool_connections",
    "Database connections of this process's pool, by state",
    ["state"],
    multiprocess_mode="livesum",
)

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{8,128}")


def observe_operation(name: str, kind: str, seconds: float) -> None:
    """A GraphQL operation's duration, for /metrics and the current trace span."""
    GRAPHQL_DURATION.labels(name, kind).observe(seconds)
    span = trace.get_current_span()
    span.set_attribute("graphql.operation.name", name)
    span.set_attribute("graphql.operation.type", kind)


def operation_label(document: DocumentNode | None, operation_name: str | None) -> str:
    """What the operation does, as a label bounded by the schema: its first root field
    (``passport``, ``issueClaim``). Client-chosen operation names are not labels: any caller
    could mint them without end."""
    operation = get_operation_ast(document, operation_name) if document else None
    if operation is None:
        return "invalid"
    for node in operation.selection_set.selections:
        if isinstance(node, FieldNode) and not node.name.value.startswith("__"):
            return node.name.value
    return "introspection"


def claim_issued(organisation_kind: str | None) -> None:
    claims_issued(organisation_kind, 1)


def claims_issued(organisation_kind: str | None, count: int) -> None:
    if count:
        CLAIMS_ISSUED.labels(organisation_kind or "unknown").inc(count)


def webhook_attempt(ok: bool) -> None:
    WEBHOOK_ATTEMPTS.labels("acknowledged" if ok else "failed").inc()


def bulk_rows(accepted: int, duplicates: int, rejected: int) -> None:
    for outcome, n in (("accepted", accepted), ("duplicate", duplicates), ("rejected", rejected)):
        if n:
            BULK_ROWS.labels(outcome).inc(n)


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
    return str(uuid.uuid4())  # with its dashes: the log redaction keeps UUIDs whole


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
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if responded:
                    raise
                # Answered here rather than by Starlette's outermost handler, which this
                # middleware would never see: the answer keeps its id, its status is counted.
                await unexpected(exc)(scope, receive, send_with_id)
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
    returns the provider, for ``trace_sql``."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(RedactingExporter(span_exporter())))
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="health/live,health/ready,metrics"
    )
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)
    return provider


def trace_sql(provider: Any) -> None:
    """SQL statements as spans; their text only (bind parameters are never recorded). Traced
    at the driver, asyncpg, which every statement passes: the ORM's, those the hot paths send
    straight to it (service/db/raw.py) and the transactions' BEGIN and COMMIT. The driver's
    instrumentation is one per process: the latest app's provider gets the spans."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    tracing = AsyncPGInstrumentor(capture_parameters=False)
    if tracing.is_instrumented_by_opentelemetry:
        tracing.uninstrument()
    tracing.instrument(tracer_provider=provider)


def untrace_sql() -> None:
    """The driver untraced when the app that traced it stops (tests build many in a process)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    tracing = AsyncPGInstrumentor()
    if tracing.is_instrumented_by_opentelemetry:
        tracing.uninstrument()


# URL attributes lose their query string: a client may put anything there.
_URL_ATTRIBUTES = frozenset({"http.url", "http.target", "url.full", "url.query"})


def _clean(attributes: Any) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in dict(attributes or {}).items():
        if isinstance(value, str):
            if key in _URL_ATTRIBUTES:
                value = value.split("?", 1)[0]
            value = redact_text(value)
        cleaned[key] = value
    return cleaned


class RedactingExporter(SpanExporter):
    """Spans pass the same redaction as logs before they leave: no query strings, and no row
    values from database errors (their DETAIL) in statuses or exception events."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        cleaned = [
            ReadableSpan(
                name=redact_text(span.name),
                context=span.context,
                parent=span.parent,
                resource=span.resource,
                attributes=_clean(span.attributes),
                events=[Event(e.name, _clean(e.attributes), e.timestamp) for e in span.events],
                links=span.links,
                kind=span.kind,
                status=Status(
                    span.status.status_code,
                    redact_text(span.status.description) if span.status.description else None,
                ),
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
            for span in spans
        ]
        result: SpanExportResult = self.inner.export(cleaned)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))


def span_exporter() -> Any:
    """The OTLP exporter; a test replaces this function to capture spans in memory."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()
