"""Typed error results: expected failures are union members with a code and the field at fault."""

from __future__ import annotations

import strawberry

from service import errors as domain
from service.errors import ErrorCode


@strawberry.interface(name="Error")
class ErrorType:
    code: ErrorCode
    message: str


@strawberry.type(name="FieldProblem")
class FieldProblemType:
    field: str = strawberry.field(
        description="Dotted path to the input field, e.g. input.acquiredOn"
    )
    message: str
    code: str


@strawberry.type(name="ValidationFailed")
class ValidationFailedType(ErrorType):
    problems: list[FieldProblemType]


@strawberry.type(name="NotFound")
class NotFoundType(ErrorType):
    pass


@strawberry.type(name="NotAuthorized")
class NotAuthorizedType(ErrorType):
    pass


@strawberry.type(name="Conflict")
class ConflictType(ErrorType):
    existing_id: strawberry.ID | None = None


@strawberry.type(name="InvalidState")
class InvalidStateType(ErrorType):
    pass


ErrorResult = (
    ValidationFailedType | NotFoundType | NotAuthorizedType | ConflictType | InvalidStateType
)


def error_result(exc: domain.DomainError) -> ErrorResult:
    code = exc.code
    if isinstance(exc, domain.ValidationFailed):
        problems = [
            FieldProblemType(field=p.field, message=p.message, code=p.code) for p in exc.problems
        ]
        return ValidationFailedType(code=code, message=exc.message, problems=problems)
    if isinstance(exc, domain.Conflict):
        existing = strawberry.ID(exc.existing_id) if exc.existing_id else None
        return ConflictType(code=code, message=exc.message, existing_id=existing)
    if isinstance(exc, domain.NotFound):
        return NotFoundType(code=code, message=exc.message)
    if isinstance(exc, domain.NotAuthorized):
        return NotAuthorizedType(code=code, message=exc.message)
    return InvalidStateType(code=code, message=exc.message)
