"""Team checks, competence profiles and the team competence check as GraphQL types."""

from __future__ import annotations

import bisect
import datetime as dt
from typing import Annotated

import strawberry

from service.models.enums import TeamRequirementStatus as DomainStatus
from service.schema.claims.inputs import ProficiencyInput
from service.schema.claims.types import Proficiency
from service.schema.common import PageInfo, by_value, clamp_first
from service.schema.consent.types import AccessGranted, OrganisationRef
from service.schema.context import Info
from service.schema.enums import (
    ProficiencyScale,
    TeamCheckStatus,
    TeamDisclosure,
    TeamRequirementStatus,
)
from service.schema.errors import ErrorResult, NotAuthorizedType, NotFoundType, ValidationFailedType
from service.schema.learning.types import LearningOpportunity, opportunity_type
from service.schema.matching.types import OccupationSummary
from service.schema.taxonomy.types import Competence, competence_type
from service.teams import check as checks
from service.teams.profiles import ProfileView
from service.teams.service import TeamCheckView


@strawberry.type(description="An organisation's invitation to its staff to a team competence check")
class TeamCheck:
    id: strawberry.ID = strawberry.field(
        description="Hand it to your staff: each decides whether to join (joinTeamCheck)"
    )
    name: str
    organisation: OrganisationRef
    status: TeamCheckStatus
    created_at: dt.datetime
    closed_at: dt.datetime | None
    external_ref: str | None = strawberry.field(
        description="The organisation's own reference; shown to the organisation only"
    )
    named: int | None = strawberry.field(
        description="People taking part by name now; to the organisation only"
    )
    counted: int | None = strawberry.field(
        description="People taking part counted only now; to the organisation only"
    )


_team_status = by_value(TeamCheckStatus)


def team_check_type(view: TeamCheckView, *, for_owner: bool) -> TeamCheck:
    return TeamCheck(
        id=strawberry.ID(str(view.id)),
        name=view.name,
        organisation=OrganisationRef.of(view.organisation),
        status=_team_status(view.status.value),
        created_at=view.created_at,
        closed_at=view.closed_at,
        external_ref=view.external_ref if for_owner else None,
        named=view.named if for_owner else None,
        counted=view.counted if for_owner else None,
    )


@strawberry.input
class CreateTeamCheckInput:
    name: str = strawberry.field(description="What staff see, e.g. 'Maintenance team, Ghent'")
    external_ref: str = strawberry.field(
        description="Your own unique reference: the same again returns the same team check"
    )


@strawberry.input
class JoinTeamCheckInput:
    team_check_id: strawberry.ID
    disclosure: TeamDisclosure = strawberry.field(
        description="NAMED: the organisation sees your own result. COUNTED: you are only part "
        "of the team's numbers, never shown on your own"
    )
    expires_at: dt.datetime = strawberry.field(description="At most one year from now")
    competence_uris: list[str] | None = strawberry.field(
        default=None, description="Share only these ESCO competences; omit for the whole passport"
    )
    idempotency_key: str


@strawberry.type
class TeamCheckCreated:
    team_check: TeamCheck
    created: bool = strawberry.field(description="False when the reference was used before")


@strawberry.type
class TeamCheckClosed:
    team_check: TeamCheck


@strawberry.input
class ProfileCompetenceInput:
    competence_uri: str
    essential: bool = True
    minimum_level: ProficiencyInput | None = strawberry.field(
        default=None, description="Held below it counts as BELOW_LEVEL; omit for any level"
    )


@strawberry.input
class CompetenceProfileInput:
    external_ref: str = strawberry.field(
        description="Your own reference: saving it again replaces the profile"
    )
    name: str
    competences: list[ProfileCompetenceInput]


@strawberry.type
class ProfileCompetence:
    competence: Competence
    essential: bool
    minimum_level: Proficiency | None


@strawberry.type(description="An organisation's own set of ESCO competences to check staff against")
class CompetenceProfile:
    id: strawberry.ID
    external_ref: str
    name: str
    competences: list[ProfileCompetence]
    created_at: dt.datetime
    updated_at: dt.datetime
    archived_at: dt.datetime | None


_scale = by_value(ProficiencyScale)


def _level(scale: str | None, level: str | None, rank: int | None) -> Proficiency | None:
    if scale is None or level is None:
        return None
    return Proficiency(scale=_scale(scale), level=level, rank=rank or 0)


