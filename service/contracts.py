"""The committed API contracts, generated from code (tests fail when the files drift)."""

from __future__ import annotations

import json

from service.app import create_app
from service.settings import Settings


def openapi_json() -> str:
    app = create_app(Settings(database_url="postgresql://unused/unused"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
