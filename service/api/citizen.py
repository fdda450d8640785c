"""REST routes for the signed-in citizen: the data export as a file download."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from service.api.auth import rest_transaction
from service.api.problems import PROBLEM_RESPONSES
from service.api.responses import JsonResponse
from service.citizens.export import EXPORT_FORMAT, export_data
from service.schema.cost import WEIGHTS

router = APIRouter(tags=["citizen"])
EXPORT_COST = WEIGHTS["Me.exportData"]


class DataExport(BaseModel):
    """Everything held about the citizen (GDPR art. 15 and 20)."""

    format: str = EXPORT_FORMAT
    exportedAt: datetime
    citizenId: str | None
    claims: list[dict[str, Any]]
    events: list[dict[str, Any]]
    grants: list[dict[str, Any]]
    accessLog: list[dict[str, Any]]
    exportName: str | None
    credentialExports: list[dict[str, Any]]
    credentialOffers: list[dict[str, Any]]


@router.get(
    "/me/export",
    summary="Download everything held about you as JSON",
    response_model=DataExport,
    responses={k: v for k, v in PROBLEM_RESPONSES.items() if k in (401, 403, 429, 503)},
)
async def download_export(request: Request) -> JsonResponse:
    async with rest_transaction(request, EXPORT_COST) as (session, principal):
        state = request.app.state.passport
        document = await export_data(session, principal, state.hmac_key)
    return JsonResponse(
        document,
        headers={"Content-Disposition": 'attachment; filename="competence-passport-export.json"'},
    )
