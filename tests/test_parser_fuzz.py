"""Every parser of outside input, under generated input: only its documented errors come out.

Targets: national (INSZ) and enterprise numbers, the NDJSON and CSV upload rows (and the claim
rules they are validated by), canonical JSON, pagination cursors, and what ``POST /verify``
parses of a posted credential (its body, the pre-checks, the status entry, export codes, and
status lists). Valid input round-trips; a changed check digit is caught.

Budget: each target runs a fixed, derandomized number of examples in CI. A long run sets
``PASSPORT_FUZZ_EXAMPLES`` (read once, at import), which every target then runs::

    PASSPORT_FUZZ_EXAMPLES=20000 .venv/bin/pytest -q tests/test_parser_fuzz.py
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import os
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from functools import partial
from typing import Any, Literal, TypeVar, cast

import orjson
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service import canonical
from service.api.credentials import VerifyRequest, verification_report
from service.api.uploads import MAX_LINE_BYTES, BadHeader, csv_rows, ndjson_rows
from service.claims.rules import IssueClaimInput
from service.credentials import integrity, status
from service.credentials.clr import ACHIEVEMENT_CONTEXT
from service.credentials.issuer import export_code, export_id_from_code, parse_export_id
from service.credentials.keys import SigningKey
from service.credentials.verify import MAX_INDEX, Verification, check
from service.errors import Problem, ValidationFailed
from service.identity.numbers import InvalidNumber, normalize_enterprise_number, normalize_insz
from service.pagination import decode_cursor, encode_cursor
from service.validation import validate
from tests import factories

FUZZ_EXAMPLES = int(os.environ.get("PASSPORT_FUZZ_EXAMPLES", "0"))
T = TypeVar("T")
E = TypeVar("E", bound=Exception)


def budget(quick: int) -> Callable[[Any], Any]:
    """``quick`` examples in CI, ``PASSPORT_FUZZ_EXAMPLES`` in a long run; reproducible."""
    return settings(
        max_examples=FUZZ_EXAMPLES or quick,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def outcome(call: Callable[[], T], expected: type[E]) -> T | E:
    """The result, or the documented error it raised; any other exception fails the test."""
    try:
        return call()
    except expected as exc:
        return exc


# --- Strategies ----------------------------------------------------------------------------

# Text of every kind: any code point (lone surrogates included), and ASCII with its controls.
any_text = st.text(alphabet=st.characters() | st.characters(categories=["Cs"])) | st.text(
    alphabet=st.characters(max_codepoint=0x7F)
)
digit_text = st.text(alphabet="0123456789 .-/\t\n\u00a0\u0660\uff10BE()", max_size=20)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
)
json_keys = any_text | st.text(alphabet="abcXYZ_-09@:", max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(json_keys, inner, max_size=5)
    ),
    max_leaves=30,
)
# What orjson can hand a parser: JSON text, so no NaN, tuples or surrogates.
parsed_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


INSZ_MESSAGES = {
    "an INSZ has 11 digits",
    "the INSZ check digits do not match",
    "the INSZ's month is not a month (01-12, plus 20 or 40 for BIS)",
    "the INSZ's birth date does not exist in the century its check digits give"
    " (from 2000 on they are computed over 2 and the nine digits)",
}


def insz_checksum_ok(number: str) -> bool:
    """The mod-97 rule alone, for births before 2000 or after (a '2' before the nine digits)."""
    if len(number) != 11 or not number.isascii() or not number.isdigit():
        return False
    base, check_digits = number[:9], int(number[9:])
    return 97 - int(base) % 97 == check_digits or 97 - int("2" + base) % 97 == check_digits


@st.composite
def valid_insz(draw: st.DrawFn) -> str:
    """National register numbers and BIS numbers (month + 20 or + 40), both centuries."""
    after_2000 = draw(st.booleans())
    year = draw(st.integers(0, date.today().year - 2001 if after_2000 else 99))
    month = draw(st.integers(1, 12)) + draw(st.sampled_from([0, 0, 20, 40]))
    base = f"{year:02d}{month:02d}{draw(st.integers(1, 28)):02d}{draw(st.integers(1, 997)):03d}"
    check_digits = 97 - int(("2" + base) if after_2000 else base) % 97
    return base + f"{check_digits:02d}"


def punctuated(number: str, style: int) -> str:
    """The ways people write an INSZ: 85.07.30-033.28, 850730 033 28, padded with blanks."""
    if style == 1:
        return f"{number[:2]}.{number[2:4]}.{number[4:6]}-{number[6:9]}.{number[9:]}"
    if style == 2:
        return f"{number[:6]} {number[6:9]} {number[9:]}"
    if style == 3:
        return f"  {number}\t"
    return number


def enterprise_ok(number: str) -> bool:
    return (
        len(number) == 10
        and number.isascii()
        and number.isdigit()
        and number[0] in "01"
        and int(number) > 0
        and (int(number[:8]) + int(number[8:])) % 97 == 0
    )


@st.composite
def valid_enterprise(draw: st.DrawFn) -> str:
    first8 = draw(st.sampled_from("01")) + f"{draw(st.integers(0, 9_999_999)):07d}"
    number = first8 + f"{97 - int(first8) % 97:02d}"
    return number if int(number) else "0000000097"


@st.composite
def one_digit_changed(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> tuple[str, str]:
    number = draw(valid)
    at = draw(st.integers(0, len(number) - 1))
    digit = draw(st.sampled_from([d for d in "0123456789" if d != number[at]]))
    return number, number[:at] + digit + number[at + 1 :]


# --- INSZ and enterprise numbers -----------------------------------------------------------


@budget(500)
@given(any_text | digit_text | valid_insz().map(lambda n: n + "0"))
@example("٨٥٠٧٣٠٠٣٣٢٨")  # Arabic-Indic digits: str.isdigit() says yes, int() would agree
@example("85073003328\x00")
def test_insz_from_any_text_is_a_valid_number_or_invalid_number(value: str) -> None:
    number = outcome(lambda: normalize_insz(value), InvalidNumber)
    if isinstance(number, InvalidNumber):
        assert str(number) in INSZ_MESSAGES  # fixed texts: never the value itself
        return
    assert insz_checksum_ok(number)
    assert normalize_insz(number) == number


@budget(300)
@given(valid_insz(), st.integers(0, 3))
def test_valid_insz_round_trips_however_it_is_written(number: str, style: int) -> None:
    assert normalize_insz(punctuated(number, style)) == number


@budget(500)
@given(one_digit_changed(valid_insz()))
def test_one_changed_insz_digit_is_refused_unless_the_result_is_valid_too(
    pair: tuple[str, str],
) -> None:
    _, changed = pair
    if insz_checksum_ok(changed):
        return  # another valid number (the other century's rule, say): either answer is right
    with pytest.raises(InvalidNumber):
        normalize_insz(changed)


@budget(500)
@given(any_text | digit_text | valid_enterprise().map(lambda n: "BE" + n + "9"))
def test_enterprise_number_from_any_text_is_valid_or_invalid_number(value: str) -> None:
    try:
        number = normalize_enterprise_number(value)
    except InvalidNumber:
        return
    assert enterprise_ok(number)
    assert normalize_enterprise_number(number) == number


@budget(300)
@given(valid_enterprise(), st.sampled_from(["{}", "BE{}", "BE {}", "{0}.{1}.{2}", "be{}"]))
def test_valid_enterprise_number_round_trips(number: str, shape: str) -> None:
    written = (
        f"{number[:4]}.{number[4:7]}.{number[7:]}"
        if shape.startswith("{0}")
        else shape.format(number)
    )
    assert normalize_enterprise_number(written) == number


@budget(500)
@given(one_digit_changed(valid_enterprise()))
def test_one_changed_enterprise_digit_is_refused_unless_valid_too(pair: tuple[str, str]) -> None:
    _, changed = pair
    if enterprise_ok(changed):
        return
    with pytest.raises(InvalidNumber):
        normalize_enterprise_number(changed)


# --- Upload rows ---------------------------------------------------------------------------

CAMEL = {
    "insz": "insz",
    "competence_uri": "competenceUri",
    "external_ref": "externalRef",
    "assessment_method": "assessmentMethod",
    "learning_context": "learningContext",
    "acquired_on": "acquiredOn",
    "last_used_on": "lastUsedOn",
    "valid_until": "validUntil",
    "issuer_role": "issuerRole",
    "context": "context",
    "proficiency_scale": "proficiencyScale",
    "proficiency_level": "proficiencyLevel",
    "evidence": "evidence",
}
SNAKE = {camel: snake for snake, camel in CAMEL.items() if camel != snake}
HUGE = st.integers(MAX_LINE_BYTES - 64, 2 * MAX_LINE_BYTES).map(lambda n: "x" * n)
odd_text = st.sampled_from(
    ['"', '""', '"a""b', "a,b", "a\nb", "a\r\nb", "\x00", "\ufeff", "\u2028", "é", "\ud800", " "]
)
field_values = (
    parsed_json
    | odd_text
    | HUGE
    | st.sampled_from(["", "2999-01-01", "1899-12-31", "EXAM", "self_assessment", "https://u:p@x"])
)


@st.composite
def mutated_row(draw: st.DrawFn) -> dict[str, Any]:
    """A valid claim row (camelCase, as partners send it) with some fields changed or gone."""
    row: dict[str, Any] = factories.claim_input(draw(valid_insz()))
    row["externalRef"] = "ref-1"
    for name in draw(st.lists(st.sampled_from(sorted(row)), max_size=3, unique=True)):
        action = draw(st.sampled_from(["replace", "drop", "snake"]))
        if action == "drop":
            del row[name]
        elif action == "snake":  # the same field under its other spelling as well
            row[SNAKE.get(name, name + "_")] = row[name]
        else:
            row[name] = draw(field_values)
    if draw(st.booleans()):
        row[draw(json_keys)] = draw(field_values)  # an unknown field
    return row


def _dumps(row: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(row)
    except orjson.JSONEncodeError:  # a lone surrogate: what a broken client writes instead
        return json.dumps(row).encode()


@st.composite
def ndjson_body(draw: st.DrawFn) -> bytes:
    lines = draw(
        st.lists(
            mutated_row().map(_dumps)
            | st.binary(max_size=200)
            | st.sampled_from(
                [b"", b"   ", b"[]", b"{}", b"null", b'{"a":1}{"b":2}', b"\xef\xbb\xbf{}"]
            ),
            max_size=6,
        )
    )
    ending = draw(st.sampled_from([b"\n", b"\r\n", b"\r", b"\x00\n"]))
    body = draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + ending.join(lines)
    return body + draw(st.sampled_from([b"", ending]))


def assert_rows(rows: list[tuple[int, dict[str, Any] | Problem]], lines: int) -> None:
    """Line numbers are physical and increasing; every readable row meets the claim rules or
    is refused with ValidationFailed, never another exception."""
    numbers = [number for number, _ in rows]
    assert numbers == sorted(numbers)
    assert all(1 <= number <= lines for number in numbers)
    for number, row in rows:
        if isinstance(row, Problem):
            assert row.field == f"line {number}"
            continue
        validated = outcome(partial(validate, IssueClaimInput, row), ValidationFailed)
        if isinstance(validated, ValidationFailed):
            assert validated.problems


@budget(300)
@given(ndjson_body() | st.binary(max_size=2000))
@example(b"x" * (MAX_LINE_BYTES + 1))
@example(b'{"insz": "85073003328", "insz": 1}\n')
def test_ndjson_rows_from_any_bytes(body: bytes) -> None:
    rows = list(ndjson_rows(io.BytesIO(body)))
    assert_rows(rows, body.count(b"\n") + 1)


@budget(50)
@given(
    st.lists(
        valid_insz().map(lambda n: factories.claim_input(n, externalRef="ref-" + n)),
        min_size=1,
        max_size=3,
    )
)
def test_valid_ndjson_rows_are_valid_claims(rows: list[dict[str, Any]]) -> None:
    body = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    parsed = list(ndjson_rows(io.BytesIO(body)))
    assert [number for number, _ in parsed] == list(range(1, len(rows) + 1))
    for (_, row), sent in zip(parsed, rows, strict=True):
        assert isinstance(row, dict)
        assert validate(IssueClaimInput, row).insz == sent["insz"]


def csv_cells(row: dict[str, Any], header: list[str]) -> list[str]:
    flat = dict(row)
    proficiency = flat.pop("proficiency", None)
    if isinstance(proficiency, dict):
        flat["proficiencyScale"] = proficiency.get("scale")
        flat["proficiencyLevel"] = proficiency.get("level")
    if "evidence" in flat and not isinstance(flat["evidence"], str):
        flat["evidence"] = _dumps({"e": flat["evidence"]}).decode(errors="replace")[5:-1]
    return ["" if flat.get(name) is None else str(flat.get(name)) for name in header]


@st.composite
def csv_body(draw: st.DrawFn) -> str:
    header = draw(
        st.lists(st.sampled_from(sorted(CAMEL.values()) + sorted(CAMEL)), min_size=1, unique=True)
    )
    if draw(st.integers(0, 9)) == 0:
        header.append(draw(st.sampled_from(["unknown", "insz", " insz ", "", '"'])))
    out = io.StringIO()
    quoting = cast(
        "Literal[0, 1, 2]",
        draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])),
    )
    writer = csv.writer(out, quoting=quoting, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    for row in draw(st.lists(mutated_row(), max_size=4)):
        cells = csv_cells(row, header)
        if draw(st.integers(0, 4)) == 0:
            cells = cells[: draw(st.integers(0, len(cells)))]  # fewer cells than the header
        writer.writerow(cells)
    text = out.getvalue()
    if draw(st.booleans()):  # odd quoting, NULs, stray BOMs and line ends, cut short
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(odd_text | st.sampled_from(['"x"y', "\r", ",,,"])) + text[at:]
    if draw(st.integers(0, 4)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return draw(st.sampled_from(["", "\ufeff"])) + text


@budget(300)
@given(csv_body() | st.text(max_size=500))
@example('insz\n"unterminated')
@example("insz,insz\n1,2\n")
@example("\ufeffinsz\x00\n1\n")
@example("insz\n" + "x" * (2 * MAX_LINE_BYTES + 10) + "\n")
def test_csv_rows_from_any_text(text: str) -> None:
    """Any text: what the upload spooled is UTF-8 (it refuses other bytes as a whole)."""
    body = text.encode("utf-8", errors="surrogatepass")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return  # refused before parsing: tests/test_bulk_claims.py::test_upload_refusals
    try:
        rows = list(csv_rows(io.BytesIO(body)))
    except BadHeader:
        return
    assert_rows(rows, body.count(b"\n") + body.count(b"\r") + 1)


# --- Canonical JSON ------------------------------------------------------------------------


def same(read: Any, value: Any) -> bool:
    """The JSON read back is the value: tuples are arrays, and a float may come back as the
    integer JCS writes for it (1e21 is written 1e+21, but 2.0 is written 2)."""
    if isinstance(value, float):
        return isinstance(read, int | float) and float(read) == value
    if isinstance(value, dict):
        return (
            isinstance(read, dict)
            and read.keys() == value.keys()
            and all(same(read[k], v) for k, v in value.items())
        )
    if isinstance(value, list | tuple):
        return (
            isinstance(read, list)
            and len(read) == len(value)
            and all(same(r, v) for r, v in zip(read, value, strict=True))
        )
    return type(read) is type(value) and read == value


@budget(1000)
@given(json_values)
@example({"\ud800": 1})  # rfc8785 itself lets a UnicodeEncodeError out for this key
@example({"k": [0.1, 1e21, -0.0, 5e-324]})
@example(2**53)
def test_canonical_json_is_rfc8785_or_a_canonicalization_error(value: Any) -> None:
    try:
        got = canonical.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError)):
            rfc8785.dumps(value)  # the reference refuses it too
        return
    assert got == rfc8785.dumps(value)
    assert same(json.loads(got), value)
    if canonical._orjson_is_jcs(value):  # the fast path, when taken, wrote the same bytes
        try:
            fast = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            return
        assert fast == got


# --- Pagination cursors --------------------------------------------------------------------

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
stamps = st.builds(
    lambda naive, tz: naive.replace(tzinfo=UTC).astimezone(tz),
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(8999, 12, 30)),
    offsets,
)


def _raw_cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


cursors = (
    any_text
    | st.binary(max_size=80).map(_raw_cursor)
    | st.tuples(any_text, any_text).map(
        lambda p: _raw_cursor(f"{p[0]}|{p[1]}".encode(errors="surrogatepass"))
    )
    | st.tuples(st.datetimes(), st.uuids()).map(
        lambda p: _raw_cursor(f"{p[0].isoformat()}|{p[1]}".encode())
    )
    | st.tuples(stamps, st.uuids(), st.integers(0, 60), any_text).map(
        lambda p: (c := encode_cursor(p[0], p[1]))[: p[2] % (len(c) + 1)] + p[3]
    )
)


@budget(500)
@given(cursors)
@example(_raw_cursor(b"0001-01-01T00:00:00+23:59|" + str(uuid.uuid4()).encode()))
@example(_raw_cursor(b"9999-12-31T23:59:59-23:59|" + str(uuid.uuid4()).encode()))
@example("é")
def test_cursor_from_any_text_is_a_cursor_or_validation_failed(cursor: str) -> None:
    decoded = outcome(lambda: decode_cursor(cursor), ValidationFailed)
    if isinstance(decoded, ValidationFailed):
        assert [p.code for p in decoded.problems] == ["invalid_cursor"]
        return
    stamp, row_id = decoded
    assert stamp.tzinfo is not None
    assert 2000 <= stamp.astimezone(UTC).year <= 9000
    assert isinstance(row_id, uuid.UUID)


@budget(300)
@given(stamps, st.uuids())
def test_cursor_round_trips(stamp: datetime, row_id: uuid.UUID) -> None:
    decoded, decoded_id = decode_cursor(encode_cursor(stamp, row_id))
    assert (decoded, decoded.utcoffset(), decoded_id) == (stamp, stamp.utcoffset(), row_id)


# --- A posted credential -------------------------------------------------------------------

NOW = datetime(2025, 6, 1, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
SIGNER = SigningKey("k1", KEY.public_key(), KEY)
ISSUER = "did:web:passport.example:organisations:1"
METHOD = ISSUER + "#k1"
STATUS_LIST = "https://passport.example/credentials/status/1"


def _unsigned() -> dict[str, Any]:
    return {
        "@context": ACHIEVEMENT_CONTEXT,
        "id": "urn:uuid:" + str(uuid.UUID(int=1)),
        "type": ["VerifiableCredential", "AchievementCredential"],
        "name": "Python",
        "issuer": {"id": ISSUER, "type": ["Profile"], "name": "School"},
        "validFrom": "2024-01-01T00:00:00Z",
        "credentialSubject": {
            "id": "urn:uuid:" + str(uuid.UUID(int=2)),
            "type": ["AchievementSubject"],
            "achievement": {
                "id": "urn:uuid:" + str(uuid.UUID(int=3)),
                "type": ["Achievement"],
                "name": "Python",
                "criteria": {"narrative": "exam"},
                "alignment": [
                    {"type": ["Alignment"], "targetName": "Python", "targetUrl": factories.PYTHON}
                ],
            },
            "result": [{"type": ["Result"], "value": "5"}],
        },
        "credentialStatus": {
            "id": STATUS_LIST + "#5",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": "5",
            "statusListCredential": STATUS_LIST,
        },
    }


SIGNED = integrity.sign(_unsigned(), KEY, METHOD, "2024-01-01T00:00:00Z")


def known_key(method: str, issuer_id: str | None) -> SigningKey | None:
    return SIGNER if method == METHOD and issuer_id == ISSUER else None


def no_key(method: str, issuer_id: str | None) -> SigningKey | None:
    return None


def statuses(asked: list[tuple[str, int]]) -> Callable[[str, int], bool | None]:
    def lookup(url: str, index: int) -> bool | None:
        assert 0 <= index < MAX_INDEX
        asked.append((url, index))
        return index % 2 == 1 if url == STATUS_LIST else None

    return lookup


def assert_report(verification: Verification) -> None:
    """The route's own answer to the check can be written, whatever the check found."""
    report = verification_report(verification).model_dump()
    orjson.dumps(report)
    if verification.verified:
        assert verification.credential.signature_valid


