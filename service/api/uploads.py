"""Reading uploads row by row: NDJSON (one JSON object per line) or CSV (a header row).

Rows come out as the API's camelCase fields turned into the domain's snake_case mapping, with
their physical line numbers, or as a Problem saying why the line could not be read. Nothing
here raises on bad content; a header that cannot be understood is the one exception
(``BadHeader``), since then no row can be read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import IO, Any, TypeVar

from pydantic.alias_generators import to_snake

from service.errors import Problem
from service.strict_json import InvalidJson, strict_json

MAX_LINE_BYTES = 64 * 1024
# Vocabulary fields accept the GraphQL names (EXAM) as well as the values (exam).
_ENUM_FIELDS = ("assessment_method", "learning_context")

Row = tuple[int, dict[str, Any] | Problem]
T = TypeVar("T")


class BadHeader(ValueError):
    pass


def _problem(line: int, message: str, code: str = "invalid_row") -> Problem:
    return Problem(f"line {line}", message, code)


@lru_cache(maxsize=1024)
def _snake(key: str) -> str:
    """Cached: an upload names the same few fields on every row, and to_snake is regex work."""
    return to_snake(key)


def _named(row: Mapping[str, Any]) -> dict[str, Any]:
    named = {_snake(str(key)): value for key, value in row.items()}
    if len(named) != len(row):  # "externalRef" and "external_ref" both given
        raise ValueError("the same field is given twice")
    for name in _ENUM_FIELDS:
        if isinstance(named.get(name), str):
            named[name] = named[name].lower()
    proficiency = named.get("proficiency")
    if isinstance(proficiency, dict) and isinstance(proficiency.get("scale"), str):
        named["proficiency"] = {**proficiency, "scale": proficiency["scale"].lower()}
    evidence = named.get("evidence")
    if isinstance(evidence, list):
        named["evidence"] = [
            {
                _snake(str(k)): (v.lower() if k == "kind" and isinstance(v, str) else v)
                for k, v in item.items()
            }
            if isinstance(item, dict)
            else item
            for item in evidence
        ]
    return named


def json_row(line: bytes) -> dict[str, Any]:
    """One NDJSON line as the domain's mapping. Raises ValueError with what is wrong."""
    row = strict_json(line)  # raises InvalidJson, a ValueError saying what is wrong
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    return _named(row)


def ndjson_rows(stream: IO[bytes]) -> Iterator[Row]:
    return ndjson_lines(stream, json_row)


def ndjson_lines(
    stream: IO[bytes], read: Callable[[bytes], T]
) -> Iterator[tuple[int, T | Problem]]:
    """The lines, each turned into a row by ``read`` (raising ValueError with what is wrong)."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass  # skip the rest of the overlong line
            yield number, _problem(number, f"longer than {MAX_LINE_BYTES} bytes", "too_long")
            continue
        if not line.strip():
            continue
        try:
            yield number, read(line)
        except ValueError as exc:
            yield number, _problem(number, str(exc))


# CSV columns: the claim's fields, flat. A proficiency is two columns; evidence is a JSON array.
CSV_COLUMNS = frozenset(
    {
        "insz",
        "competence_uri",
        "external_ref",
        "assessment_method",
        "learning_context",
        "acquired_on",
        "last_used_on",
        "valid_until",
        "issuer_role",
        "context",
        "proficiency_scale",
        "proficiency_level",
        "evidence",
    }
)


def _csv_row(header: list[str], cells: list[str]) -> dict[str, Any]:
    if len(cells) != len(header):
        raise ValueError(f"{len(cells)} cells where the header has {len(header)}")
    row: dict[str, Any] = {name: cell for name, cell in zip(header, cells, strict=True) if cell}
    scale, level = row.pop("proficiency_scale", None), row.pop("proficiency_level", None)
    if scale or level:
        row["proficiency"] = {"scale": scale, "level": level}
    if "evidence" in row:
        try:
            row["evidence"] = strict_json(row["evidence"])
        except InvalidJson as exc:
            raise ValueError(f"evidence is {exc}") from None
    return _named(row)


def csv_rows(stream: IO[bytes]) -> Iterator[Row]:
    """The first row names the columns (camelCase or snake_case, any order)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from _csv_records(csv.reader(text, strict=True))
    finally:
        text.detach()  # the caller's stream stays open


def _csv_records(reader: Any) -> Iterator[Row]:
    try:
        names = next(reader, None)
    except csv.Error as exc:
        raise BadHeader(f"the header row cannot be read: {exc}") from None
    if not names:
        raise BadHeader("the upload has no header row")
    header = [to_snake(name.strip()) for name in names]
    unknown = sorted(set(header) - CSV_COLUMNS)
    if unknown or len(set(header)) != len(header):
        raise BadHeader(f"unknown columns {unknown}" if unknown else "a column is named twice")
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, _problem(reader.line_num, f"not valid CSV: {exc}")
            continue
        if not any(cell.strip() for cell in cells):
            continue
        try:
            yield reader.line_num, _csv_row(header, cells)
        except ValueError as exc:
            yield reader.line_num, _problem(reader.line_num, str(exc))
