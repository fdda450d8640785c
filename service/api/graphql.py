"""The GraphQL endpoint: body limits, authentication, one transaction per request.

Written as a plain route rather than Strawberry's router so the transaction is committed *before*
the response is sent, batching and GET queries are refused, and every transport failure has a
typed JSON error.

Order of work: the body is read and checked, the token's signature verified (no database), the
document parsed and validated (no database), and only then is the caller looked up (client
registry or share link: the request's first statement) and the operation run. A refused document
is looked up afterwards, to answer 401 or charge its refusal: it costs the one statement every
request costs, and holds no connection while it is parsed and validated.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import asdict
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from graphql import GraphQLError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult

from service.api.auth import bearer, verified
from service.api.bodies import BodyTooLarge, media_type, read_bounded
from service.api.explorer import explorer_page
from service.api.problems import bearer_challenge
from service.api.responses import JsonResponse
from service.api.state import AppState, app_state
from service.auth.principal import Lookup, Principal
from service.db.engine import database_unavailable, unstorable_value
from service.errors import (
    DomainError,
    ErrorCode,
    QueryTooCostly,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from service.observability import GRAPHQL_ERRORS
from service.schema import (
    MAX_NAME_CHARS,
    NOBODY,
    PendingContext,
    cached_document,
    parsed,
    schema_only,
)
from service.schema.context import Context
from service.schema.prepared import run as prepared_read
from service.strict_json import InvalidJson, strict_json

logger = structlog.get_logger(__name__)
router = APIRouter()

GRAPHQL_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["query"],
    "properties": {
        "query": {"type": "string"},
        "variables": {"type": ["object", "null"]},
        "operationName": {"type": ["string", "null"]},
    },
}


def transport_error(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    return JsonResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers=headers or None,
    )


_ECHOED_VALUES = (
    (re.compile(r"got invalid value .*?; ", re.S), "got an invalid value; "),
    (re.compile(r"[,;.]? found: .*$", re.S | re.I), "."),
    (re.compile(r"(cannot represent [^:]*): .*$", re.S), r"\1."),
    (re.compile(r"Value '.*?' does not exist", re.S), "The value does not exist"),
)


def safe_message(message: str) -> str:
    """GraphQL's input errors quote the value sent, which may be a national number: drop it."""
    for pattern, replacement in _ECHOED_VALUES:
        message = pattern.sub(replacement, message)
    return message


def _format_error(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    formatted["message"] = safe_message(error.message)
    original = error.original_error
    if isinstance(original, ValidationFailed):
        formatted["extensions"] = {
            "code": original.code.value,
            "problems": [asdict(problem) for problem in original.problems],
        }
    elif isinstance(original, DomainError):
        formatted["extensions"] = {
            **(formatted.get("extensions") or {}),
            "code": original.code.value,
        }
    elif unstorable_value(original):
        formatted["message"] = (
            "A value cannot be stored (control characters or dates out of range)."
        )
        formatted["extensions"] = {"code": ErrorCode.VALIDATION_FAILED.value}
    elif (original is None and error.message == "Unexpected error.") or not (
        original is None or isinstance(original, GraphQLError)
    ):
        # The second: an exception in parsing or validation, which Strawberry does not mask.
        formatted["message"] = "Unexpected error."
        formatted["extensions"] = {"code": "INTERNAL"}
    else:
        formatted["extensions"] = {
            **(formatted.get("extensions") or {}),
            "code": "GRAPHQL_VALIDATION",
        }
    return formatted


def _response(result: ExecutionResult, context: Context) -> JsonResponse:
    # After an unexpected error in a read, everything was rolled back: data that resolved before
    # it would show a read that was never recorded. Committed mutations keep their answers.
    hide = context.failed and not context.committed
    body: dict[str, Any] = {"data": None if hide else result.data}
    if result.errors:
        body["errors"] = [_format_error(error) for error in result.errors]
        for error in body["errors"]:
            GRAPHQL_ERRORS.labels(error["extensions"]["code"]).inc()
    if context.cost:  # what this operation took from the caller's rate limit
        body["extensions"] = {"cost": context.cost}
    return JsonResponse(body)


async def _read_request(request: Request, state: AppState) -> dict[str, Any] | JsonResponse:
    limit = state.settings.graphql_max_body_bytes
    if media_type(request) != "application/json":
        return transport_error(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json")
    try:
        payload = strict_json(await read_bounded(request, limit))
    except BodyTooLarge:
        return transport_error(413, "PAYLOAD_TOO_LARGE", f"request body over {limit} bytes")
    except InvalidJson as exc:
        return transport_error(400, "BAD_REQUEST", f"the body is {exc}")
    if isinstance(payload, list):
        return transport_error(400, "BATCHING_NOT_SUPPORTED", "send one operation per request")
    name = payload.get("operationName") if isinstance(payload, dict) else None
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("query"), str)
        and isinstance(payload.get("variables"), dict | None)
        and isinstance(name, str | None)
        and len(name or "") <= MAX_NAME_CHARS
    ):
        return transport_error(
            400,
            "BAD_REQUEST",
            "expected {query: string, variables?: object, operationName?: string}"
            f" (names of at most {MAX_NAME_CHARS} characters)",
        )
    return payload


