"""Passport queries: a reader's read under a legal basis, and the citizen's own."""

from __future__ import annotations

from typing import cast

import strawberry

from service.errors import DomainError, NotAuthorized, NotFound, ValidationFailed
from service.passports import service as passports
from service.schema.context import Info
from service.schema.errors import error_result
from service.schema.inputs import plain
from service.schema.passports.types import (
    CitizenRef,
    Passport,
    PassportFilter,
    PassportResult,
    passport_type,
)
from service.validation import validate


def _filter(flt: PassportFilter | None) -> passports.PassportFilter:
    return validate(passports.PassportFilter, plain(flt) if flt else {}, prefix="filter")


@strawberry.type
class Me:
    @strawberry.field(description="Your own passport")
    async def passport(self, info: Info, filter: PassportFilter | None = None) -> Passport:
        ctx = info.context
        view = await passports.read_own_passport(
            ctx.session, ctx.principal, ctx.hmac_key, _filter(filter)
        )
        return passport_type(view)


@strawberry.type
class PassportQueries:
    @strawberry.field(description="The signed-in citizen")
    def me(self, info: Info) -> Me:
        if not info.context.principal.is_citizen:
            raise NotAuthorized("only a citizen has a 'me'")
        return Me()

    @strawberry.field(
        description="A citizen's passport. Readers state the legal basis and purpose of every "
        "read; both are recorded and shown to the citizen."
    )
    async def passport(
        self,
        info: Info,
        citizen: CitizenRef,
        purpose: str | None = None,
        legal_basis: str | None = None,
        filter: PassportFilter | None = None,
    ) -> PassportResult:
        ctx = info.context
        try:
            view = await passports.read_passport(
                ctx.session,
                ctx.principal,
                ctx.hmac_key,
                citizen=plain(citizen),
                purpose=purpose,
                legal_basis=legal_basis,
                flt=_filter(filter),
            )
        except DomainError as exc:
            # Anything but bad input reads as "not found": existence itself is personal data.
            shown = exc if isinstance(exc, ValidationFailed) else NotFound(passports.NOT_FOUND)
            return cast(PassportResult, error_result(shown))
        return passport_type(view)
