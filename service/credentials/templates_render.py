"""HTML pages and documents from the package's Jinja templates (autoescaped)."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("service.credentials", "templates"),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
    )


def render_page(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