def test_the_signed_template_verifies() -> None:
    """The credential the mutations start from is genuine, so a refusal says something."""
    asked: list[tuple[str, int]] = []
    verification = check(SIGNED, known_key, NOW, statuses(asked))
    assert verification.credential.errors == ["revoked"]  # index 5 is odd: see statuses()
    assert verification.credential.signature_valid
    assert asked == [(STATUS_LIST, 5)]


PATHS = [
    ("id",),
    ("type",),
    ("issuer",),
    ("issuer", "id"),
    ("validFrom",),
    ("validUntil",),
    ("credentialSubject",),
    ("credentialSubject", "achievement", "alignment"),
    ("credentialSubject", "result"),
    ("credentialStatus",),
    ("credentialStatus", "statusListIndex"),
    ("credentialStatus", "statusListCredential"),
    ("proof",),
    ("proof", "proofValue"),
    ("proof", "verificationMethod"),
    ("proof", "type"),
    ("@context",),
]
index_text = (
    st.integers(-5, 2**40).map(str)
    | st.sampled_from(
        [
            "",
            "00",
            "²",
            "٣",
            " 5",
            "5 ",
            "+5",
            "-0",
            "1e3",
            "0x10",
            "2147483647",
            "2147483648",
            "99999999999",
        ]
    )
    | st.text()  # what orjson reads from a posted body: no lone surrogates
)


