"""Providers' bulk upload of learning opportunities: NDJSON, one offer per line."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel
from pydantic.alias_generators import to_snake
from starlette.responses import Response

from service.api.auth import rest_transaction
from service.api.problems import PROBLEM_RESPONSES, FieldProblem, problem
from service.api.responses import JsonResponse
from service.errors import ValidationFailed
from service.learning.service import MAX_BATCH, publish_many
from service.schema.cost import WEIGHTS

router = APIRouter(tags=["learning"])
RESPONSES: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in PROBLEM_RESPONSES.items() if k in (401, 403, 422, 429, 503)},
    413: {**PROBLEM_RESPONSES[422], "description": "Upload larger than 4 MiB"},
}
MAX_BYTES = 4 * 1024 * 1024
NDJSON = "application/x-ndjson"


class RowReport(BaseModel):
    line: int
    status: str  # "published" or "rejected"
    id: str | None = None
    problems: list[FieldProblem] | None = None


class UploadReport(BaseModel):
    published: int
    rejected: int
    rows: list[RowReport]


def _rows(body: bytes) -> list[Any]:
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) > MAX_BATCH:
        raise ValidationFailed.one("body", f"at most {MAX_BATCH} offers per upload", "too_many")
    rows: list[Any] = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise ValidationFailed.one(
                f"line {number}", "not a JSON object", "invalid_json"
            ) from None
    return rows


def _camel_free(row: Any) -> Any:
    """Offers come in the API's camelCase; the domain's names are snake_case."""
    if not isinstance(row, dict):
        return row
    return {to_snake(str(key)): value for key, value in row.items()}


@router.post(
    "/learning-opportunities:bulk",
    summary="Publish up to 500 learning opportunities, one JSON object per line (NDJSON)",
    response_model=UploadReport,
    openapi_extra={
        "requestBody": {"required": True, "content": {NDJSON: {"schema": {"type": "string"}}}}
    },
    responses=RESPONSES,
)
async def bulk_upload(request: Request) -> Response:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            return problem(413, "PAYLOAD_TOO_LARGE", "upload larger than 4 MiB")
    async with rest_transaction(request, WEIGHTS["Mutation.publishLearningOpportunities"]) as (
        session,
        principal,
    ):
        rows = [_camel_free(row) for row in _rows(body)]
        outcomes = await publish_many(session, principal, rows)
    report = UploadReport(
        published=sum(1 for o in outcomes if o.opportunity),
        rejected=sum(1 for o in outcomes if o.error),
        rows=[
            RowReport(
                line=o.index + 1,
                status="published" if o.opportunity else "rejected",
                id=str(o.opportunity.id) if o.opportunity else None,
                problems=[
                    FieldProblem(
                        field=p.field.replace(f"inputs.{o.index}", f"line {o.index + 1}", 1),
                        message=p.message,
                        code=p.code,
                    )
                    for p in o.error.problems
                ]
                if o.error
                else None,
            )
            for o in outcomes
        ],
    )
    return JsonResponse(report.model_dump(exclude_none=True))
