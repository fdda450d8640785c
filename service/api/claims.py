"""Partners' bulk upload of claims: NDJSON or CSV, up to 100,000 rows, with a per-row report.

The body is first spooled (memory up to a few MiB, then a temporary file) while its size and
SHA-256 are taken; only then is any row written. The report is NDJSON: one line per row
(``accepted``, ``duplicate`` or ``rejected`` with its problems), then one ``summary`` line.
Under an ``Idempotency-Key``, a retry of a finished upload gets the first report back and
writes nothing; the same key with another body is refused.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, asynccontextmanager
from typing import IO, Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response, StreamingResponse

from service import clock
from service.api.auth import charged_principal
from service.api.bodies import declared_too_large, media_type
from service.api.problems import PROBLEM_RESPONSES, problem
from service.api.state import AppState, app_state
from service.api.uploads import BadHeader, csv_rows, json_row, ndjson_lines
from service.auth.policy import require_issuer
from service.auth.principal import Principal
from service.claims.bulk import NumberedOutcome, RowStatus, counted, ingest
from service.claims.fast import Checked, fast_row
from service.errors import Problem
from service.models import BulkUpload

router = APIRouter(tags=["claims"])
NDJSON = "application/x-ndjson"
CSV = "text/csv"
SPOOL_IN_MEMORY = 4 * 1024 * 1024
BASE_COST = 100  # charged before the body is read; then one unit per 50 rows
ROWS_PER_UNIT = 50
_KEY = re.compile(r"[\x21-\x7e]{1,200}")
ClaimRow = tuple[int, Checked | dict[str, Any] | Problem]

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One JSON line per row, then a summary line",
        "content": {NDJSON: {"schema": {"type": "string"}}},
    },
    **{k: v for k, v in PROBLEM_RESPONSES.items() if k in (401, 403, 422, 429, 503)},
    409: {**PROBLEM_RESPONSES[422], "description": "Idempotency-Key in use or used otherwise"},
    413: {**PROBLEM_RESPONSES[422], "description": "Too many bytes or rows"},
    415: {**PROBLEM_RESPONSES[422], "description": "Neither NDJSON nor CSV"},
}


def _report_line(numbered: NumberedOutcome) -> bytes:
    outcome = numbered.outcome
    line: dict[str, Any] = {"line": numbered.line, "status": outcome.status.value}
    if outcome.claim_id is not None:
        line["claimId"] = str(outcome.claim_id)
    if outcome.error is not None:
        line["code"] = outcome.error.code.value
        line["message"] = outcome.error.message
        problems = getattr(outcome.error, "problems", None)
        if problems:
            line["problems"] = [
                {"field": p.field, "message": p.message, "code": p.code} for p in problems
            ]
    return orjson.dumps(line) + b"\n"


class _NotUtf8(Exception):
    pass


def _too_large(limit: int) -> Response:
    return problem(413, "PAYLOAD_TOO_LARGE", f"upload larger than {limit} bytes")


async def _spool(request: Request, limit: int) -> tuple[IO[bytes], bytes, int] | None:
    """The body in a temporary file, its SHA-256 and its line count; None when too large.
    Raises _NotUtf8 (checked as it arrives, so no row is written from a corrupt file)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    digest = hashlib.sha256()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    size = newlines = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            spool.close()
            return None
        try:
            utf8.decode(chunk)
        except UnicodeDecodeError:
            spool.close()
            raise _NotUtf8 from None
        digest.update(chunk)
        newlines += chunk.count(b"\n")
        spool.write(chunk)
    try:
        utf8.decode(b"", final=True)
    except UnicodeDecodeError:
        spool.close()
        raise _NotUtf8 from None
    spool.seek(0)
    return spool, digest.digest(), newlines + 1


def _claim_line(line: bytes) -> Checked | dict[str, Any]:
    """The fast reader's row, or (a row it does not accept) the mapping the models read."""
    return fast_row(line) or json_row(line)


def _rows(spool: IO[bytes], media_type: str) -> Iterator[ClaimRow]:
    if media_type == CSV:
        return csv_rows(spool)
    return ndjson_lines(spool, _claim_line)


async def _principal(state: AppState, request: Request) -> Principal:
    """Authenticated and charged in a short session of its own: the upload's chunks each
    have theirs."""
    async with state.sessions() as session:
        return await charged_principal(state, session, request, BASE_COST)


@asynccontextmanager
async def _upload_lock(
    state: AppState, principal: Principal, key: str | None
) -> AsyncIterator[tuple[AsyncConnection | None, bool]]:
    """One upload per key at a time: a session advisory lock on a connection held meanwhile."""
    if key is None:
        yield None, True
        return
    async with state.engine.connect() as conn:
        lock = func.hashtextextended(f"bulk:{principal.organisation_id}:{key}", 0)
        got = bool(await conn.scalar(select(func.pg_try_advisory_lock(lock))))
        await conn.commit()
        try:
            yield conn, got
        finally:
            if got:
                await conn.execute(select(func.pg_advisory_unlock(lock)))
                await conn.commit()


