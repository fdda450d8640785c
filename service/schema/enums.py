"""The domain's closed vocabularies, exposed to GraphQL as they are.

Each GraphQL enum is the domain enum itself (names and values unchanged), so a vocabulary is
declared once, in `service.models.enums`, and the database CHECK constraints, the validation and
the API cannot drift apart.
"""

from __future__ import annotations

import strawberry

from service.errors import ErrorCode
from service.models.enums import (
    AssessmentMethod,
    ClaimStatus,
    ClientStatus,
    EvidenceKind,
    LearningContext,
    OrganisationKind,
    OrganisationStatus,
    ProficiencyScale,
    ReuseLevel,
    Scope,
    SkillCollection,
    SkillType,
)

strawberry.enum(AssessmentMethod, description="How the competence was assessed.")
strawberry.enum(ClaimStatus)
strawberry.enum(ClientStatus)
strawberry.enum(ErrorCode, description="Machine-readable code of an expected failure.")
strawberry.enum(EvidenceKind)
strawberry.enum(LearningContext, description="Where the competence was acquired (EU terms).")
strawberry.enum(OrganisationKind)
strawberry.enum(OrganisationStatus)
strawberry.enum(ProficiencyScale, description="EQF levels 1-8, CEFR A1-C2 or descriptive.")
strawberry.enum(ReuseLevel, description="ESCO reuse level of a skill.")
strawberry.enum(Scope)
strawberry.enum(SkillCollection, description="ESCO thematic skill collection.")
strawberry.enum(SkillType, description="ESCO skill type: knowledge or skill/competence.")

__all__ = [
    "AssessmentMethod",
    "ClaimStatus",
    "ClientStatus",
    "ErrorCode",
    "EvidenceKind",
    "LearningContext",
    "OrganisationKind",
    "OrganisationStatus",
    "ProficiencyScale",
    "ReuseLevel",
    "Scope",
    "SkillCollection",
    "SkillType",
]
