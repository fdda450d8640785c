"""Belgian identifiers, validated by python-stdnum (checksums incl. the post-2000 INSZ rule)."""

from __future__ import annotations

import hashlib
import hmac

from stdnum.be import bis, nn, vat
from stdnum.exceptions import ValidationError

INSZ_KEY_VERSION = 1


class InvalidNumber(ValueError):
    """The value is not a valid identifier; the message never repeats the value itself."""


def normalize_insz(value: str) -> str:
    """An INSZ is a national register number or a BIS number: 11 digits with a mod-97 check."""
    compact = nn.compact(value) if isinstance(value, str) else ""
    if len(compact) != 11 or not compact.isdigit():
        raise InvalidNumber("an INSZ has 11 digits")
    if not (nn.is_valid(compact) or bis.is_valid(compact)):
        raise InvalidNumber("the INSZ check digits do not match")
    return compact


def normalize_enterprise_number(value: str) -> str:
    """Belgian enterprise number (KBO/BCE): 10 digits starting with 0 or 1, mod-97 check."""
    try:
        return str(vat.validate(value))
    except ValidationError as exc:
        raise InvalidNumber("not a valid Belgian enterprise number") from exc


def insz_hash(insz: str, key: bytes) -> bytes:
    """Keyed hash: without the server key nobody can test a guessed number against the table."""
    return hmac.new(key, normalize_insz(insz).encode(), hashlib.sha256).digest()
