"""Every rule a claim's input must satisfy, used by single, batch and bulk issuing alike."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    UrlConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.clock import today
from service.models.enums import AssessmentMethod, EvidenceKind, LearningContext, ProficiencyScale
from service.validation import (
    KEY_TEXT,
    IdempotencyKey,
    Insz,
    Name,
    PlainText,
    Statement,
    TextRule,
    is_plain_text,
)

EARLIEST_DATE = date(1900, 1, 1)
MAX_EVIDENCE = 20

SCALE_LEVELS: dict[ProficiencyScale, tuple[str, ...]] = {
    ProficiencyScale.EQF: ("1", "2", "3", "4", "5", "6", "7", "8"),
    ProficiencyScale.CEFR: ("A1", "A2", "B1", "B2", "C1", "C2"),
    ProficiencyScale.DESCRIPTIVE: ("basic", "intermediate", "advanced", "expert"),
}


def _no_credentials(url: AnyUrl) -> AnyUrl:
    if url.username is not None or url.password is not None:
        raise ValueError("a URL must not carry credentials")
    return url


def _no_blanks(value: object) -> object:
    """Checked as text first: the URL parser would silently drop tabs, newlines and controls."""
    if isinstance(value, str) and (any(ch.isspace() for ch in value) or not is_plain_text(value)):
        raise ValueError("a URL must not contain spaces or control characters")
    return value


WebUrl = Annotated[
    AnyUrl,
    UrlConstraints(max_length=2048, allowed_schemes=["https", "http"]),
    BeforeValidator(_no_blanks),
    AfterValidator(_no_credentials),
]
# ESCO URIs, and any other competence framework's, are printable ASCII.
CONCEPT_URI = TextRule(min_length=1, max_length=300, pattern=r"^https?://[\x21-\x7e]+$")
ConceptUri = Annotated[str, CONCEPT_URI.field()]
# The rest of a claim's text fields: one table for the models below and service/claims/fast.py.
LEVEL = TextRule(min_length=1, max_length=16)
EVIDENCE_DIGEST = TextRule(pattern=r"^sha256:[0-9a-f]{64}$")
CONTEXT = TextRule(max_length=2000)
EXTERNAL_REF = KEY_TEXT


def not_future(value: date | None) -> date | None:
    if value is not None and value > today():
        raise ValueError("must not be in the future")
    if value is not None and value < EARLIEST_DATE:
        raise ValueError("must not be before 1900-01-01")
    return value


PastDate = Annotated[date, AfterValidator(not_future)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Proficiency(_Strict):
    scale: ProficiencyScale
    level: str = LEVEL.field()

    @model_validator(mode="after")
    def _level_on_scale(self) -> Self:
        levels = SCALE_LEVELS[self.scale]
        normalized = (
            self.level.upper() if self.scale is ProficiencyScale.CEFR else self.level.lower()
        )
        if normalized not in levels:
            raise ValueError(f"level must be one of {', '.join(levels)} on the {self.scale} scale")
        object.__setattr__(self, "level", normalized)
        return self

    @property
    def rank(self) -> int:
        return level_rank(self.scale, self.level)


def level_rank(scale: ProficiencyScale, level: str) -> int:
    """0..1000 position on its scale, so levels on different scales can be compared."""
    levels = SCALE_LEVELS[scale]
    return round(1000 * (levels.index(level) + 1) / len(levels))


class Evidence(_Strict):
    kind: EvidenceKind
    title: Name
    url: WebUrl | None = None
    digest: Annotated[str, EVIDENCE_DIGEST.field()] | None = None
    issued_on: PastDate | None = None

    @model_validator(mode="after")
    def _locatable(self) -> Self:
        if self.url is None and self.digest is None:
            raise ValueError("evidence needs a url or a document digest")
        return self


class CompetenceFacts(_Strict):
    """What any statement about a competence says, whoever makes it."""

    competence_uri: ConceptUri
    proficiency: Proficiency | None = None
    context: Annotated[PlainText, CONTEXT.field()] | None = None
    learning_context: LearningContext
    evidence: list[Evidence] = Field(default_factory=list, max_length=MAX_EVIDENCE)
    acquired_on: PastDate
    last_used_on: PastDate | None = None

    @field_validator("last_used_on")
    @classmethod
    def _used_after_acquired(cls, value: date | None, info: ValidationInfo) -> date | None:
        return _not_before_acquired(value, info)


def _not_before_acquired(value: date | None, info: ValidationInfo) -> date | None:
    acquired = info.data.get("acquired_on")  # declared earlier, so validated already
    if value is not None and acquired is not None and value < acquired:
        raise ValueError("must not be before acquiredOn")
    return value


class ClaimContent(CompetenceFacts):
    """What an organisation's claim says; shared by issuing and superseding."""

    external_ref: Annotated[str, EXTERNAL_REF.field()]
    issuer_role: Name | None = None
    assessment_method: AssessmentMethod
    valid_until: date | None = None

    @field_validator("assessment_method")
    @classmethod
    def _verified_method(cls, value: AssessmentMethod) -> AssessmentMethod:
        if value is AssessmentMethod.SELF_ASSESSMENT:
            raise ValueError("self_assessment is reserved for competences the citizen declares")
        return value

    @field_validator("valid_until")
    @classmethod
    def _valid_after_acquired(cls, value: date | None, info: ValidationInfo) -> date | None:
        return _not_before_acquired(value, info)


class SelfDeclarationInput(CompetenceFacts):
    """A competence the citizen states about themselves: never counted as verified."""

    learning_context: LearningContext = LearningContext.INFORMAL
    idempotency_key: IdempotencyKey | None = None


class IssueClaimInput(ClaimContent):
    insz: Insz


class RevokeClaimInput(_Strict):
    reason: Annotated[Statement, Field(min_length=3, max_length=1000)]
