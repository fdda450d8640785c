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


class AuthFailure(StrEnum):
    """Why a request was not let in: told to the caller (RFC 6750's ``error_description``
    and GraphQL's ``extensions.reason``) and logged with the request id. Each names what is
    wrong with the credentials, never what they hold: no token, claim value or number."""

    MISSING = "missing"
    NOT_BEARER = "not_bearer"
    SEVERAL_HEADERS = "several_headers"
    MALFORMED = "malformed"
    WRONG_TYPE = "wrong_type"
    NO_KEY_ID = "no_key_id"
    UNKNOWN_KEY = "unknown_key"
    ALGORITHM = "algorithm"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_ISSUER = "wrong_issuer"
    MISSING_CLAIM = "missing_claim"
    TOO_LONG_LIVED = "too_long_lived"
    INVALID_CITIZEN = "invalid_citizen"
    CITIZEN_WITH_ADMIN = "citizen_with_admin"
    UNKNOWN_CLIENT = "unknown_client"
    NO_CALLER = "no_caller"
    UNKNOWN_LINK = "unknown_link"


AUTH_FAILURES: dict[AuthFailure, str] = {
    AuthFailure.MISSING: "no bearer token",
    AuthFailure.NOT_BEARER: "use the Bearer scheme",
    AuthFailure.SEVERAL_HEADERS: "send exactly one Authorization header",
    AuthFailure.MALFORMED: "not a well-formed JWT",
    AuthFailure.WRONG_TYPE: "the token type (typ) must be at+jwt",
    AuthFailure.NO_KEY_ID: "the token names no signing key (kid)",
    AuthFailure.UNKNOWN_KEY: "unknown signing key",
    AuthFailure.ALGORITHM: "signing algorithm not allowed",
    AuthFailure.BAD_SIGNATURE: "bad signature",
    AuthFailure.EXPIRED: "token expired",
    AuthFailure.NOT_YET_VALID: "token not yet valid",
    AuthFailure.WRONG_AUDIENCE: "wrong audience",
    AuthFailure.WRONG_ISSUER: "wrong issuer",
    AuthFailure.MISSING_CLAIM: "a required claim is missing",
    AuthFailure.TOO_LONG_LIVED: "token lifetime (exp - iat) over the maximum",
    AuthFailure.INVALID_CITIZEN: "the citizen's national number in the token is not valid",
    AuthFailure.CITIZEN_WITH_ADMIN: "a citizen's token cannot carry the admin scope",
    AuthFailure.UNKNOWN_CLIENT: "unknown client: not registered, or not active",
    AuthFailure.NO_CALLER: "the token names no citizen, administrator or registered client",
    AuthFailure.UNKNOWN_LINK: "unknown share link: never made, revoked or expired",
}


class Unauthenticated(Exception):
    """No valid credentials, and why (``reason``); ``description`` says it in a few words,
    sometimes more precisely than the reason's default (which claim is missing), never with
    anything taken from the credentials themselves."""

    def __init__(
        self, reason: AuthFailure = AuthFailure.MALFORMED, description: str | None = None
    ) -> None:
        self.reason = reason
        self.description = description or AUTH_FAILURES[reason]
        super().__init__(self.description)