@st.composite
def mutated_credential(draw: st.DrawFn) -> dict[str, Any]:
    document = json.loads(json.dumps(SIGNED))
    for path in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3)):
        parent: Any = document
        for step in path[:-1]:
            parent = parent.get(step) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if path[-1] == "statusListIndex":
            parent[path[-1]] = draw(index_text)
        elif draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(parsed_json | st.just([SIGNED]))
    return document


@budget(40)
@given(mutated_credential())
def test_a_mutated_credential_is_a_report_never_an_exception(document: dict[str, Any]) -> None:
    """With the right key known, so the JSON-LD canonicalization runs on what was posted."""
    verification = check(document, known_key, NOW, statuses([]))
    assert_report(verification)


@budget(300)
@given(parsed_json | mutated_credential())
def test_any_json_is_a_report_never_an_exception(document: Any) -> None:
    """The pre-checks (shape, types, dates, status entry) on anything; no key is known, so
    nothing reaches the JSON-LD processor."""
    verification = check(document, no_key, NOW, statuses([]))
    assert not verification.verified
    assert_report(verification)


@budget(500)
@given(index_text)
@example("²")
@example("0" * 11)
def test_status_list_index_is_parsed_as_ascii_digits_in_range(index: str) -> None:
    document = json.loads(json.dumps(SIGNED))
    document["credentialStatus"]["statusListIndex"] = index
    asked: list[tuple[str, int]] = []
    credential = check(document, no_key, NOW, statuses(asked)).credential
    in_range = index.isascii() and index.isdigit() and len(index) <= 10 and int(index) < MAX_INDEX
    assert credential.status_index == (int(index) if in_range else None)
    assert asked == ([(STATUS_LIST, int(index))] if in_range else [])


