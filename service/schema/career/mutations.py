"""The citizen's wants, goals and work history, and an employer's record of work: parse,
call one domain function, shape the result."""

from __future__ import annotations

import strawberry

from service.career import paths as career_paths
from service.career import profile
from service.errors import DomainError
from service.schema.career.types import (
    AcceptSuggestedCompetencesInput,
    AcceptSuggestionsResult,
    CareerGoalResult,
    CareerGoalSet,
    CompetenceWantSet,
    RecordEmploymentInput,
    RecordWorkExperienceInput,
    RecordWorkResult,
    SetCareerGoalInput,
    SetCompetenceWantInput,
    SetCompetenceWantResult,
    SuggestionsAccepted,
    WithdrawWorkResult,
    WorkExperienceRecorded,
    WorkExperienceWithdrawn,
    goal_type,
    work_type,
)
from service.schema.citizens.types import SelfDeclared
from service.schema.context import Info
from service.schema.enums import Want
from service.schema.errors import error_result
from service.schema.ids import parse_uuid
from service.schema.inputs import plain
from service.schema.passports.types import self_declared_type
from service.schema.taxonomy.types import competence_type


@strawberry.type
class CareerMutations:
    @strawberry.mutation(
        description="Say what you want of a competence (in your passport or any other): use "
        "it more, develop it, or rather not use it any more; null clears it. Private unless a "
        "grant includes your wants."
    )
    async def set_competence_want(
        self, info: Info, input: SetCompetenceWantInput
    ) -> SetCompetenceWantResult:
        ctx = info.context
        try:
            outcome = await ctx.atomically(
                lambda: profile.set_want(ctx.session, ctx.principal, ctx.hmac_key, plain(input))
            )
        except DomainError as exc:
            return error_result(exc)
        return CompetenceWantSet(
            competence=competence_type(outcome.competence),
            want=Want(outcome.want.value) if outcome.want else None,
            changed=outcome.changed,
        )

    @strawberry.mutation(description="Name an occupation you aim for, by a year if you like")
    async def set_career_goal(self, info: Info, input: SetCareerGoalInput) -> CareerGoalResult:
        ctx = info.context
        try:
            outcome = await ctx.atomically(
                lambda: profile.set_goal(ctx.session, ctx.principal, ctx.hmac_key, plain(input))
            )
        except DomainError as exc:
            return error_result(exc)
        return CareerGoalSet(goal=goal_type(outcome.goal), changed=outcome.changed)

    @strawberry.mutation(description="Drop a career goal")
    async def drop_career_goal(self, info: Info, occupation_uri: str) -> CareerGoalResult:
        ctx = info.context
        try:
            outcome = await ctx.atomically(
                lambda: profile.drop_goal(ctx.session, ctx.principal, ctx.hmac_key, occupation_uri)
            )
        except DomainError as exc:
            return error_result(exc)
        return CareerGoalSet(goal=goal_type(outcome.goal), changed=outcome.changed)

    @strawberry.mutation(description="Add an occupation you held to your work history")
    async def record_work_experience(
        self, info: Info, input: RecordWorkExperienceInput
    ) -> RecordWorkResult:
        ctx = info.context
        try:
            outcome = await ctx.atomically(
                lambda: profile.record_work(ctx.session, ctx.principal, ctx.hmac_key, plain(input))
            )
        except DomainError as exc:
            return error_result(exc)
        return WorkExperienceRecorded(
            experience=work_type(outcome.experience), created=outcome.created
        )

    @strawberry.mutation(description="Take back an entry of your own work history")
    async def withdraw_work_experience(self, info: Info, id: strawberry.ID) -> WithdrawWorkResult:
        ctx = info.context
        try:
            experience_id = parse_uuid(id, "work experience")
            view = await ctx.atomically(
                lambda: profile.withdraw_work(
                    ctx.session, ctx.principal, ctx.hmac_key, experience_id
                )
            )
        except DomainError as exc:
            return error_result(exc)
        return WorkExperienceWithdrawn(experience=work_type(view))

    @strawberry.mutation(
        description="As an employer (or volunteer organisation, or public employer): record "
        "that the citizen held an occupation with you, in one call; a retry with the same "
        "externalRef returns the same record"
    )
    async def record_employment(self, info: Info, input: RecordEmploymentInput) -> RecordWorkResult:
        ctx = info.context
        try:
            outcome = await ctx.atomically(
                lambda: profile.record_employment(
                    ctx.session, ctx.principal, ctx.hmac_key, plain(input)
                )
            )
        except DomainError as exc:
            return error_result(exc)
        return WorkExperienceRecorded(
            experience=work_type(outcome.experience), created=outcome.created
        )

    @strawberry.mutation(description="Withdraw a work record your organisation made")
    async def withdraw_employment(self, info: Info, id: strawberry.ID) -> WithdrawWorkResult:
        ctx = info.context
        try:
            experience_id = parse_uuid(id, "work record")
            view = await ctx.atomically(
                lambda: profile.withdraw_employment(ctx.session, ctx.principal, experience_id)
            )
        except DomainError as exc:
            return error_result(exc)
        return WorkExperienceWithdrawn(experience=work_type(view))

    @strawberry.mutation(
        description="Declare competences your work history suggests as your own, all in one "
        "call: self-declared, never verified, each with the occupation it came from"
    )
    async def accept_suggested_competences(
        self, info: Info, input: AcceptSuggestedCompetencesInput
    ) -> AcceptSuggestionsResult:
        ctx = info.context
        try:
            outcomes = await ctx.atomically(
                lambda: career_paths.accept_suggestions(
                    ctx.session, ctx.principal, ctx.hmac_key, plain(input)
                )
            )
        except DomainError as exc:
            return error_result(exc)
        return SuggestionsAccepted(
            declared=[
                SelfDeclared(competence=self_declared_type(o.claim), created=o.created)
                for o in outcomes
            ]
        )
