"""The citizen's say over their exports: take one back, choose the name they show."""

from __future__ import annotations

import strawberry

from service.citizens.service import set_export_name
from service.credentials.exports import NO_SUCH_EXPORT, revoke_export
from service.credentials.issuer import parse_export_id
from service.errors import DomainError, NotFound
from service.schema.context import Info
from service.schema.errors import error_result
from service.schema.exports.types import (
    ExportNameSet,
    ExportRevoked,
    RevokeExportResult,
    SetExportNameResult,
    export_type,
)


@strawberry.type
class ExportMutations:
    @strawberry.mutation(
        description="Take back an export you (or a holder of your share link) handed out: every "
        "credential in it, and the export itself, then verify as revoked (also POST "
        "/passports/me/exports/{id}/revoke). Idempotent."
    )
    async def revoke_export(self, info: Info, id: strawberry.ID) -> RevokeExportResult:
        ctx = info.context
        try:
            export_id = parse_export_id(str(id))
            if export_id is None:
                raise NotFound(NO_SUCH_EXPORT)
            view = await ctx.atomically(
                lambda: revoke_export(ctx.session, ctx.principal, ctx.hmac_key, export_id)
            )
        except DomainError as exc:
            return error_result(exc)
        return ExportRevoked(export=export_type(view, ctx.settings.base_url))

    @strawberry.mutation(
        description="The name your exports (PDF and credential) show; null to use the name your "
        "sign-in gives. Exports made through a share link carry no sign-in name, only this one."
    )
    async def set_export_name(self, info: Info, name: str | None) -> SetExportNameResult:
        ctx = info.context
        try:
            chosen = await ctx.atomically(
                lambda: set_export_name(ctx.session, ctx.principal, ctx.hmac_key, name)
            )
        except DomainError as exc:
            return error_result(exc)
        return ExportNameSet(export_name=chosen)
