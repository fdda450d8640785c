"""Passport queries: a reader's read (legal basis or consent), of one or many citizens, and
a share link's."""

from __future__ import annotations

from typing import cast

import strawberry

from service.errors import DomainError, ValidationFailed
from service.passports import service as passports
from service.schema.context import Context, Info
from service.schema.errors import error_result
from service.schema.inputs import plain
from service.schema.passports.compiled import Selection, answer, compiled
from service.schema.passports.types import (
    CitizenRef,
    PassportFilter,
    PassportResult,
    passport_type,
)
from service.validation import validate


def passport_filter(flt: PassportFilter | None) -> passports.PassportFilter:
    return validate(passports.PassportFilter, plain(flt) if flt else {}, prefix="filter")


async def read_passport(
    ctx: Context,
    citizen: CitizenRef,
    purpose: str | None = None,
    legal_basis: str | None = None,
    filter: PassportFilter | None = None,
    *,
    render: Selection | None,
    operation: str = "passport",
) -> passports.Passport:
    """A reader's read of one passport, for ``passport``'s resolver, a prepared read
    (service/schema/prepared.py) and the reads that compare a passport (``operation``, as the
    access log names it): refusals raise, each caller answers them its own way. After a
    prepared read that left the answer to the resolver, the resolver answers that read's
    outcome."""
    outcome, ctx.passport_read = ctx.passport_read, None
    if isinstance(outcome, Exception):
        raise outcome
    if isinstance(outcome, passports.Passport):
        return outcome
    return await passports.read_passport(
        ctx.session,
        ctx.principal,
        ctx.hmac_key,
        citizen=plain(citizen),
        purpose=purpose,
        legal_basis=legal_basis,
        flt=passport_filter(filter),
        legal_basis_kinds=ctx.settings.legal_basis_organisation_kinds,
        operation=operation,
        render=render,
    )


def _refused(exc: DomainError) -> PassportResult:
    return cast(PassportResult, error_result(passports.as_refusal(exc)))


@strawberry.type
class PassportQueries:
    @strawberry.field(
        description="A citizen's passport. Under a legal basis, name it and state the purpose of "
        "the read; without one, the read relies on the citizen's active grants to your "
        "organisation and shows only what they cover. Every read is shown to the citizen; the "
        "purpose is kept in their access log (beyond an erasure for legal-basis reads), so say "
        "why you read, never who the person is."
    )
    async def passport(
        self,
        info: Info,
        citizen: CitizenRef,
        purpose: str | None = None,
        legal_basis: str | None = None,
        filter: PassportFilter | None = None,
    ) -> PassportResult:
        try:
            view = await read_passport(
                info.context, citizen, purpose, legal_basis, filter, render=compiled(info)
            )
        except DomainError as exc:
            return _refused(exc)
        return cast(PassportResult, answer(view, passport_type))

    @strawberry.field(
        description=f"Up to {passports.MAX_PASSPORTS} citizens' passports in one read, one "
        "result per citizen in the order asked, each exactly as `passport` answers it for that "
        "citizen (a citizen named twice is answered at both positions and recorded once). Too "
        "many citizens, or a bad filter, purpose or legal basis, answer a single "
        "ValidationFailed for the whole field."
    )
    async def passports(
        self,
        info: Info,
        citizens: list[CitizenRef],
        purpose: str | None = None,
        legal_basis: str | None = None,
        filter: PassportFilter | None = None,
    ) -> list[PassportResult]:
        ctx = info.context
        try:
            views = await passports.read_passports(
                ctx.session,
                ctx.principal,
                ctx.hmac_key,
                citizens=[plain(citizen) for citizen in citizens],
                purpose=purpose,
                legal_basis=legal_basis,
                flt=passport_filter(filter),
                legal_basis_kinds=ctx.settings.legal_basis_organisation_kinds,
                render=compiled(info),
            )
        except ValidationFailed as exc:
            return [_refused(exc)]
        except DomainError as exc:  # a refusal of all: each citizen's answer, as one read's
            return [_refused(exc) for _ in citizens]
        return [
            _refused(view) if isinstance(view, DomainError) else answer(view, passport_type)
            for view in views
        ]

    @strawberry.field(
        description="The passport a share link shows (authenticate with the link's token)"
    )
    async def shared_passport(
        self, info: Info, filter: PassportFilter | None = None
    ) -> PassportResult:
        ctx = info.context
        try:
            view = await passports.read_shared_passport(
                ctx.session, ctx.principal, passport_filter(filter), render=compiled(info)
            )
        except DomainError as exc:
            return _refused(exc)
        return cast(PassportResult, answer(view, passport_type))
