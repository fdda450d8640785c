"""Team checks and profiles (the organisation's reading client), and joining (the citizen)."""

from __future__ import annotations

import strawberry

from service.errors import DomainError
from service.schema.consent.types import access_granted
from service.schema.context import Info
from service.schema.errors import error_result
from service.schema.ids import parse_uuid
from service.schema.inputs import plain
from service.schema.teams.types import (
    CloseTeamCheckResult,
    CompetenceProfileInput,
    CompetenceProfileSaved,
    CreateTeamCheckInput,
    CreateTeamCheckResult,
    JoinTeamCheckInput,
    JoinTeamCheckResult,
    SaveProfileResult,
    TeamCheckClosed,
    TeamCheckCreated,
    profile_type,
    team_check_type,
)
from service.teams import profiles
from service.teams import service as teams


@strawberry.type
class TeamMutations:
    @strawberry.mutation(
        description="Invite your staff to a team competence check (a reading client): hand the "
        "id to them; each decides with joinTeamCheck"
    )
    async def create_team_check(
        self, info: Info, input: CreateTeamCheckInput
    ) -> CreateTeamCheckResult:
        ctx = info.context
        try:
            view, created = await ctx.atomically(
                lambda: teams.create_team_check(ctx.session, ctx.principal, plain(input))
            )
        except DomainError as exc:
            return error_result(exc)
        return TeamCheckCreated(team_check=team_check_type(view, for_owner=True), created=created)

    @strawberry.mutation(description="Close a team check: no new consents, and checks leave it out")
    async def close_team_check(self, info: Info, id: strawberry.ID) -> CloseTeamCheckResult:
        ctx = info.context
        try:
            team_check_id = parse_uuid(id, "team check")
            view = await ctx.atomically(
                lambda: teams.close_team_check(ctx.session, ctx.principal, team_check_id)
            )
        except DomainError as exc:
            return error_result(exc)
        return TeamCheckClosed(team_check=team_check_type(view, for_owner=True))

    @strawberry.mutation(
        description="Take part in your employer's team check, by name or counted only, until "
        "an expiry of at most a year; withdraw with revokeAccess. The grant is read by the team "
        "check alone, never to read your passport."
    )
    async def join_team_check(self, info: Info, input: JoinTeamCheckInput) -> JoinTeamCheckResult:
        ctx = info.context
        try:
            outcome = await ctx.atomically(
                lambda: teams.join_team_check(
                    ctx.session, ctx.principal, ctx.hmac_key, plain(input)
                )
            )
        except DomainError as exc:
            return error_result(exc)
        return access_granted(outcome, ctx.settings.share_link_base_url)

    @strawberry.mutation(
        description="Create or replace (by externalRef) one of your organisation's competence "
        "profiles"
    )
    async def save_competence_profile(
        self, info: Info, input: CompetenceProfileInput
    ) -> SaveProfileResult:
        ctx = info.context
        try:
            view = await ctx.atomically(
                lambda: profiles.save_profile(ctx.session, ctx.principal, plain(input))
            )
        except DomainError as exc:
            return error_result(exc)
        return CompetenceProfileSaved(profile=profile_type(view))

    @strawberry.mutation(description="Archive a competence profile; saving it again restores it")
    async def archive_competence_profile(self, info: Info, id: strawberry.ID) -> SaveProfileResult:
        ctx = info.context
        try:
            profile_id = parse_uuid(id, "competence profile")
            view = await ctx.atomically(
                lambda: profiles.archive_profile(ctx.session, ctx.principal, profile_id)
            )
        except DomainError as exc:
            return error_result(exc)
        return CompetenceProfileSaved(profile=profile_type(view))
