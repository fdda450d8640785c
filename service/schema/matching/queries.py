"""The competence check and occupation matches: reads of the passport, authorized and logged
exactly as `passport` is."""

from __future__ import annotations

from typing import cast

import strawberry

from service.errors import DomainError, NotFound, ValidationFailed
from service.matching import service as matching
from service.passports import service as passports
from service.schema.common import Language, clamp_first
from service.schema.context import Info
from service.schema.errors import error_result
from service.schema.inputs import plain
from service.schema.matching.types import (
    CompetenceCheckResult,
    OccupationMatches,
    OccupationMatchesResult,
    check_type,
    match_type,
)
from service.schema.passports.types import CitizenRef
from service.taxonomy.search import occupation_by_uri

MAX_MATCHES = 20


async def _read(
    info: Info,
    citizen: CitizenRef,
    purpose: str | None,
    legal_basis: str | None,
    operation: str,
) -> passports.Passport:
    ctx = info.context
    return await passports.read_passport(
        ctx.session,
        ctx.principal,
        ctx.hmac_key,
        citizen=plain(citizen),
        purpose=purpose,
        legal_basis=legal_basis,
        flt=passports.PassportFilter(),
        legal_basis_kinds=ctx.settings.legal_basis_organisation_kinds,
        operation=operation,
    )


@strawberry.type
class MatchingQueries:
    @strawberry.field(
        description="The passport against one ESCO occupation: every essential and optional "
        "competence held, stale, partly held (a narrower one), self-declared or missing, the "
        "coverage, and a learning plan for the essential gaps. A read of the passport: "
        "authorized and logged as `passport` is (citizens name themselves)."
    )
    async def competence_check(
        self,
        info: Info,
        citizen: CitizenRef,
        occupation_uri: str,
        purpose: str | None = None,
        legal_basis: str | None = None,
        stale_after_years: int | None = None,
        lang: Language = Language.NL,
    ) -> CompetenceCheckResult:
        ctx = info.context
        years = ctx.settings.stale_after_years if stale_after_years is None else stale_after_years
        if not 1 <= years <= 50:
            failed = ValidationFailed.one("staleAfterYears", "must be between 1 and 50")
            return cast(CompetenceCheckResult, error_result(failed))
        occupation = await occupation_by_uri(ctx.session, occupation_uri)
        if occupation is None:  # before the read, so a wrong URI records nothing
            return cast(CompetenceCheckResult, error_result(NotFound("no such occupation")))
        try:
            view = await _read(info, citizen, purpose, legal_basis, "competence_check")
        except DomainError as exc:
            return cast(CompetenceCheckResult, error_result(passports.as_refusal(exc)))
        check = await matching.competence_check(
            ctx.session, view, occupation, stale_after_years=years, language=lang.value
        )
        return check_type(check, lang)

    @strawberry.field(
        description="ESCO occupations ranked by the share of their essential competences the "
        "passport holds, verified (optional ones break ties), each with what matches and what "
        "is missing. A read of the passport, authorized and logged as `passport` is."
    )
    async def occupation_matches(
        self,
        info: Info,
        citizen: CitizenRef,
        first: int = 10,
        purpose: str | None = None,
        legal_basis: str | None = None,
    ) -> OccupationMatchesResult:
        ctx = info.context
        try:
            size = clamp_first(first, MAX_MATCHES)
            view = await _read(info, citizen, purpose, legal_basis, "occupation_matches")
        except DomainError as exc:
            return cast(OccupationMatchesResult, error_result(passports.as_refusal(exc)))
        found = await matching.occupation_matches(ctx.session, view, first=size)
        return OccupationMatches(matches=[match_type(m) for m in found])
