"""The domain's closed vocabularies, exposed to GraphQL as they are.

Each GraphQL enum is the domain enum itself (names and values unchanged), so a vocabulary is
declared once, in `service.models.enums`, and the database CHECK constraints, the validation and
the API cannot drift apart.
"""

from __future__ import annotations

import strawberry

from service.errors import ErrorCode
from service.models.enums import (
    AccessBasis,
    AssessmentMethod,
    ClaimStatus,
    ClientStatus,
    DeliveryStatus,
    EndorsementStatus,
    EvidenceKind,
    GranteeKind,
    GrantStatus,
    HolderKind,
    LearningContext,
    LearningMode,
    LightKind,
    LightSourceKind,
    OpportunityStatus,
    OrganisationKind,
    OrganisationStatus,
    PlanStepKind,
    PrincipalKind,
    ProficiencyScale,
    RankFactorKind,
    RequirementStatus,
    ReuseLevel,
    Scope,
    SkillCollection,
    SkillType,
    TeamCheckStatus,
    TeamDisclosure,
    TeamRequirementStatus,
    Want,
    WebhookEventType,
)

strawberry.enum(AccessBasis, description="What allowed a read of a passport.")
strawberry.enum(AssessmentMethod, description="How the competence was assessed.")
strawberry.enum(ClaimStatus)
strawberry.enum(ClientStatus)
strawberry.enum(DeliveryStatus, description="Where a webhook delivery stands.")
strawberry.enum(EndorsementStatus, description="In force, or revoked by its endorser.")
strawberry.enum(WebhookEventType, description="What an organisation can hear of by webhook.")
strawberry.enum(ErrorCode, description="Machine-readable code of an expected failure.")
strawberry.enum(EvidenceKind)
strawberry.enum(GranteeKind, description="Who a grant lets read: an organisation or a link.")
strawberry.enum(GrantStatus)
strawberry.enum(LearningContext, description="Where the competence was acquired (EU terms).")
strawberry.enum(LearningMode)
strawberry.enum(OpportunityStatus)
strawberry.enum(OrganisationKind)
strawberry.enum(OrganisationStatus)
strawberry.enum(PrincipalKind, description="The kind of caller that read a passport.")
strawberry.enum(ProficiencyScale, description="EQF levels 1-8, CEFR A1-C2 or descriptive.")
strawberry.enum(ReuseLevel, description="ESCO reuse level of a skill.")
strawberry.enum(
    RequirementStatus, description="How the passport stands against a required competence."
)
strawberry.enum(Scope)
strawberry.enum(Want, description="What the citizen wants of a competence.")
strawberry.enum(HolderKind, description="Who recorded an occupation held.")
strawberry.enum(LightKind, description="What a warning light (or good sign) is about.")
strawberry.enum(LightSourceKind, description="What a warning light rests on.")
strawberry.enum(RankFactorKind, description="A part of an occupation's score.")
strawberry.enum(PlanStepKind, description="What a step of a career plan asks.")
strawberry.enum(SkillCollection, description="ESCO thematic skill collection.")
strawberry.enum(SkillType, description="ESCO skill type: knowledge or skill/competence.")
strawberry.enum(TeamCheckStatus, description="Open to new consents, or closed.")
strawberry.enum(
    TeamDisclosure,
    description="What a person lets their employer see in a team check: their own result "
    "(NAMED), or only their part in the team's numbers (COUNTED).",
)
strawberry.enum(
    TeamRequirementStatus,
    description="How one person stands against one competence of a team check.",
)

__all__ = [
    "AccessBasis",
    "AssessmentMethod",
    "ClaimStatus",
    "ClientStatus",
    "DeliveryStatus",
    "EndorsementStatus",
    "ErrorCode",
    "EvidenceKind",
    "GrantStatus",
    "GranteeKind",
    "HolderKind",
    "LearningContext",
    "LearningMode",
    "LightKind",
    "LightSourceKind",
    "OpportunityStatus",
    "OrganisationKind",
    "OrganisationStatus",
    "PlanStepKind",
    "PrincipalKind",
    "ProficiencyScale",
    "RankFactorKind",
    "RequirementStatus",
    "ReuseLevel",
    "Scope",
    "SkillCollection",
    "SkillType",
    "TeamCheckStatus",
    "TeamDisclosure",
    "TeamRequirementStatus",
    "Want",
    "WebhookEventType",
]
