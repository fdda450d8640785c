"""Prometheus metrics for the operator's scraper; no personal data (service/observability.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api.state import app_state
from service.observability import metrics_body, observe_pool

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    observe_pool(app_state(request).engine)
    body, media_type = metrics_body()
    return Response(body, media_type=media_type)
