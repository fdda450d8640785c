"""Input validation with pydantic, reported as typed problems that never echo the input value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, Field, ValidationError
from pydantic.alias_generators import to_camel

from service.errors import Problem, ValidationFailed
from service.identity.numbers import InvalidNumber, normalize_insz

M = TypeVar("M", bound=BaseModel)

# C0/C1 controls (except tab and newline), DEL and the bidi overrides that can make a stored text
# display differently from what it says. PostgreSQL refuses NUL outright; the rest would be
# stored and shown to citizens, readers and logs.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def is_plain_text(value: str) -> bool:
    return _UNPRINTABLE.search(value) is None


def plain_text(value: str) -> str:
    """Every free text the API accepts passes here, so one rule decides what text may hold."""
    if not is_plain_text(value):
        raise ValueError("control characters are not allowed")
    return value


PlainText = Annotated[str, AfterValidator(plain_text)]


def _insz(value: str) -> str:
    try:
        return normalize_insz(value)
    except InvalidNumber as exc:
        raise ValueError(str(exc)) from exc


Insz = Annotated[str, Field(max_length=32), AfterValidator(_insz)]


def field_path(loc: tuple[int | str, ...], prefix: str = "input") -> str:
    """Dotted path in the API's own (camelCase) names, e.g. ``input.evidence.0.url``."""
    parts = [prefix] if prefix else []
    parts += [to_camel(part) if isinstance(part, str) else str(part) for part in loc]
    return ".".join(parts)


def problems_from(exc: ValidationError, prefix: str = "input") -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"].removeprefix("Value error, ")
        problems.append(Problem(field_path(tuple(error["loc"]), prefix), message, error["type"]))
    return problems


def validate(model: type[M], data: Mapping[str, Any], prefix: str = "input") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc, prefix)
        first = problems[0]
        raise ValidationFailed(f"{first.field}: {first.message}", problems) from None
