"""`me`: the signed-in citizen's passport, grants, access log and data export."""

from __future__ import annotations

from typing import cast

import strawberry
from strawberry.scalars import JSON

from service.citizens.export import export_data
from service.citizens.service import export_name, own_citizen_id
from service.consent import service as consent
from service.credentials import europass
from service.credentials.exports import citizen_exports
from service.credentials.i18n import Language as CredentialLanguage
from service.credentials.issuer import Issuer
from service.errors import NotAuthorized
from service.passports import access_log
from service.passports import service as passports
from service.schema.citizens.types import AccessLogConnection, AccessLogEdge, access_log_entry
from service.schema.common import Language, PageInfo, clamp_first
from service.schema.consent.types import Grant, grant_type
from service.schema.context import Info
from service.schema.exports.types import ExportConnection, ExportEdge, export_type
from service.schema.passports.compiled import answer, compiled
from service.schema.passports.queries import passport_filter
from service.schema.passports.types import Passport, PassportFilter, passport_type


@strawberry.type
class Me:
    @strawberry.field(description="Your own passport")
    async def passport(self, info: Info, filter: PassportFilter | None = None) -> Passport:
        ctx = info.context
        view = await passports.read_own_passport(
            ctx.session,
            ctx.principal,
            ctx.hmac_key,
            passport_filter(filter),
            render=compiled(info),
        )
        return cast(Passport, answer(view, passport_type))

    @strawberry.field(description="Everyone you let read your passport, newest first")
    async def grants(self, info: Info) -> list[Grant]:
        ctx = info.context
        views = await consent.citizen_grants(ctx.session, ctx.principal, ctx.hmac_key)
        return [grant_type(view) for view in views]

    @strawberry.field(description="Every read of your passport, newest first")
    async def access_log(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> AccessLogConnection:
        ctx = info.context
        page = await access_log.access_log(
            ctx.session,
            ctx.principal,
            ctx.hmac_key,
            first=clamp_first(first, ctx.settings.max_page_size),
            after=after,
        )
        return AccessLogConnection(
            edges=[
                AccessLogEdge(cursor=entry.cursor, node=access_log_entry(entry))
                for entry in page.items
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field(
        description="Every export of your passport, newest first: yours and your share links' "
        "(also GET /passports/me/exports)"
    )
    async def exports(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> ExportConnection:
        ctx = info.context
        page = await citizen_exports(
            ctx.session,
            ctx.principal,
            ctx.hmac_key,
            first=clamp_first(first, ctx.settings.max_page_size),
            after=after,
        )
        base_url = ctx.settings.base_url
        return ExportConnection(
            edges=[
                ExportEdge(
                    cursor=view.cursor,
                    node=export_type(view, base_url),
                )
                for view in page.items
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field(
        description="The name your exports show, if you chose one (setExportName); otherwise "
        "they show the name your sign-in gives"
    )
    async def export_name(self, info: Info) -> str | None:
        ctx = info.context
        citizen_id = await own_citizen_id(ctx.session, ctx.principal, ctx.hmac_key)
        return await export_name(ctx.session, citizen_id) if citizen_id else None

    @strawberry.field(
        description="Your verified competences as a Europass credential (European Learning "
        "Model v3, generic profile, unsealed; also GET /passports/me/europass)"
    )
    async def europass(self, info: Info, language: Language = Language.EN) -> JSON:
        ctx = info.context
        document = await europass.export_europass(
            ctx.session,
            ctx.principal,
            hmac_key=ctx.hmac_key,
            issuer=require_issuer(ctx.issuer),
            language=CredentialLanguage(language.value),
            issuer_legal_id=ctx.settings.europass_issuer_id or None,
        )
        return cast(JSON, document)

    @strawberry.field(
        description="Everything held about you as one JSON document (also GET /me/export)"
    )
    async def export_data(self, info: Info) -> JSON:
        ctx = info.context
        document = await export_data(ctx.session, ctx.principal, ctx.hmac_key)
        return cast(JSON, document)


def require_issuer(issuer: Issuer | None) -> Issuer:
    if issuer is None:  # pragma: no cover - the app always sets it
        raise RuntimeError("no credential issuer in this context")
    return issuer


@strawberry.type
class CitizenQueries:
    @strawberry.field(description="The signed-in citizen")
    def me(self, info: Info) -> Me:
        if not info.context.principal.is_citizen:
            raise NotAuthorized("only a citizen has a 'me'")
        return Me()
