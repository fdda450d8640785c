"""Providers' bulk upload of learning opportunities: NDJSON, one offer per line."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from service.api.auth import rest_transaction
from service.api.bodies import BodyTooLarge, declared_too_large, read_bounded
from service.api.problems import PROBLEM_RESPONSES, FieldProblem, problem
from service.api.responses import JsonResponse
from service.api.uploads import json_row
from service.errors import ValidationFailed
from service.learning.service import MAX_BATCH, publish_many, require_publisher
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


def _lines(body: bytes) -> list[tuple[int, bytes]]:
    """Non-blank lines with their physical line numbers, as the uploader's editor shows them."""
    return [(n, line) for n, line in enumerate(body.split(b"\n"), start=1) if line.strip()]


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
    if declared_too_large(request, MAX_BYTES):
        return problem(413, "PAYLOAD_TOO_LARGE", "upload larger than 4 MiB")
    cost = WEIGHTS["Mutation.publishLearningOpportunities"]
    async with rest_transaction(request, cost) as (session, principal):
        require_publisher(principal)  # before reading a byte of the body
        try:
            body = await read_bounded(request, MAX_BYTES)
        except BodyTooLarge:
            return problem(413, "PAYLOAD_TOO_LARGE", "upload larger than 4 MiB")
        lines = _lines(body)
        if len(lines) > MAX_BATCH:
            raise ValidationFailed.one("body", f"at most {MAX_BATCH} offers per upload", "too_many")
        reports: dict[int, RowReport] = {}
        rows: list[dict[str, Any]] = []
        numbers: list[int] = []
        for number, line in lines:
            try:
                rows.append(json_row(line))
                numbers.append(number)
            except ValueError as exc:
                reports[number] = RowReport(
                    line=number,
                    status="rejected",
                    problems=[
                        FieldProblem(field=f"line {number}", message=str(exc), code="invalid_row")
                    ],
                )
        for outcome in await publish_many(session, principal, rows):
            number = numbers[outcome.index]
            reports[number] = RowReport(
                line=number,
                status="published" if outcome.opportunity else "rejected",
                id=str(outcome.opportunity.id) if outcome.opportunity else None,
                problems=[
                    FieldProblem(
                        field=p.field.replace(f"inputs.{outcome.index}", f"line {number}", 1),
                        message=p.message,
                        code=p.code,
                    )
                    for p in outcome.error.problems
                ]
                if outcome.error
                else None,
            )
    ordered = [reports[number] for number in sorted(reports)]
    report = UploadReport(
        published=sum(1 for r in ordered if r.status == "published"),
        rejected=sum(1 for r in ordered if r.status == "rejected"),
        rows=ordered,
    )
    return JsonResponse(report.model_dump(exclude_none=True))
