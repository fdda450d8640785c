"""Every rule a claim's input must satisfy, used by single, batch and bulk issuing alike."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    UrlConstraints,
    field_validator,
    model_validator,
)

from service.clock import today
from service.identity.numbers import InvalidNumber, normalize_insz
from service.models.enums import AssessmentMethod, EvidenceKind, LearningContext, ProficiencyScale

EARLIEST_DATE = date(1900, 1, 1)
MAX_EVIDENCE = 20

SCALE_LEVELS: dict[ProficiencyScale, tuple[str, ...]] = {
    ProficiencyScale.EQF: ("1", "2", "3", "4", "5", "6", "7", "8"),
    ProficiencyScale.CEFR: ("A1", "A2", "B1", "B2", "C1", "C2"),
    ProficiencyScale.DESCRIPTIVE: ("basic", "intermediate", "advanced", "expert"),
}

WebUrl = Annotated[AnyUrl, UrlConstraints(max_length=2048, allowed_schemes=["https", "http"])]


def _plain_text(value: str) -> str:
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
        raise ValueError("control characters are not allowed")
    return value


Text200 = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_plain_text)]


def _not_future(value: date | None) -> date | None:
    if value is not None and value > today():
        raise ValueError("must not be in the future")
    if value is not None and value < EARLIEST_DATE:
        raise ValueError("must not be before 1900-01-01")
    return value


PastDate = Annotated[date, AfterValidator(_not_future)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Proficiency(_Strict):
    scale: ProficiencyScale
    level: str = Field(min_length=1, max_length=16)

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
        """0..1000 position on its scale, so levels on different scales can be compared."""
        levels = SCALE_LEVELS[self.scale]
        return round(1000 * (levels.index(self.level) + 1) / len(levels))


class Evidence(_Strict):
    kind: EvidenceKind
    title: Text200
    url: WebUrl | None = None
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    issued_on: PastDate | None = None

    @model_validator(mode="after")
    def _locatable(self) -> Self:
        if self.url is None and self.digest is None:
            raise ValueError("evidence needs a url or a document digest")
        return self


class ClaimContent(_Strict):
    """What a claim says; shared by issuing and superseding."""

    competence_uri: str = Field(min_length=1, max_length=300, pattern=r"^https?://\S+$")
    external_ref: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
    issuer_role: Text200 | None = None
    proficiency: Proficiency | None = None
    context: Annotated[str, Field(max_length=2000), AfterValidator(_plain_text)] | None = None
    assessment_method: AssessmentMethod
    learning_context: LearningContext
    evidence: list[Evidence] = Field(default_factory=list, max_length=MAX_EVIDENCE)
    acquired_on: PastDate
    last_used_on: PastDate | None = None
    valid_until: date | None = None

    @field_validator("assessment_method")
    @classmethod
    def _verified_method(cls, value: AssessmentMethod) -> AssessmentMethod:
        if value is AssessmentMethod.SELF_ASSESSMENT:
            raise ValueError("self_assessment is reserved for competences the citizen declares")
        return value

    @model_validator(mode="after")
    def _date_order(self) -> Self:
        if self.last_used_on is not None and self.last_used_on < self.acquired_on:
            raise ValueError("lastUsedOn must not be before acquiredOn")
        if self.valid_until is not None and self.valid_until < self.acquired_on:
            raise ValueError("validUntil must not be before acquiredOn")
        return self


class IssueClaimInput(ClaimContent):
    insz: str = Field(max_length=32)

    @field_validator("insz")
    @classmethod
    def _insz(cls, value: str) -> str:
        try:
            return normalize_insz(value)
        except InvalidNumber as exc:
            raise ValueError(str(exc)) from exc


class RevokeClaimInput(_Strict):
    reason: str = Field(min_length=3, max_length=1000)
