"""JSON as every body and upload line of this service is read: strict about repeated keys.

Shared by the HTTP layer (service/api) and the bulk reader (service/claims/fast.py), so both
refuse exactly the same documents.
"""

from __future__ import annotations

import re
from typing import Any

import orjson


class InvalidJson(ValueError):
    """Not JSON, or JSON naming a key twice in one object; the message says which."""


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)


def strict_json(data: bytes | bytearray | str) -> Any:
    """JSON as every body of this service is read: an object naming a key twice is refused.
    orjson keeps the last copy, where a proxy, a log or a signer before us may keep the first:
    two readings of one document."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidJson("not valid JSON") from None
    if _repeats_a_key(raw, value):
        raise InvalidJson("JSON naming a key twice in one object")
    return value


def written_keys(raw: bytes) -> int:
    """How many object keys a JSON text writes (every string followed by a colon, once the
    strings are collapsed), repeats included."""
    return _JSON_STRING.sub(b'"', raw).translate(None, b" \t\n\r").count(b'":')


def _repeats_a_key(raw: bytes, value: Any) -> bool:
    """The keys written (every string followed by a colon, once the strings are collapsed)
    outnumber the keys parsed exactly when one repeats, escaped spellings ("a" and "\\u0061")
    included."""
    if not isinstance(value, dict | list):
        return False
    written = written_keys(raw)
    parsed, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            parsed += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return written != parsed