def profile_type(view: ProfileView) -> CompetenceProfile:
    return CompetenceProfile(
        id=strawberry.ID(str(view.id)),
        external_ref=view.external_ref,
        name=view.name,
        competences=[
            ProfileCompetence(
                competence=competence_type(r.competence),
                essential=r.essential,
                minimum_level=_level(r.minimum_scale, r.minimum_level, r.minimum_rank),
            )
            for r in view.requirements
        ],
        created_at=view.created_at,
        updated_at=view.updated_at,
        archived_at=view.archived_at,
    )


@strawberry.type
class CompetenceProfileSaved:
    profile: CompetenceProfile


@strawberry.type(
    description="How many people. Withheld (count null, fewerThanFive true) when it rests on "
    "fewer than five people: the whole number is 1 to 4, or the counted-only people in it are "
    "(or in the whole check). atLeast is what may be said: the count, else the named people "
    "in it, whom you see anyway."
)
class TeamCount:
    count: int | None
    fewer_than_five: bool
    named: int = strawberry.field(description="Of them, people who take part by name")
    at_least: int


def count_type(view: checks.TeamCount) -> TeamCount:
    return TeamCount(
        count=view.count,
        fewer_than_five=view.fewer_than_five,
        named=view.named,
        at_least=view.at_least,
    )


@strawberry.type(description="One competence asked, and how the consenting staff stand")
class TeamCompetence:
    competence: Competence
    essential: bool
    minimum_level: Proficiency | None
    held: TeamCount = strawberry.field(description="Verified, current, at the level asked")
    stale: TeamCount = strawberry.field(description="Verified, but not used for long")
    below_level: TeamCount = strawberry.field(description="Verified below the level asked")
    self_declared: TeamCount = strawberry.field(description="Only the people themselves say so")
    not_shared: TeamCount = strawberry.field(description="Outside what people chose to share")
    missing: TeamCount
    gap: TeamCount = strawberry.field(description="Below the level, self-declared or missing")


def team_competence_type(view: checks.TeamCompetence) -> TeamCompetence:
    target = view.target
    counts = {status: count_type(count) for status, count in view.counts.items()}
    return TeamCompetence(
        competence=competence_type(target.competence),
        essential=target.essential,
        minimum_level=_level(target.minimum_scale, target.minimum_level, target.minimum_rank),
        held=counts[DomainStatus.HELD],
        stale=counts[DomainStatus.STALE],
        below_level=counts[DomainStatus.BELOW_LEVEL],
        self_declared=counts[DomainStatus.SELF_DECLARED],
        not_shared=counts[DomainStatus.NOT_SHARED],
        missing=counts[DomainStatus.MISSING],
        gap=count_type(view.gap),
    )


@strawberry.type(description="A person who takes part by name")
class TeamMemberRef:
    passport_id: strawberry.ID
    position: int | None = strawberry.field(
        description="Where you named them in `identify`, if you did"
    )


def member_ref_type(view: checks.MemberRef) -> TeamMemberRef:
    return TeamMemberRef(passport_id=strawberry.ID(str(view.citizen_id)), position=view.position)


@strawberry.type
class TeamMemberRequirement:
    competence: Competence
    essential: bool
    status: TeamRequirementStatus


_status = by_value(TeamRequirementStatus)


@strawberry.type(description="A named person's own result: what they allowed you to see")
class TeamMember:
    passport_id: strawberry.ID
    position: int | None = strawberry.field(
        description="Where you named them in `identify`, if you did"
    )
    team_checks: list[strawberry.ID]
    member: strawberry.Private[checks.Member]

    @strawberry.field
    def requirements(self) -> list[TeamMemberRequirement]:
        """Built when asked for only: a page of people has thousands."""
        return [
            TeamMemberRequirement(
                competence=competence_type(target.competence),
                essential=target.essential,
                status=_status(status.value),
            )
            for target, status in self.member.statuses
        ]

    @strawberry.field(
        description="Essential competences below the level, only self-declared or missing"
    )
    def gaps(self) -> list[Competence]:
        return [competence_type(target.competence) for target in self.member.gaps]


def member_type(view: checks.Member) -> TeamMember:
    return TeamMember(
        passport_id=strawberry.ID(str(view.ref.citizen_id)),
        position=view.ref.position,
        team_checks=[strawberry.ID(str(t)) for t in view.team_check_ids],
        member=view,
    )


@strawberry.type
class TeamMemberEdge:
    cursor: str
    node: TeamMember


@strawberry.type
class TeamMemberConnection:
    edges: list[TeamMemberEdge]
    page_info: PageInfo


