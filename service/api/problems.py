"""REST errors as RFC 9457 problem details, each with the same machine-readable ``code`` as
GraphQL's errors; expected failures of the domain map to their HTTP status here, once."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

from service.db.engine import database_unavailable, retryable
from service.errors import (
    AuthFailure,
    Conflict,
    DomainError,
    ErrorCode,
    InvalidState,
    NotAuthorized,
    NotFound,
    QueryTooCostly,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from service.validation import field_path

logger = structlog.get_logger(__name__)
MEDIA_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    field: str
    message: str
    code: str


class Problem(BaseModel):
    """The body of every REST error."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None
    problems: list[FieldProblem] | None = None
    reason: str | None = Field(
        default=None, description="UNAUTHENTICATED: why, e.g. expired, unknown_key, wrong_audience"
    )


def problem(
    status: int, code: str, title: str, detail: str | None = None, **extra: Any
) -> Response:
    headers = extra.pop("headers", None)
    body = Problem(status=status, code=code, title=title, detail=detail, **extra)
    return Response(
        orjson.dumps(body.model_dump(exclude_none=True)),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


STATUS: dict[type[DomainError], int] = {
    ValidationFailed: 422,
    NotFound: 404,
    NotAuthorized: 403,
    Conflict: 409,
    InvalidState: 409,
    RateLimited: 429,
    QueryTooCostly: 422,
}


def domain_problem(exc: DomainError) -> Response:
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationFailed):
        extra["problems"] = [FieldProblem(**asdict(p)) for p in exc.problems]
    if isinstance(exc, RateLimited):
        extra["headers"] = {"Retry-After": str(exc.retry_after)}
    return problem(status, exc.code.value, exc.message, **extra)


# RFC 6750: without any bearer credentials the challenge carries no error; a malformed
# request is invalid_request; anything wrong with the token itself is invalid_token.
_NO_CREDENTIALS = frozenset({AuthFailure.MISSING, AuthFailure.NOT_BEARER})
_QUOTABLE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")  # what error_description may hold


def bearer_challenge(exc: Unauthenticated) -> dict[str, str]:
    """The WWW-Authenticate header for this refusal (RFC 6750, section 3). Building it logs
    the refusal, with the request id the log line carries and the reason only: never the
    token, which the redaction step would catch anyway, nor anything it holds."""
    logger.info("unauthenticated", reason=exc.reason.value)
    if exc.reason in _NO_CREDENTIALS:
        return {"WWW-Authenticate": "Bearer"}
    error = "invalid_request" if exc.reason is AuthFailure.SEVERAL_HEADERS else "invalid_token"
    description = _QUOTABLE.sub("", exc.description)
    return {"WWW-Authenticate": f'Bearer error="{error}", error_description="{description}"'}


def unauthenticated(exc: Unauthenticated) -> Response:
    return problem(
        401,
        ErrorCode.UNAUTHENTICATED.value,
        "a valid bearer token is required",
        exc.description,
        reason=exc.reason.value,
        headers=bearer_challenge(exc),
    )


def unavailable() -> Response:
    return problem(
        503, "UNAVAILABLE", "the database is unavailable; retry later", headers={"Retry-After": "2"}
    )


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": description}
    for status, description in (
        (401, "Missing or invalid bearer token"),
        (403, "Not allowed for this caller"),
        (404, "Not found (also what a refused read looks like)"),
        (422, "Invalid input"),
        (429, "Rate limit reached; see Retry-After"),
        (503, "Database unavailable; retry later"),
    )
}


def install(app: FastAPI) -> None:
    """Every REST failure answers with a problem document, never a bare 500 page."""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> Response:
        return domain_problem(exc)

    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(_: Request, exc: Unauthenticated) -> Response:
        return unauthenticated(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        problems = [
            FieldProblem(field=field_path(tuple(e["loc"]), ""), message=e["msg"], code=e["type"])
            for e in exc.errors()
        ]
        return problem(422, ErrorCode.VALIDATION_FAILED.value, "invalid request", problems=problems)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> Response:
        return problem(exc.status_code, "HTTP_ERROR", str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        return unexpected(exc)


def unexpected(exc: Exception) -> Response:
    """The answer to an exception nothing else handled (also used by the request middleware,
    so it carries the request id and is counted with its real status)."""
    if database_unavailable(exc) or retryable(exc):
        # Out of reach, or a deadlock with another writer: nothing was committed.
        logger.warning("database_unavailable", error=type(exc).__name__)
        return unavailable()
    logger.error("rest_request_failed", exc_info=exc)
    return problem(500, "INTERNAL", "Unexpected error.")
