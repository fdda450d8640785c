"""The team competence check, and what an organisation and its staff see of team checks."""

from __future__ import annotations

from typing import Annotated, cast

import strawberry

from service.errors import DomainError, ValidationFailed
from service.schema.common import Language
from service.schema.context import Info
from service.schema.errors import error_result
from service.schema.ids import parse_uuid
from service.schema.inputs import plain
from service.schema.passports.types import CitizenRef
from service.schema.teams.types import (
    CompetenceProfile,
    TeamCheck,
    TeamCheckInvitationResult,
    TeamCompetenceCheckResult,
    check_type,
    profile_type,
    team_check_type,
)
from service.teams import check as checks
from service.teams import profiles
from service.teams import service as teams


@strawberry.type
class TeamQueries:
    @strawberry.field(
        description="Your consenting staff against up to five ESCO occupations or one of your "
        "competence profiles (a reading client). Per competence how many hold it, the largest "
        "gaps, the named people's own results and a deployability plan. A number resting on "
        "fewer than five people shows as fewer than five. Each person's part is in their "
        "access log."
    )
    async def team_competence_check(
        self,
        info: Info,
        occupation_uris: Annotated[
            list[str] | None,
            strawberry.argument(description="1 to 5 ESCO occupations; or give profileId"),
        ] = None,
        profile_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="One of your organisation's competence profiles"),
        ] = None,
        team_checks: Annotated[
            list[strawberry.ID] | None,
            strawberry.argument(
                description="The staff filter: which of your open team checks (all if omitted)"
            ),
        ] = None,
        identify: Annotated[
            list[CitizenRef] | None,
            strawberry.argument(
                description="Up to 1,000 people (national number or passport id) to find "
                "among the named ones: listed in `identified` with their position here"
            ),
        ] = None,
        stale_after_years: Annotated[
            int | None,
            strawberry.argument(description="Verified but not used for longer: STALE"),
        ] = None,
        lang: Language = Language.NL,
        plan_size: Annotated[
            int, strawberry.argument(description="Steps in the deployability plan, 1 to 10")
        ] = 5,
    ) -> TeamCompetenceCheckResult:
        ctx = info.context
        years = ctx.settings.stale_after_years if stale_after_years is None else stale_after_years
        try:
            if not 1 <= years <= 50:
                raise ValidationFailed.one("staleAfterYears", "must be between 1 and 50")
            team_ids = (
                None if team_checks is None else [parse_uuid(t, "team check") for t in team_checks]
            )
            view = await checks.team_competence_check(
                ctx.session,
                ctx.principal,
                ctx.hmac_key,
                occupation_uris=occupation_uris,
                profile_id=parse_uuid(profile_id, "competence profile") if profile_id else None,
                team_check_ids=team_ids,
                identify=[plain(c) for c in identify or ()],
                stale_after_years=years,
                language=lang.value,
                plan_size=plan_size,
            )
        except DomainError as exc:
            if not isinstance(exc, ValidationFailed):  # a bad id: no such team check or profile
                exc = (
                    exc
                    if exc.code.value == "NOT_AUTHORIZED"
                    else ValidationFailed.one("teamChecks", exc.message, "unknown")
                )
            return cast(TeamCompetenceCheckResult, error_result(exc))
        return check_type(view)

    @strawberry.field(description="Your organisation's team checks, newest first")
    async def team_checks(self, info: Info) -> list[TeamCheck]:
        ctx = info.context
        found = await teams.team_checks_of(ctx.session, ctx.principal)
        return [team_check_type(view, for_owner=True) for view in found]

    @strawberry.field(
        description="A team check you were invited to (citizens): who asks, and whether it is open"
    )
    async def team_check_invitation(
        self, info: Info, id: strawberry.ID
    ) -> TeamCheckInvitationResult:
        ctx = info.context
        try:
            view = await teams.invitation(ctx.session, ctx.principal, parse_uuid(id, "team check"))
        except DomainError as exc:
            return cast(TeamCheckInvitationResult, error_result(exc))
        return team_check_type(view, for_owner=False)

    @strawberry.field(description="Your organisation's competence profiles in use, by name")
    async def competence_profiles(self, info: Info) -> list[CompetenceProfile]:
        ctx = info.context
        return [
            profile_type(view) for view in await profiles.profiles_of(ctx.session, ctx.principal)
        ]
