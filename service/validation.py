"""Input validation with pydantic, reported as typed problems that never echo the input value."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, Field, ValidationError
from pydantic.alias_generators import to_camel

from service.errors import Problem, ValidationFailed
from service.identity.numbers import InvalidNumber, normalize_insz

M = TypeVar("M", bound=BaseModel)

_ASCII_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
# Unicode categories no text shown to people needs: controls, invisible format characters (bidi
# overrides, zero-width spaces, tag characters that smuggle hidden text), private use,
# surrogates, and line/paragraph separators. Unassigned code points are not refused: which ones
# are unassigned depends on the Python release, and new emoji arrive that way.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})
# Format characters that people's keyboards and editors do put in text: soft hyphen, the joiners
# some scripts and emoji need, the direction marks around Arabic or Hebrew, the word joiner.
_WRITTEN_FORMAT = frozenset("\u00ad\u200c\u200d\u200e\u200f\u061c\u2060")
_BLACK_FLAG = "\U0001f3f4"  # an emoji subdivision flag: the flag, then tag characters
_TAGS = range(0xE0020, 0xE0080)


def _refused(value: str, index: int) -> bool:
    ch = value[index]
    if ch in "\n\t" or ch in _WRITTEN_FORMAT:
        return False
    point = ord(ch)
    if 0xFDD0 <= point <= 0xFDEF or point & 0xFFFE == 0xFFFE:
        return True  # noncharacters
    if point in _TAGS:  # only inside a flag sequence
        return not (index and (value[index - 1] == _BLACK_FLAG or ord(value[index - 1]) in _TAGS))
    return unicodedata.category(ch) in _REFUSED_CATEGORIES


def is_plain_text(value: str) -> bool:
    if value.isascii():
        return _ASCII_CONTROLS.search(value) is None
    return not any(_refused(value, i) for i in range(len(value)))


def plain_text(value: str) -> str:
    """Every free text the API accepts passes here, so one rule decides what text may hold.
    PostgreSQL refuses NUL outright; the rest would be stored and shown to citizens, readers
    and logs. Windows line ends (what browsers send from a textarea) become plain newlines."""
    value = value.replace("\r\n", "\n")
    if not is_plain_text(value):
        raise ValueError("control or invisible characters are not allowed")
    return value


# Letters by category that render as nothing (Hangul fillers).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


def meaningful(value: str) -> str:
    if not any(ch.isalnum() and ch not in _BLANK_LETTERS for ch in value):
        raise ValueError("must contain a letter or digit")
    return value


def single_line(value: str) -> str:
    if "\n" in value or "\t" in value:
        raise ValueError("must be a single line")
    return value


# 11 digits, optionally punctuated like 85.07.30-033.28 or 85/07/30 033 28: the shapes an INSZ
# takes in text.
INSZ_SHAPE = re.compile(
    r"(?<!\d)\d{2}[.\-\s/]?\d{2}[.\-\s/]?\d{2}[.\-\s/]?\d{3}[.\-\s/]?\d{2}(?!\d)"
)


def contains_national_number(value: str) -> bool:
    """True if any INSZ-shaped run of digits in the text has valid check digits."""
    for match in INSZ_SHAPE.finditer(value):
        try:
            normalize_insz(re.sub(r"\D", "", match.group()))
        except InvalidNumber:
            continue
        return True
    return False


def _no_national_number(value: str) -> str:
    if contains_national_number(value):
        raise ValueError("must not contain a national number")
    return value


PlainText = Annotated[str, AfterValidator(plain_text)]
# Reasons, purposes, references: free text that must say something.
Statement = Annotated[PlainText, AfterValidator(meaningful)]
# Purposes of reads and grants are kept in access logs, some beyond an erasure (legal-basis
# reads): they must not carry the very number that would identify the citizen.
Purpose = Annotated[
    Statement, Field(min_length=3, max_length=500), AfterValidator(_no_national_number)
]


@dataclass(frozen=True)
class TextRule:
    """Length and shape of a text field, stated once for both readers of claim input: the
    pydantic models (``field``) and the fast bulk reader (``holds``, service/claims/fast.py).
    The pattern is anchored; ``holds`` matches it against the whole value, as pydantic does."""

    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None

    def field(self) -> Any:
        return Field(min_length=self.min_length, max_length=self.max_length, pattern=self.pattern)

    @cached_property
    def _compiled(self) -> re.Pattern[str] | None:
        return re.compile(self.pattern) if self.pattern else None

    def holds(self, value: str) -> bool:
        if self.min_length is not None and len(value) < self.min_length:
            return False
        if self.max_length is not None and len(value) > self.max_length:
            return False
        return self._compiled is None or self._compiled.fullmatch(value) is not None


NAME = TextRule(min_length=1, max_length=200)
INSZ_TEXT = TextRule(max_length=32)
KEY_TEXT = TextRule(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")

# Names, roles and titles, shown on one line.
Name = Annotated[
    PlainText,
    NAME.field(),
    AfterValidator(single_line),
    AfterValidator(meaningful),
]


# A client's key for one request: retrying with it never repeats what the request did.
IdempotencyKey = Annotated[str, KEY_TEXT.field()]


def _insz(value: str) -> str:
    try:
        return normalize_insz(value)
    except InvalidNumber as exc:
        raise ValueError(str(exc)) from exc


Insz = Annotated[str, INSZ_TEXT.field(), AfterValidator(_insz)]


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
