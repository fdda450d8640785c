"""Parsing IDs given by clients; a malformed ID is simply not found."""

from __future__ import annotations

import uuid

from service.errors import NotFound


def parse_uuid(value: str, what: str = "object") -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"no {what} with this id") from None
