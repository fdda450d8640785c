"""National and enterprise numbers: checksums, the post-2000 rule, and keyed hashing."""

from __future__ import annotations

import pytest

from service.identity.numbers import (
    InvalidNumber,
    insz_hash,
    normalize_enterprise_number,
    normalize_insz,
)
from tests import factories


def test_valid_insz_before_2000_and_punctuation() -> None:
    assert normalize_insz("85.07.30-033.28") == "85073003328"


def test_post_2000_rule_uses_leading_2() -> None:
    number = factories.insz(born_after_2000=True)
    base, check = number[:9], int(number[9:])
    assert 97 - int(base) % 97 != check or 97 - int("2" + base) % 97 == check
    assert 97 - int("2" + base) % 97 == check
    assert normalize_insz(number) == number


@pytest.mark.parametrize("value", ["85073003329", "8507300332", "850730033288", "abcdefghijk", ""])
def test_invalid_insz(value: str) -> None:
    with pytest.raises(InvalidNumber) as info:
        normalize_insz(value)
    assert value not in str(info.value) or value == ""


def test_bis_number_is_an_insz() -> None:
    assert normalize_insz("98472899765") == "98472899765"


def test_hash_is_keyed_and_stable() -> None:
    number = factories.insz()
    assert insz_hash(number, b"k1") == insz_hash(number, b"k1")
    assert insz_hash(number, b"k1") != insz_hash(number, b"k2")
    assert len(insz_hash(number, b"k1")) == 32


def test_enterprise_number() -> None:
    assert normalize_enterprise_number("BE 0403.170.701") == "0403170701"
    with pytest.raises(InvalidNumber):
        normalize_enterprise_number("0403170702")
