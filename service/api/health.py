"""Liveness and readiness: ready only when the database answers and migrations are at head."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from service.api.responses import JsonResponse
from service.api.state import app_state
from service.db.engine import database_unavailable
from service.db.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: str | None = None
    migration: str | None = None


@router.get("/health/live", response_model=Health, summary="The process is up")
async def live() -> Health:
    return Health(status="ok")


@router.get(
    "/health/ready",
    response_model=Health,
    summary="The service can serve requests",
    responses={503: {"model": Health, "description": "Database down or migrations behind"}},
)
async def ready(request: Request) -> JsonResponse:
    state = app_state(request)
    try:
        revision = await current_revision(state.engine)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        return JsonResponse(Health(status="unavailable", database="down").model_dump(), 503)
    expected = head_revision()
    if revision != expected:
        body = Health(status="unavailable", database="up", migration=f"{revision} != {expected}")
        return JsonResponse(body.model_dump(), 503)
    return JsonResponse(Health(status="ok", database="up", migration=revision).model_dump())
