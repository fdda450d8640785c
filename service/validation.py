"""Input validation with pydantic, reported as typed problems that never echo the input value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from service.errors import Problem, ValidationFailed

M = TypeVar("M", bound=BaseModel)


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