@strawberry.type(description="A learning offer in the deployability plan, and whom it helps")
class TeamLearningStep:
    opportunity: LearningOpportunity
    closes: list[Competence] = strawberry.field(
        description="Essential gaps it teaches that no earlier step closes"
    )
    people_gaps: int = strawberry.field(
        description="The gaps it closes across the team, counted as far as the answer shows them"
    )
    named_helped: int = strawberry.field(description="How many named people have a gap it closes")
    helped: strawberry.Private[list[checks.MemberRef]]

    @strawberry.field(
        description="The named people with a gap it closes, by passport id (counted-only people "
        "are never listed)"
    )
    def helps(self, info: Info, first: int = 20, after: str | None = None) -> list[TeamMemberRef]:
        size = _page_size(info, first)
        start = bisect.bisect_right([str(r.citizen_id) for r in self.helped], after) if after else 0
        return [member_ref_type(ref) for ref in self.helped[start : start + size]]


@strawberry.type(
    description="The consenting staff against occupations or a profile: the team's numbers, "
    "its largest gaps, the named people's own results and a deployability plan"
)
class TeamCompetenceCheck:
    team_checks: list[TeamCheck] = strawberry.field(description="The team checks it covers")
    consented: int = strawberry.field(description="People who consented and were checked")
    named: int
    counted_only: int
    occupations: list[OccupationSummary]
    profile: CompetenceProfile | None
    stale_before: dt.date = strawberry.field(description="Verified but last used before: STALE")
    competences: list[TeamCompetence]
    largest_gaps: list[TeamCompetence] = strawberry.field(
        description="At most 10, the largest gap first (by what may be shown of it)"
    )
    plan: list[TeamLearningStep] = strawberry.field(
        description="Offers ranked by the people-gaps they close (greedy weighted set cover)"
    )
    identified: list[TeamMember] = strawberry.field(
        description="The named people among those you listed in `identify`, in its order"
    )
    result: strawberry.Private[checks.TeamCheckResult]

    @strawberry.field(description="The named people's own results, by passport id")
    async def people(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> TeamMemberConnection:
        page, more = await self.result.people(info.context.session, _page_size(info, first), after)
        edges = [TeamMemberEdge(cursor=str(m.ref.citizen_id), node=member_type(m)) for m in page]
        return TeamMemberConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None),
        )


def _page_size(info: Info, first: int) -> int:
    """Relay's rule (``clamp_first``) with the service's page size."""
    return clamp_first(first, info.context.settings.max_page_size)


def check_type(view: checks.TeamCheckResult) -> TeamCompetenceCheck:
    return TeamCompetenceCheck(
        team_checks=[team_check_type(t, for_owner=True) for t in view.team_checks],
        consented=view.consented,
        named=view.named,
        counted_only=view.counted,
        occupations=[OccupationSummary.of(o) for o in view.occupations],
        profile=profile_type(view.profile) if view.profile else None,
        stale_before=view.stale_before,
        competences=[team_competence_type(c) for c in view.competences],
        largest_gaps=[team_competence_type(c) for c in view.largest_gaps],
        plan=[
            TeamLearningStep(
                opportunity=opportunity_type(step.recommendation.opportunity),
                closes=[competence_type(ref) for ref in step.recommendation.closes],
                people_gaps=step.people_gaps,
                named_helped=len(step.helps),
                helped=step.helps,
            )
            for step in view.plan
        ],
        identified=[member_type(m) for m in view.identified],
        result=view,
    )


CreateTeamCheckResult = Annotated[
    TeamCheckCreated | ErrorResult, strawberry.union("CreateTeamCheckResult")
]
CloseTeamCheckResult = Annotated[
    TeamCheckClosed | ErrorResult, strawberry.union("CloseTeamCheckResult")
]
JoinTeamCheckResult = Annotated[
    AccessGranted | ErrorResult, strawberry.union("JoinTeamCheckResult")
]
SaveProfileResult = Annotated[
    CompetenceProfileSaved | ErrorResult, strawberry.union("SaveCompetenceProfileResult")
]
TeamCheckInvitationResult = Annotated[
    TeamCheck | NotFoundType | NotAuthorizedType, strawberry.union("TeamCheckInvitationResult")
]
TeamCompetenceCheckResult = Annotated[
    TeamCompetenceCheck | ValidationFailedType | NotFoundType | NotAuthorizedType,
    strawberry.union("TeamCompetenceCheckResult"),
]