@router.post(
    "/graphql",
    tags=["graphql"],
    summary="GraphQL endpoint (see schema.graphql)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": GRAPHQL_REQUEST_SCHEMA}},
        }
    },
    responses={
        200: {"description": "A GraphQL result: data and/or typed errors"},
        400: {"description": "Malformed request, batch or missing operation"},
        401: {"description": "Missing or invalid bearer token"},
        413: {"description": "Request body too large"},
        415: {"description": "Not application/json"},
        429: {"description": "Rate limit reached; see Retry-After. Nothing was run"},
        503: {"description": "Database unavailable; retry later"},
    },
)
async def graphql_post(request: Request) -> Response:
    state = app_state(request)
    payload = await _read_request(request, state)
    if isinstance(payload, JsonResponse):
        return payload
    try:
        lookup = await _caller(request, state, payload)
        outcome = await _execute(state, payload, lookup)
    except Unauthenticated as exc:
        return _unauthenticated(exc)
    except Exception as exc:
        if database_unavailable(exc):
            logger.warning("database_unavailable", error=type(exc).__name__)
            return _unavailable()
        logger.error("graphql_request_failed", exc_info=exc)
        return transport_error(500, "INTERNAL", "Unexpected error.")
    if isinstance(outcome, JsonResponse):
        return outcome
    result, context = outcome
    if context.cost == 0 and context.retry_after is None:
        await _charge_refusal(state, context)
    if context.unavailable and not context.committed:
        return _unavailable()  # nothing was written: the whole request may be sent again
    response = _response(result, context)
    if context.retry_after is not None:  # nothing ran: the whole request may be sent later
        response.status_code = 429
        response.headers["Retry-After"] = str(context.retry_after)
    return response


async def _caller(request: Request, state: AppState, payload: dict[str, Any]) -> Lookup:
    """Who the request speaks for: its bearer token's caller. With the development tools on,
    a document that only asks for the schema speaks for nobody, token or not: GraphiQL loads
    the schema before anyone has pasted a token (and whoever asks, the schema is the same)."""
    if state.settings.dev_tools and introspection_only(
        payload["query"], payload.get("operationName"), state.settings.graphql_max_tokens
    ):
        return _nobody
    return await verified(state, bearer(request))


async def _nobody(session: AsyncSession) -> Principal:
    return NOBODY


def introspection_only(query: str, operation_name: str | None, max_tokens: int) -> bool:
    try:
        document = parsed(query, max_tokens)
    except GraphQLError:
        return False
    return schema_only(document, operation_name)


def _unauthenticated(exc: Unauthenticated) -> JsonResponse:
    """401 with RFC 6750's challenge, and the reason in the message and the extensions."""
    return JsonResponse(
        {
            "errors": [
                {
                    "message": f"a valid bearer token is required: {exc.description}",
                    "extensions": {"code": "UNAUTHENTICATED", "reason": exc.reason.value},
                }
            ]
        },
        status_code=401,
        headers=bearer_challenge(exc),
    )


async def _execute(
    state: AppState, payload: dict[str, Any], lookup: Lookup
) -> tuple[ExecutionResult, Context] | JsonResponse:
    """Reads in one transaction, committed (with their access records) unless anything
    unexpected happened; mutations commit one by one. Unauthenticated: the token names nobody
    active.

    The session takes a connection at its first statement: the caller's lookup, which
    CostAndRateLimit runs once the document is valid, or this function once it was refused."""
    async with state.sessions() as session:
        context = PendingContext(
            session=session,
            principal=NOBODY,
            settings=state.settings,
            hmac_key=state.hmac_key,
            limiter=state.limiter,
            issuer=state.issuer,
            operation_name=payload.get("operationName"),
            lookup=lookup,
        )
        refusal: JsonResponse | None = None
        document = cached_document(payload["query"], state.settings.graphql_max_tokens)
        prepared = (
            None
            if document is None
            else await prepared_read(
                state.schema,
                context,
                document,
                payload.get("operationName"),
                payload.get("variables"),
            )
        )
        try:
            result = prepared or await state.schema.execute(
                payload["query"],
                variable_values=payload.get("variables"),
                operation_name=payload.get("operationName"),
                context_value=context,
            )
        except (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError):
            refusal = transport_error(400, "BAD_REQUEST", "no executable operation in the document")
        if not await context.authenticate():
            raise context.refusal or Unauthenticated()
        if refusal is not None:
            await session.rollback()
            return refusal
        if context.failed:
            with suppress(SQLAlchemyError, OSError):  # the error is already in the answer
                await session.rollback()
        elif session.in_transaction():  # reads and their access records; mutations committed
            await session.commit()
    return result, context


async def _charge_refusal(state: AppState, context: Context) -> None:
    """A request that never reached execution (invalid, refused, too costly) still costs 1,
    so a stream of them runs into the limit like any other."""
    with suppress(RateLimited, QueryTooCostly):
        await state.limiter.spend(context.principal, 1)


def _unavailable() -> JsonResponse:
    return transport_error(
        503, "UNAVAILABLE", "the database is unavailable; retry later", **{"Retry-After": "2"}
    )


@router.get("/graphql", include_in_schema=False)
async def graphql_ide(request: Request) -> Response:
    """GraphiQL in development (service/api/explorer.py); GET never runs an operation."""
    if not app_state(request).settings.dev_tools:
        return transport_error(405, "METHOD_NOT_ALLOWED", "use POST")
    return explorer_page()
