"""Turning Strawberry inputs into plain mappings for the domain layer's validation."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from strawberry.types.unset import UnsetType


def plain(value: Any) -> Any:
    """Dataclass inputs to dicts, enums to their values, unset fields dropped."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not isinstance(getattr(value, f.name), UnsetType)
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