@budget(300)
@given(
    st.binary(max_size=200)
    | parsed_json.map(orjson.dumps)
    | st.dictionaries(
        st.sampled_from(["credential", "exportId", "export_id", "x"]), parsed_json
    ).map(orjson.dumps)
)
@example(b'{"exportId": "' + b"1" * 65 + b'"}')
@example(b"[" * 2000)
def test_a_verify_body_parses_or_is_refused_as_the_route_refuses_it(body: bytes) -> None:
    try:
        parsed = VerifyRequest.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValueError):
        return
    if parsed.export_id is not None:
        found = parse_export_id(parsed.export_id)
        assert found is None or isinstance(found, uuid.UUID)


@budget(500)
@given(
    any_text | st.uuids().map(lambda u: export_code(u)[: len(str(u)) % 23]) | st.uuids().map(str)
)
@example("1" * 24)
@example("z" * 23)
@example("0OIl")
def test_export_codes_decode_or_are_none(code: str) -> None:
    found = parse_export_id(code)
    assert found is None or isinstance(found, uuid.UUID)
    assert export_id_from_code(code) is None or len(code) <= 24


@budget(300)
@given(st.uuids())
def test_export_codes_round_trip(export_id: uuid.UUID) -> None:
    assert export_id_from_code(export_code(export_id)) == export_id
    assert parse_export_id(export_code(export_id)) == export_id