@router.post(
    "/claims:bulk",
    summary="Issue up to 100,000 claims from NDJSON or CSV, with a report per row",
    response_class=StreamingResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                NDJSON: {"schema": {"type": "string"}},
                CSV: {"schema": {"type": "string"}},
            },
        },
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 200},
                "description": "A retry with the same key and body returns the first report",
            }
        ],
    },
    responses=RESPONSES,
)
async def bulk_issue(request: Request) -> Response:
    state = app_state(request)
    settings = state.settings
    kind = media_type(request)
    if kind not in (NDJSON, CSV):
        return problem(415, "UNSUPPORTED_MEDIA_TYPE", f"send {NDJSON} or {CSV}")
    key = request.headers.get("idempotency-key")
    if key is not None and not _KEY.fullmatch(key):
        return problem(
            422, "VALIDATION_FAILED", "Idempotency-Key: 1-200 printable ASCII characters"
        )
    if declared_too_large(request, settings.bulk_max_bytes):  # refused before any work
        return _too_large(settings.bulk_max_bytes)
    principal = await _principal(state, request)
    organisation_id = require_issuer(principal)  # before reading a byte of the body
    try:
        spooled = await _spool(request, settings.bulk_max_bytes)
    except _NotUtf8:
        return problem(422, "VALIDATION_FAILED", "the upload is not UTF-8 text")
    if spooled is None:
        return _too_large(settings.bulk_max_bytes)
    spool, digest, lines = spooled
    try:
        async with _upload_lock(state, principal, key) as (conn, got):
            if not got:
                return problem(
                    409, "CONFLICT", "an upload with this Idempotency-Key is in progress"
                )
            if conn is not None:
                earlier = (
                    await conn.execute(
                        select(BulkUpload.body_sha256, BulkUpload.report_gzip).where(
                            BulkUpload.organisation_id == organisation_id,
                            BulkUpload.idempotency_key == key,
                        )
                    )
                ).one_or_none()
                if earlier is not None:
                    if bytes(earlier.body_sha256) != digest:
                        return problem(
                            409, "CONFLICT", "this Idempotency-Key was used for another upload"
                        )
                    return Response(
                        gzip.decompress(earlier.report_gzip),
                        media_type=NDJSON,
                        headers={"Idempotent-Replayed": "true"},
                    )
            try:
                _count(spool, kind, settings.bulk_max_rows, lines)
                rows = _rows(spool, kind)
                report = await _process(state, principal, rows, conn, key, digest)
            except BadHeader as exc:
                return problem(422, "VALIDATION_FAILED", str(exc))
            except _TooManyRows:
                return problem(413, "PAYLOAD_TOO_LARGE", f"more than {settings.bulk_max_rows} rows")
    finally:
        spool.close()
    return StreamingResponse(_read_out(report), media_type=NDJSON)


class _TooManyRows(Exception):
    pass


def _count(spool: IO[bytes], media_type: str, limit: int, lines: int) -> None:
    """Rows counted before the first is written, in a pass of their own (bounded memory),
    unless the line count alone proves the upload within the limit."""
    if lines > limit + 1:  # one more for a CSV header
        count = sum(1 for _ in _rows(spool, media_type))
        spool.seek(0)
        if count > limit:
            raise _TooManyRows


async def _process(
    state: AppState,
    principal: Principal,
    rows: Iterator[ClaimRow],
    conn: AsyncConnection | None,
    key: str | None,
    digest: bytes,
) -> IO[bytes]:
    """Runs the upload; returns the report, spooled, and records it under the key."""
    report = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    packed = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) if key else None  # noqa: SIM115
    archive = gzip.GzipFile(fileobj=packed, mode="wb") if packed else None
    statuses: list[RowStatus] = []
    try:
        chunks = ingest(
            state.sessions, principal, rows, state.hmac_key, state.settings.bulk_chunk_rows
        )
        async with aclosing(chunks):  # closed here, whatever stops the loop: it holds a flight
            async for chunk in chunks:
                data = b"".join(_report_line(numbered) for numbered in chunk)
                report.write(data)
                if archive:
                    archive.write(data)
                statuses.extend(numbered.outcome.status for numbered in chunk)
                await state.limiter.spend(principal, max(1, len(chunk) // ROWS_PER_UNIT))
        counts = counted(principal, statuses)
        summary = {
            "summary": {
                "rows": sum(counts.values()),
                "accepted": counts[RowStatus.ACCEPTED],
                "duplicates": counts[RowStatus.DUPLICATE],
                "rejected": counts[RowStatus.REJECTED],
            }
        }
        tail = orjson.dumps(summary) + b"\n"
        report.write(tail)
        if archive and packed and conn is not None and key is not None:
            archive.write(tail)
            archive.close()
            packed.seek(0)
            await conn.execute(
                insert(BulkUpload).values(
                    organisation_id=principal.organisation_id,
                    idempotency_key=key,
                    body_sha256=digest,
                    created_at=clock.now(),
                    rows=summary["summary"]["rows"],
                    accepted=counts[RowStatus.ACCEPTED],
                    duplicates=counts[RowStatus.DUPLICATE],
                    rejected=counts[RowStatus.REJECTED],
                    report_gzip=packed.read(),
                )
            )
            await conn.commit()
    except BaseException:
        report.close()
        raise
    finally:
        if packed:
            packed.close()
    report.seek(0)
    return report


async def _read_out(report: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while block := report.read(64 * 1024):
            yield block
    finally:
        report.close()
