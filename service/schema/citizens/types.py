"""What the citizen sees of their own records: the access log, declarations, erasure."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from service.citizens.erasure import ErasureReport
from service.passports.access_log import AccessLogEntry as AccessLogEntryView
from service.schema.claims.inputs import EvidenceInput, ProficiencyInput
from service.schema.common import PageInfo
from service.schema.consent.types import OrganisationRef
from service.schema.enums import AccessBasis, LearningContext, PrincipalKind
from service.schema.errors import (
    ErrorResult,
)
from service.schema.passports.types import SelfDeclaredCompetence
from service.schema.taxonomy.types import Competence, competence_type


@strawberry.type
class GrantRef:
    id: strawberry.ID
    purpose: str


@strawberry.type
class LegalBasisRef:
    code: str
    reference: str = strawberry.field(description="The statute or decision it rests on")


@strawberry.type(description="One read of your passport")
class AccessLogEntry:
    id: strawberry.ID
    accessed_at: dt.datetime
    principal_kind: PrincipalKind = strawberry.field(
        description="CITIZEN: you; READER: an organisation; LINK: someone with your share link"
    )
    organisation: OrganisationRef | None
    client_id: str | None = strawberry.field(description="The organisation's system that read")
    basis: AccessBasis
    legal_basis: LegalBasisRef | None
    grants: list[GrantRef] = strawberry.field(description="Your grants this read relied on")
    purpose: str | None = strawberry.field(description="The purpose the reader stated")
    operation: str
    competences: list[Competence] = strawberry.field(description="What the read returned")


def access_log_entry(view: AccessLogEntryView) -> AccessLogEntry:
    return AccessLogEntry(
        id=strawberry.ID(str(view.id)),
        accessed_at=view.accessed_at,
        principal_kind=PrincipalKind(view.principal_kind.value),
        organisation=OrganisationRef.of(view.organisation) if view.organisation else None,
        client_id=view.client_id,
        basis=AccessBasis(view.basis.value),
        legal_basis=LegalBasisRef(code=view.legal_basis.code, reference=view.legal_basis.reference)
        if view.legal_basis
        else None,
        grants=[
            GrantRef(id=strawberry.ID(str(g.grant_id)), purpose=g.purpose) for g in view.grants
        ],
        purpose=view.purpose,
        operation=view.operation,
        competences=[competence_type(ref) for ref in view.competences],
    )


@strawberry.type
class AccessLogEdge:
    cursor: str
    node: AccessLogEntry


@strawberry.type
class AccessLogConnection:
    edges: list[AccessLogEdge]
    page_info: PageInfo


@strawberry.input
class SelfDeclareInput:
    competence_uri: str = strawberry.field(description="ESCO skill or knowledge URI")
    acquired_on: dt.date
    last_used_on: dt.date | None = None
    learning_context: LearningContext = LearningContext.INFORMAL
    proficiency: ProficiencyInput | None = None
    context: str | None = None
    evidence: list[EvidenceInput] = strawberry.field(default_factory=list)
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Your own key for this request: a retry with it returns what it made, even "
        "after later changes; without it, declaring the same again is still harmless",
    )


@strawberry.type
class SelfDeclared:
    competence: SelfDeclaredCompetence
    created: bool = strawberry.field(
        description="False when the same declaration was already current (a retry)"
    )


@strawberry.type
class SelfDeclarationWithdrawn:
    id: strawberry.ID


@strawberry.type
class ErasureCount:
    kind: str
    count: int


@strawberry.type(description="Your receipt: what was removed, and what the law makes us keep")
class ErasureCompleted:
    erasure_id: strawberry.ID | None = strawberry.field(
        description="Null when nothing was held about you"
    )
    erased_at: dt.datetime
    counts: list[ErasureCount]


def erasure_completed(report: ErasureReport) -> ErasureCompleted:
    return ErasureCompleted(
        erasure_id=strawberry.ID(str(report.erasure_id)) if report.erasure_id else None,
        erased_at=report.erased_at,
        counts=[ErasureCount(kind=k, count=v) for k, v in sorted(report.counts.items())],
    )


SelfDeclareResult = Annotated[SelfDeclared | ErrorResult, strawberry.union("SelfDeclareResult")]
WithdrawSelfDeclarationResult = Annotated[
    SelfDeclarationWithdrawn | ErrorResult, strawberry.union("WithdrawSelfDeclarationResult")
]
RequestErasureResult = Annotated[
    ErasureCompleted | ErrorResult, strawberry.union("RequestErasureResult")
]
