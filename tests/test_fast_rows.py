"""The fast bulk reader (msgspec) and the pydantic models accept and refuse the same rows.

The fast reader only accepts; what it does not accept the models read (service/claims/fast.py).
So, on the fuzz corpus of upload rows and on generated valid rows:

- the upload's reader (fast, else the models) gives every row the models' outcome: the same
  values, request digest and claim row when accepted, the same problems when refused;
- whatever the fast reader accepts, the models accept with the same values;
- every valid row spelled as partners are told to spell it, the fast reader accepts itself.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from service.api.claims import _claim_line
from service.api.uploads import json_row
from service.claims.fast import Checked, checked, fast_mapping, fast_row
from service.claims.rules import SCALE_LEVELS, IssueClaimInput
from service.claims.service import claim_digest, claim_row
from service.errors import ValidationFailed
from service.models import Claim
from service.models.enums import AssessmentMethod, EvidenceKind, LearningContext
from service.validation import meaningful, validate
from tests import factories
from tests.test_parser_fuzz import _dumps, budget, mutated_row, valid_insz

CITIZEN = uuid.UUID("7d8c1b0e-3f52-4b8e-9a51-0c7d2e6f1a90")
ORGANISATION = uuid.UUID("0b9f3c4e-1d2a-4e5f-8a7b-6c5d4e3f2a1b")
CLAIM = uuid.UUID("5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716")
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def models(line: bytes) -> IssueClaimInput | ValidationFailed | ValueError:
    """The models' reading of an NDJSON line, as the upload read every line before."""
    try:
        return validate(IssueClaimInput, json_row(line), "row.0")
    except (ValidationFailed, ValueError) as exc:
        return exc


def upload_reader(line: bytes) -> IssueClaimInput | Checked | ValidationFailed | ValueError:
    try:
        read = _claim_line(line)
    except ValueError as exc:
        return exc
    if isinstance(read, Checked):
        return read
    try:
        return validate(IssueClaimInput, read, "row.0")
    except ValidationFailed as exc:
        return exc


def assert_same_claim(fast: Checked, spec: IssueClaimInput) -> None:
    assert fast == checked(spec)
    assert fast.digest(CITIZEN) == claim_digest(spec, CITIZEN, None)
    row = fast.claim_row(
        organisation_id=ORGANISATION,
        client_pk=None,
        citizen_id=CITIZEN,
        claim_id=CLAIM,
        competence_id=7,
        recorded_at=AT,
    )
    assert list(row) == [c.name for c in Claim.__table__.columns]  # copied in this order
    assert row == claim_row(
        spec,
        organisation_id=ORGANISATION,
        client_pk=None,
        citizen_id=CITIZEN,
        claim_id=CLAIM,
        competence_id=7,
        recorded_at=AT,
        supersedes=None,
    )


def assert_same_outcome(line: bytes) -> None:
    expected = models(line)
    got = upload_reader(line)
    fast = fast_row(line)
    if fast is not None:
        assert isinstance(expected, IssueClaimInput), (line, expected)
        assert_same_claim(fast, expected)
    if isinstance(expected, IssueClaimInput):
        assert isinstance(got, Checked | IssueClaimInput)
        assert_same_claim(got if isinstance(got, Checked) else checked(got), expected)
    elif isinstance(expected, ValidationFailed):
        assert isinstance(got, ValidationFailed)
        assert got.problems == expected.problems
    else:
        assert type(got) is type(expected) and str(got) == str(expected)


@budget(400)
@given(mutated_row())
def test_the_upload_reader_gives_every_fuzzed_row_the_models_outcome(row: dict[str, Any]) -> None:
    line = _dumps(row) + b"\n"
    assert_same_outcome(line)
    assert_same_mapping_outcome(line)


def assert_same_mapping_outcome(line: bytes) -> None:
    """A row as a mapping (CSV, ``issueClaims``): the fast reader accepts only what the
    models accept, with the same values."""
    try:
        named = json_row(line)
    except ValueError:
        return
    fast = fast_mapping(named)
    expected = models(line)
    if fast is not None:
        assert isinstance(expected, IssueClaimInput), (named, expected)
        assert_same_claim(fast, expected)


