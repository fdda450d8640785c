"""RFC 8785 (JCS) canonical JSON, at orjson's speed where the two are provably the same.

For JSON made of objects with ASCII keys, strings, booleans, null and integers that a double
holds exactly, orjson with sorted keys writes the very bytes RFC 8785 prescribes: keys in code
unit order (ASCII sorts alike in UTF-8 and UTF-16), the same string escapes (``\\b \\t \\n \\f
\\r``, ``\\u00XX`` in lower case for other controls, nothing else escaped) and integers in
decimal. ``tests/test_canonical.py`` checks that claim against the ``rfc8785`` library on
generated documents. Anything else (a float, a non-ASCII key, a huge integer) goes to
``rfc8785`` itself, so hashes never depend on which path ran.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

_SAFE_INTEGER = 2**53 - 1


def _orjson_is_jcs(value: Any) -> bool:
    """Loops rather than generators: this runs for every event and digest."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return -_SAFE_INTEGER <= value <= _SAFE_INTEGER
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or not _orjson_is_jcs(item):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:  # noqa: SIM110 - a loop, as above
            if not _orjson_is_jcs(item):
                return False
        return True
    return False  # floats, and subclasses orjson might write otherwise


def dumps(value: Any) -> bytes:
    """The RFC 8785 form of ``value``; raises ``rfc8785.CanonicalizationError`` on what JSON
    lacks, as ``rfc8785.dumps`` does (save for a lone surrogate in a key, which it lets out as
    a UnicodeEncodeError)."""
    if _orjson_is_jcs(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # e.g. a lone surrogate: let rfc8785 give its own error
    try:
        return rfc8785.dumps(value)
    except UnicodeEncodeError as exc:
        raise rfc8785.CanonicalizationError("a key is not valid Unicode") from exc


_PLAIN = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def dumps_plain(value: Any) -> bytes:
    """``dumps`` of a value its caller built itself of strings, None, booleans, integers,
    lists and objects with ASCII keys, never a float (a claim's digest body, an event it
    appends): by the rule above orjson's bytes are RFC 8785's, so the value is not walked
    first, which is half the cost of a small one. What orjson refuses (an integer beyond 53
    bits, a lone surrogate) goes to ``dumps``."""
    try:
        return orjson.dumps(value, option=_PLAIN)
    except orjson.JSONEncodeError:
        return dumps(value)
