"""The fast canonical JSON is byte for byte RFC 8785, as the rfc8785 library writes it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from service import canonical
from service.events.payloads import claim_payload

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8"))
    | st.text(alphabet=st.characters(max_codepoint=0x7F))  # every control and escape
)
keys = st.text(max_size=8) | st.text(alphabet="abcXYZ_-09", max_size=8)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.text(max_size=8) | st.text(alphabet="abcXYZ_-09", max_size=8), inner, max_size=5
        )
    ),
    max_leaves=30,
)


def _either(encode: Any, value: Any) -> bytes | type[Exception]:
    try:
        return bytes(encode(value))
    except Exception as exc:
        return type(exc).__mro__[-2]


@settings(max_examples=3000, deadline=None)
@given(documents)
def test_same_bytes_as_rfc8785(value: Any) -> None:
    expected = _either(rfc8785.dumps, value)
    got = _either(canonical.dumps, value)
    assert got == expected or (not isinstance(expected, bytes) and not isinstance(got, bytes))


plain_documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.text(alphabet=st.characters(codec="utf-8"))
    | st.text(alphabet=st.characters(max_codepoint=0x7F))
    # lone surrogates among ASCII: what orjson refuses and dumps_plain hands to dumps
    | st.text(alphabet=st.characters(categories=["Cs"]) | st.characters(max_codepoint=0x7F)),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=8), inner)
    ),
    max_leaves=30,
)


@settings(max_examples=3000, deadline=None)
@given(plain_documents)
def test_plain_values_need_no_walk(value: Any) -> None:
    """What ``dumps_plain`` is promised (no float, ASCII keys) it writes as RFC 8785 does,
    big integers and lone surrogates included (it hands those to ``dumps``)."""
    expected = _either(rfc8785.dumps, value)
    got = _either(canonical.dumps_plain, value)
    assert got == expected or (not isinstance(expected, bytes) and not isinstance(got, bytes))


@pytest.mark.parametrize("value", ["\ud800", {"k": ["a\udc00"]}, 2**53, {"n": -(2**60)}])
def test_what_orjson_refuses_plain_hands_to_dumps(value: Any) -> None:
    """The cases the generated ones may miss, each named: the same bytes or the same refusal."""
    expected = _either(rfc8785.dumps, value)
    assert _either(canonical.dumps_plain, value) == expected
    assert _either(canonical.dumps, value) == expected


def test_the_payloads_take_the_fast_path() -> None:
    """The event payloads and digests the service hashes are what orjson writes as JCS."""
    row = {
        "claim_id": uuid.uuid4(),
        "organisation_id": uuid.uuid4(),
        "competence_id": 12,
        "assessment_method": "exam",
        "learning_context": "formal",
        "proficiency_level": "B2",
        "acquired_on": date(2020, 1, 1),
        "last_used_on": None,
        "valid_until": date(2030, 1, 1),
        "supersedes_claim_id": None,
    }
    payload: dict[str, Any] = {
        "citizenId": str(uuid.uuid4()),
        "seq": 3,
        "occurredAt": datetime.now(UTC).isoformat(),
        "payload": claim_payload(row),
        "context": 'Cours d\'été \u2028 \x07 "quoted"',
    }
    assert canonical._orjson_is_jcs(payload)
    assert canonical.dumps(payload) == rfc8785.dumps(payload)


@pytest.mark.parametrize("value", [1.5, {"é": 1}, {"k": [0.1, 1e21]}])
def test_what_orjson_may_write_otherwise_goes_to_rfc8785(value: Any) -> None:
    assert not canonical._orjson_is_jcs(value)
    assert canonical.dumps(value) == rfc8785.dumps(value)


def test_integers_past_what_a_double_holds_are_refused_as_rfc8785_refuses_them() -> None:
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical.dumps({"n": 2**60})
