"""Input validation with pydantic, reported as typed problems that never echo the input value."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, Field, ValidationError
from pydantic.alias_generators import to_camel

from service.errors import Problem, ValidationFailed
from service.identity.numbers import InvalidNumber, normalize_insz

M = TypeVar("M", bound=BaseModel)

_ASCII_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
# Unicode categories no text shown to people needs: controls, invisible format characters (bidi
# overrides, zero-width spaces, tag characters that smuggle hidden text), private use,
# unassigned code points, surrogates, and line/paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})  # needed to write some scripts and emoji


def is_plain_text(value: str) -> bool:
    if value.isascii():
        return _ASCII_CONTROLS.search(value) is None
    return not any(
        unicodedata.category(ch) in _REFUSED_CATEGORIES and ch not in "\n\t" and ch not in _JOINERS
        for ch in value
    )


def plain_text(value: str) -> str:
    """Every free text the API accepts passes here, so one rule decides what text may hold.
    PostgreSQL refuses NUL outright; the rest would be stored and shown to citizens, readers
    and logs. Windows line ends (what browsers send from a textarea) become plain newlines."""
    value = value.replace("\r\n", "\n")
    if not is_plain_text(value):
        raise ValueError("control or invisible characters are not allowed")
    return value


def _meaningful(value: str) -> str:
    if not any(ch.isalnum() for ch in value):
        raise ValueError("must contain a letter or digit")
    return value


def _single_line(value: str) -> str:
    if "\n" in value or "\t" in value:
        raise ValueError("must be a single line")
    return value


PlainText = Annotated[str, AfterValidator(plain_text)]
# Reasons, purposes, references: free text that must say something.
Statement = Annotated[PlainText, AfterValidator(_meaningful)]
# Names, roles and titles shown on one line.
Name = Annotated[PlainText, AfterValidator(_single_line), AfterValidator(_meaningful)]


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