# Texts as people write them: no controls or invisible characters, no surrounding blanks.
shown = st.characters(blacklist_categories=("Cc", "Cf", "Co", "Cs", "Zl", "Zp", "Zs"))
words = st.text(shown, min_size=1, max_size=12)


def _meaningful(text: str) -> bool:
    try:
        meaningful(text)
    except ValueError:
        return False
    return True


name = st.lists(words, min_size=1, max_size=4).map(" ".join).filter(_meaningful)
context = st.lists(words, min_size=1, max_size=6).map(lambda w: "\n".join(w))
spelled = st.sampled_from([str.upper, str.lower])
EARLIEST = date(1900, 1, 1)
PRINTABLE_ASCII = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@st.composite
def dates(draw: st.DrawFn, after: date = EARLIEST, until: date | None = None) -> date:
    until = until or factories.TODAY
    return after + timedelta(days=draw(st.integers(0, (until - after).days)))


@st.composite
def evidence(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": draw(spelled)(draw(st.sampled_from(list(EvidenceKind))).value),
        "title": draw(name),
    }
    located = draw(st.sampled_from(["url", "digest", "both"]))
    if located != "digest":
        item["url"] = draw(
            st.sampled_from(
                ["https://example.org/c/1", "http://Example.ORG", "https://x.be/a?b=c#d"]
            )
        )
    if located != "url":
        item["digest"] = "sha256:" + draw(st.text("0123456789abcdef", min_size=64, max_size=64))
    if draw(st.booleans()):
        item["issuedOn"] = draw(dates()).isoformat()
    return item


@st.composite
def valid_row(draw: st.DrawFn) -> dict[str, Any]:
    acquired = draw(dates())
    row: dict[str, Any] = {
        "insz": draw(valid_insz()),
        "competenceUri": draw(st.sampled_from(factories.SKILLS)),
        "externalRef": draw(
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=200)
        ),
        "assessmentMethod": draw(spelled)(
            draw(
                st.sampled_from(
                    [m for m in AssessmentMethod if m is not AssessmentMethod.SELF_ASSESSMENT]
                )
            ).value
        ),
        "learningContext": draw(spelled)(draw(st.sampled_from(list(LearningContext))).value),
        "acquiredOn": acquired.isoformat(),
    }
    optional = {
        "lastUsedOn": st.none() | dates(acquired).map(date.isoformat),
        "validUntil": st.none() | dates(acquired, date(2100, 1, 1)).map(date.isoformat),
        "issuerRole": st.none() | name,
        "context": st.none() | context,
        "proficiency": st.none()
        | st.sampled_from(sorted(SCALE_LEVELS)).flatmap(
            lambda scale: st.fixed_dictionaries(
                {
                    "scale": st.sampled_from([scale.value, scale.value.upper()]),
                    "level": st.sampled_from(SCALE_LEVELS[scale]).flatmap(
                        lambda level: st.sampled_from([level, level.lower(), level.upper()])
                    ),
                }
            )
        ),
        "evidence": st.lists(evidence(), max_size=3),
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
        row[key] = draw(optional[key])
    return row


@budget(300)
@given(valid_row())
def test_the_fast_reader_itself_accepts_every_plainly_spelled_valid_row(
    row: dict[str, Any],
) -> None:
    line = _dumps(row) + b"\n"
    expected = models(line)
    assert isinstance(expected, IssueClaimInput), expected
    fast = fast_row(line)
    assert fast is not None
    assert_same_claim(fast, expected)
    by_mapping = fast_mapping(json_row(line))
    assert by_mapping is not None
    assert_same_claim(by_mapping, expected)


def test_what_the_fast_reader_leaves_to_the_models() -> None:
    """Spellings the models take and the fast reader does not: read by the models alike."""
    good = factories.claim_input(factories.insz())
    for row in (
        {**good, "context": " padded "},  # the models strip it
        {**good, "context": "a\r\nb"},  # the models make it a newline
        {
            "external_ref": good["externalRef"],
            **{k: v for k, v in good.items() if k != "externalRef"},
        },
    ):
        line = _dumps(row) + b"\n"
        assert fast_row(line) is None
        assert isinstance(models(line), IssueClaimInput)
        assert_same_outcome(line)
    twice = _dumps(good)[:-1] + b', "context": "other"}\n'
    assert fast_row(twice) is None
    assert_same_outcome(twice)
    assert fast_row(_dumps(good) + b"\n") is not None
