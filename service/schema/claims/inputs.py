"""Claim inputs. Types are checked by GraphQL; every other rule lives in service.claims.rules."""

from __future__ import annotations

import datetime as dt

import strawberry

from service.schema.enums import AssessmentMethod, EvidenceKind, LearningContext, ProficiencyScale


@strawberry.input
class ProficiencyInput:
    scale: ProficiencyScale
    level: str = strawberry.field(description="EQF 1-8, CEFR A1-C2, or basic..expert")


@strawberry.input
class EvidenceInput:
    kind: EvidenceKind
    title: str
    url: str | None = None
    digest: str | None = strawberry.field(default=None, description="sha256:<64 hex digits>")
    issued_on: dt.date | None = None


@strawberry.input
class ClaimContentFields:
    external_ref: str = strawberry.field(
        description="Your own unique reference; retrying with it never creates a second claim"
    )
    assessment_method: AssessmentMethod
    learning_context: LearningContext
    acquired_on: dt.date
    last_used_on: dt.date | None = None
    valid_until: dt.date | None = None
    proficiency: ProficiencyInput | None = None
    issuer_role: str | None = strawberry.field(default=None, description='e.g. "assessor"')
    context: str | None = None
    evidence: list[EvidenceInput] = strawberry.field(default_factory=list)


@strawberry.input
class IssueClaimInput(ClaimContentFields):
    competence_uri: str = strawberry.field(description="ESCO skill or knowledge URI")
    insz: str = strawberry.field(description="The citizen's national number (INSZ), 11 digits")


@strawberry.input
class SupersedeClaimInput(ClaimContentFields):
    """The newer claim is about the same competence and citizen as the one it replaces."""

    claim_id: strawberry.ID = strawberry.field(description="The claim the new one replaces")


@strawberry.input
class RevokeClaimInput:
    claim_id: strawberry.ID
    reason: str
