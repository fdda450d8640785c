"""What the citizen wants, their work history, career paths and one plan: every one a read of
the passport, authorized and logged as `passport` is (citizens name themselves); a reader sees
wants and work history only under a grant that includes them."""

from __future__ import annotations

from typing import Annotated, cast

import strawberry

from service.career import paths as career_paths
from service.career.plan import career_plan
from service.career.profile import CareerView, career_of
from service.career.signals import parse_region
from service.errors import DomainError, NotFound, ValidationFailed
from service.matching.service import Holdings
from service.passports import service as passports
from service.schema.career.types import (
    CareerPathsResult,
    CareerPlanResult,
    CareerProfileResult,
    paths_type,
    plan_type,
    profile_type,
)
from service.schema.common import Language, clamp_first
from service.schema.context import Info
from service.schema.errors import error_result
from service.schema.matching.queries import REGION, read_for, stale_years
from service.schema.passports.queries import passport_filter
from service.schema.passports.types import CitizenRef
from service.taxonomy.search import occupation_by_uri


async def _profile(info: Info, view: passports.Passport) -> CareerProfileResult:
    session = info.context.session
    career: CareerView = await career_of(session, view)
    found = (
        await career_paths.suggestions(session, career.history, Holdings.of(view))
        if career.visibility.history
        else []
    )
    return profile_type(career, found)


@strawberry.type
class CareerQueries:
    @strawberry.field(
        description="What the citizen wants (stances on competences, career goals) and the work "
        "they did, with the competences it suggests: all of it for the citizen, for a reader "
        "only what its grants include (`includeWants`, `includeWorkHistory`), nothing of it "
        "under a legal basis. A read of the passport, authorized and logged as `passport` is."
    )
    async def career_profile(
        self,
        info: Info,
        citizen: CitizenRef,
        purpose: str | None = None,
        legal_basis: str | None = None,
    ) -> CareerProfileResult:
        try:
            view = await read_for(info, citizen, purpose, legal_basis, "career_profile")
        except DomainError as exc:
            return cast(CareerProfileResult, error_result(passports.as_refusal(exc)))
        return await _profile(info, view)

    @strawberry.field(
        description="`careerProfile` for the holder of a share link, as far as its grant "
        "includes wants and work history"
    )
    async def shared_career_profile(self, info: Info) -> CareerProfileResult:
        ctx = info.context
        try:
            view = await passports.read_shared_passport(
                ctx.session, ctx.principal, passport_filter(None), operation="career_profile"
            )
        except DomainError as exc:
            return cast(CareerProfileResult, error_result(passports.as_refusal(exc)))
        return await _profile(info, view)

    @strawberry.field(
        description="Occupations the work history leads to: those sharing essential "
        "competences with the occupations held, ranked by the weighted share of their essential "
        "competences already there (verified 1, self-declared 1/2, suggested 1/4), each with "
        "what is missing, a learning plan and warning lights. A read of the passport, "
        "authorized and logged as `passport` is; a reader needs a grant including the work "
        "history."
    )
    async def career_paths(
        self,
        info: Info,
        citizen: CitizenRef,
        first: int = 10,
        purpose: str | None = None,
        legal_basis: str | None = None,
        stale_after_years: int | None = None,
        lang: Language = Language.NL,
        region: Annotated[str | None, strawberry.argument(description=REGION)] = None,
    ) -> CareerPathsResult:
        ctx = info.context
        try:
            size = clamp_first(first, career_paths.MAX_PATHS)
            years = stale_years(info, stale_after_years)
            nuts = parse_region(region)
            view = await read_for(info, citizen, purpose, legal_basis, "career_paths")
        except DomainError as exc:
            return cast(CareerPathsResult, error_result(passports.as_refusal(exc)))
        career = await career_of(ctx.session, view)
        found = await career_paths.career_paths(
            ctx.session,
            view,
            career,
            first=size,
            region=nuts,
            language=lang.value,
            stale_after_years=years,
        )
        return paths_type(found, lang)

    @strawberry.field(
        description="One ordered plan towards a goal occupation (`goalUri`, or the citizen's "
        "nearest career goal): the gaps, the warning lights, what the citizen wants and the "
        "learning offers, each step saying why it is there. A read of the passport, authorized "
        "and logged as `passport` is."
    )
    async def career_plan(
        self,
        info: Info,
        citizen: CitizenRef,
        goal_uri: str | None = None,
        purpose: str | None = None,
        legal_basis: str | None = None,
        stale_after_years: int | None = None,
        lang: Language = Language.NL,
        region: Annotated[str | None, strawberry.argument(description=REGION)] = None,
    ) -> CareerPlanResult:
        ctx = info.context
        try:
            years = stale_years(info, stale_after_years)
            nuts = parse_region(region)
        except ValidationFailed as failed:
            return cast(CareerPlanResult, error_result(failed))
        goal = None
        if goal_uri is not None:
            goal = await occupation_by_uri(ctx.session, goal_uri)
            if goal is None:  # before the read, so a wrong URI records nothing
                return cast(CareerPlanResult, error_result(NotFound("no such occupation")))
        try:
            view = await read_for(info, citizen, purpose, legal_basis, "career_plan")
        except DomainError as exc:
            return cast(CareerPlanResult, error_result(passports.as_refusal(exc)))
        career = await career_of(ctx.session, view)
        try:
            plan = await career_plan(
                ctx.session,
                view,
                career,
                goal,
                stale_after_years=years,
                language=lang.value,
                region=nuts,
            )
        except ValidationFailed as failed:  # no goal named, none recorded
            return cast(CareerPlanResult, error_result(failed))
        return plan_type(plan, lang)
