"""Expected failures of the domain; the API layers turn them into typed error results."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ErrorCode(StrEnum):
    VALIDATION_FAILED = "VALIDATION_FAILED"
    NOT_FOUND = "NOT_FOUND"
    NOT_AUTHORIZED = "NOT_AUTHORIZED"
    CONFLICT = "CONFLICT"
    INVALID_STATE = "INVALID_STATE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    RATE_LIMITED = "RATE_LIMITED"
    QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"


@dataclass(frozen=True)
class Problem:
    """One bad input value: a dotted path to the field and a message without the value."""

    field: str
    message: str
    code: str = "invalid"


@dataclass
class DomainError(Exception):
    message: str
    code: ErrorCode = field(init=False)

    def __post_init__(self) -> None:
        super().__init__(self.message)


@dataclass
class ValidationFailed(DomainError):
    problems: list[Problem] = field(default_factory=list)
    code: ErrorCode = field(init=False, default=ErrorCode.VALIDATION_FAILED)

    @classmethod
    def one(cls, field_name: str, message: str, code: str = "invalid") -> ValidationFailed:
        return cls(message, [Problem(field_name, message, code)])


@dataclass
class NotFound(DomainError):
    """Also what a denied read looks like, where existence itself is personal data."""

    code: ErrorCode = field(init=False, default=ErrorCode.NOT_FOUND)


@dataclass
class NotAuthorized(DomainError):
    code: ErrorCode = field(init=False, default=ErrorCode.NOT_AUTHORIZED)


@dataclass
class Conflict(DomainError):
    existing_id: str | None = None
    code: ErrorCode = field(init=False, default=ErrorCode.CONFLICT)


@dataclass
class InvalidState(DomainError):
    code: ErrorCode = field(init=False, default=ErrorCode.INVALID_STATE)


@dataclass
class RateLimited(DomainError):
    """The caller spent its budget; ``retry_after`` seconds from now it has some again."""

    retry_after: int = 1
    code: ErrorCode = field(init=False, default=ErrorCode.RATE_LIMITED)


@dataclass
class QueryTooCostly(DomainError):
    cost: int = 0
    limit: int = 0
    code: ErrorCode = field(init=False, default=ErrorCode.QUERY_TOO_COSTLY)


class CitizenGone(Exception):
    """The citizen was erased while this transaction waited for their lock; run it again."""


class Unauthenticated(Exception):
    """No valid bearer token. Deliberately carries no detail an attacker could use."""
