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


def _with_check_digits(nine: str, *, after_2000: bool) -> str:
    return nine + f"{97 - int(('2' + nine) if after_2000 else nine) % 97:02d}"


IMPOSSIBLE = "the INSZ's birth date does not exist in the century its check digits give"


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        # 29 February 2000 written with the pre-2000 check digits: 1900 was no leap year.
        ("00022912388", False),
        (_with_check_digits("000229123", after_2000=True), True),  # 29 February 2000
        (_with_check_digits("010229123", after_2000=True), False),  # 2001: no leap year
        (_with_check_digits("010229123", after_2000=False), False),  # 1901 neither
        (_with_check_digits("960229123", after_2000=False), True),  # 1996
        (_with_check_digits("040229123", after_2000=False), True),  # 1904
        (_with_check_digits("040229123", after_2000=True), True),  # 2004
        (_with_check_digits("850431033", after_2000=False), False),  # 31 April
        (_with_check_digits("852431033", after_2000=False), False),  # 31 April, BIS
        (_with_check_digits("850000033", after_2000=False), True),  # month and day unknown
        (_with_check_digits("850700033", after_2000=False), True),  # day unknown
    ],
)
def test_the_birth_date_must_exist_in_the_century_the_check_digits_give(
    number: str, valid: bool
) -> None:
    if valid:
        assert normalize_insz(number) == number
        return
    with pytest.raises(InvalidNumber) as info:
        normalize_insz(number)
    assert str(info.value).startswith(IMPOSSIBLE)
    assert number not in str(info.value)


def test_a_month_beyond_the_bis_ranges_is_refused_with_its_reason() -> None:
    for nine in ("851300033", "853300033", "856000033"):
        with pytest.raises(InvalidNumber, match="not a month"):
            normalize_insz(_with_check_digits(nine, after_2000=False))
