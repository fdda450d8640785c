"""Liveness and readiness: ready only when the database answers and migrations are at head."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from service.api.responses import JsonResponse
from service.api.state import app_state
from service.db.engine import database_unavailable, sqlstate
from service.db.migrate import current_revision, head_revision, serves

router = APIRouter(tags=["health"])
ROLE_MISSING = "22023"  # invalid_parameter_value: "role ... does not exist" at connect


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
    """Ready at the code's migration head, or past it (a newer release migrated first during a
    rolling upgrade); not while migrations are behind or the database is out of reach. It
    recovers by itself: every probe asks the database afresh."""
    state = app_state(request)
    try:
        revision = await current_revision(state.engine)
    except Exception as exc:
        if sqlstate(exc) == ROLE_MISSING:  # the migrations that create the role never ran
            # (a connection refused at startup: "role ... does not exist")
            body = Health(status="unavailable", database="up", migration="not migrated")
            return JsonResponse(body.model_dump(), 503)
        if not database_unavailable(exc):
            raise
        return JsonResponse(Health(status="unavailable", database="down").model_dump(), 503)
    if not serves(revision):
        expected = head_revision()
        body = Health(status="unavailable", database="up", migration=f"{revision} != {expected}")
        return JsonResponse(body.model_dump(), 503)
    return JsonResponse(Health(status="ok", database="up", migration=revision).model_dump())
