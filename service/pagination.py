"""Keyset cursors of (timestamp, id): opaque to clients, exact for the database."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

from service.errors import ValidationFailed


def encode_cursor(stamp: datetime, row_id: uuid.UUID) -> str:
    raw = f"{stamp.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "after") -> tuple[datetime, uuid.UUID]:
    """A cursor this service handed out, or a ValidationFailed on ``field``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|")
        parsed = datetime.fromisoformat(stamp)
        if parsed.tzinfo is None or not 2000 <= parsed.astimezone(UTC).year <= 9000:
            raise ValueError("not a time this service recorded")
        return parsed, uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise ValidationFailed.one(field, "not a valid cursor", "invalid_cursor") from exc