def _packed(raw: bytes) -> str:
    return "u" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


@st.composite
def corrupt_gzip(draw: st.DrawFn) -> str:
    packed = bytearray(gzip.compress(draw(st.binary(min_size=1, max_size=64)), mtime=0))
    at = draw(st.integers(0, len(packed) - 1))
    packed[at] ^= draw(st.integers(1, 255))
    return _packed(
        bytes(packed[: draw(st.integers(0, len(packed)))] if draw(st.booleans()) else packed)
    )


@budget(500)
@given(any_text | st.binary(max_size=100).map(_packed) | corrupt_gzip())
@example(_packed(gzip.compress(b"\x00" * 100, mtime=0)[:12] + b"\xff\xff\xff"))  # was zlib.error
def test_status_list_decodes_or_raises_status_list_error(encoded: str) -> None:
    try:
        bits = status.decode(encoded, max_bytes=1024)
    except status.StatusListError:
        return
    assert len(bits) <= 1024


@budget(200)
@given(st.sets(st.integers(0, 8 * 64 - 1), max_size=20), st.integers(-10, 8 * 64 + 10))
def test_status_list_round_trips(set_bits: set[int], index: int) -> None:
    bits = status.decode(status.encode(set_bits, size=8 * 64))
    assert {i for i in range(8 * 64) if status.is_set(bits, i)} == set_bits
    if not 0 <= index < 8 * 64:
        with pytest.raises(status.StatusListError):
            status.is_set(bits, index)
