"""Belgian identifiers: the INSZ (national register and BIS numbers) checked here, enterprise
numbers by python-stdnum."""

from __future__ import annotations

import calendar
import hmac
from datetime import date

from stdnum.be import nn, vat
from stdnum.exceptions import ValidationError

INSZ_KEY_VERSION = 1


class InvalidNumber(ValueError):
    """The value is not a valid identifier; the message never repeats the value itself."""


# Birth dates the register uses when the date was unknown (year, month and day).
UNKNOWN_DATES = frozenset({"000001", "002001", "004001"})


def normalize_insz(value: str) -> str:
    """An INSZ is a national register number or a BIS number (month + 20 or + 40): YYMMDD, a
    serial number and mod-97 check digits, computed over the nine digits for births before 2000
    and over "2" and the nine digits after. A month or day of 0 means "unknown".

    The check digits say the century, so the date must exist in that century: 29 February 1900
    does not. python-stdnum takes an impossible day for "day unknown", so an INSZ with the
    pre-2000 check digits of someone born on 29 February 2000 would pass; it is refused here."""
    if isinstance(value, str) and len(value) == 11 and value.isascii() and value.isdigit():
        compact = value  # what nn.compact leaves of it, without its cost (bulk rows)
    else:
        compact = nn.compact(value) if isinstance(value, str) else ""
    if len(compact) != 11 or not compact.isascii() or not compact.isdigit():
        raise InvalidNumber("an INSZ has 11 digits")
    century = _century(compact)
    if century is None:
        raise InvalidNumber("the INSZ check digits do not match")
    month, day = int(compact[2:4]), int(compact[4:6])
    if month % 20 > 12 or month > 52:
        raise InvalidNumber("the INSZ's month is not a month (01-12, plus 20 or 40 for BIS)")
    known = compact[:6] not in UNKNOWN_DATES and month % 20 and day
    if known and day > calendar.monthrange(century + int(compact[:2]), month % 20)[1]:
        raise InvalidNumber(
            "the INSZ's birth date does not exist in the century its check digits give"
            " (from 2000 on they are computed over 2 and the nine digits)"
        )
    return compact


def _century(number: str) -> int | None:
    """1900 or 2000, by which rule the check digits follow (never both: 2 000 000 000 is no
    multiple of 97); the 2000 rule only for years already begun."""
    base, check = number[:9], int(number[9:])
    if 97 - int(base) % 97 == check:
        return 1900
    if 97 - int("2" + base) % 97 == check and 2000 + int(number[:2]) <= date.today().year:
        return 2000
    return None


def normalize_enterprise_number(value: str) -> str:
    """Belgian enterprise number (KBO/BCE): 10 digits starting with 0 or 1, mod-97 check."""
    try:
        return str(vat.validate(value))
    except ValidationError as exc:
        raise InvalidNumber("not a valid Belgian enterprise number") from exc


def insz_hash(insz: str, key: bytes) -> bytes:
    """Keyed hash: without the server key nobody can test a guessed number against the table."""
    return normalized_insz_hash(normalize_insz(insz), key)


def normalized_insz_hash(normalized: str, key: bytes) -> bytes:
    """``insz_hash`` of a number already normalized (the bulk reader's rows are, and checking
    it again is a fair share of a bulk row's time)."""
    return hmac.digest(key, normalized.encode(), "sha256")  # one-shot: no HMAC object
