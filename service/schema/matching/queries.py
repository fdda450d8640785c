"""The competence check and occupation matches: reads of the passport, authorized and logged
exactly as `passport` is."""

from __future__ import annotations

from typing import Annotated, cast

import strawberry

from service.career.check import career_check, career_matches
from service.career.profile import career_of
from service.career.signals import parse_region
from service.errors import DomainError, NotFound, ValidationFailed
from service.passports import service as passports
from service.schema.career.types import career_check_type, career_matches_type
from service.schema.common import Language, clamp_first
from service.schema.context import Info
from service.schema.errors import error_result
from service.schema.matching.types import CompetenceCheckResult, OccupationMatchesResult
from service.schema.passports.queries import read_passport
from service.schema.passports.types import CitizenRef
from service.taxonomy.search import occupation_by_uri

MAX_MATCHES = 20
REGION = "NUTS code (BE, BE2, BE21 ...): labour-market signals for it and the regions around it"


def stale_years(info: Info, asked: int | None) -> int:
    years = info.context.settings.stale_after_years if asked is None else asked
    if not 1 <= years <= 50:
        raise ValidationFailed.one("staleAfterYears", "must be between 1 and 50")
    return years


async def read_for(
    info: Info,
    citizen: CitizenRef,
    purpose: str | None,
    legal_basis: str | None,
    operation: str,
) -> passports.Passport:
    return await read_passport(
        info.context, citizen, purpose, legal_basis, render=None, operation=operation
    )


@strawberry.type
class MatchingQueries:
    @strawberry.field(
        description="The passport against one ESCO occupation: every essential and optional "
        "competence held, stale, partly held (a narrower one), self-declared or missing, the "
        "coverage, and a learning plan for the essential gaps; with what the citizen wants of "
        "each (if you may see it), the occupation's standing with their wants, and warning "
        "lights. A read of the passport: authorized and logged as `passport` is (citizens name "
        "themselves)."
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
        region: Annotated[str | None, strawberry.argument(description=REGION)] = None,
    ) -> CompetenceCheckResult:
        ctx = info.context
        try:
            years = stale_years(info, stale_after_years)
            nuts = parse_region(region)
        except ValidationFailed as failed:
            return cast(CompetenceCheckResult, error_result(failed))
        occupation = await occupation_by_uri(ctx.session, occupation_uri)
        if occupation is None:  # before the read, so a wrong URI records nothing
            return cast(CompetenceCheckResult, error_result(NotFound("no such occupation")))
        try:
            view = await read_for(info, citizen, purpose, legal_basis, "competence_check")
        except DomainError as exc:
            return cast(CompetenceCheckResult, error_result(passports.as_refusal(exc)))
        career = await career_of(ctx.session, view, history=False)
        checked = await career_check(
            ctx.session,
            view,
            career,
            occupation,
            stale_after_years=years,
            language=lang.value,
            region=nuts,
        )
        return career_check_type(checked, lang)

    @strawberry.field(
        description="ESCO occupations ranked by fit (the share of their essential competences "
        "the passport holds, verified) and by what the citizen wants, if you may see it (see "
        "`Standing`; optional competences break ties), each with its rank's reasons, what "
        "matches and what is missing, and warning lights. A read of the passport, authorized "
        "and logged as `passport` is."
    )
    async def occupation_matches(
        self,
        info: Info,
        citizen: CitizenRef,
        first: int = 10,
        purpose: str | None = None,
        legal_basis: str | None = None,
        region: Annotated[str | None, strawberry.argument(description=REGION)] = None,
    ) -> OccupationMatchesResult:
        ctx = info.context
        try:
            size = clamp_first(first, MAX_MATCHES)
            nuts = parse_region(region)
            view = await read_for(info, citizen, purpose, legal_basis, "occupation_matches")
        except DomainError as exc:
            return cast(OccupationMatchesResult, error_result(passports.as_refusal(exc)))
        career = await career_of(ctx.session, view, history=False)
        found = await career_matches(
            ctx.session,
            view,
            career,
            first=size,
            region=nuts,
            stale_after_years=ctx.settings.stale_after_years,
        )
        return career_matches_type(found)
