"""The Dutch and English texts of exports, from gettext message catalogues.

Message ids are keys (``assessment.exam``), so every language, English included, comes from
its catalogue, and a key missing from one is caught by a test rather than shown raw. The
``.po`` files are compiled when first used: no build step, and what ships is what reviewers
read.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from importlib import resources

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

DOMAIN = "passport"


class Language(StrEnum):
    NL = "nl"
    EN = "en"


@cache
def translations(language: Language) -> Translations:
    path = resources.files("service.credentials") / "locales" / language / "LC_MESSAGES"
    with (path / f"{DOMAIN}.po").open("rb") as po:
        catalog = read_po(po, locale=language.value, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def text(language: Language, key: str, **values: object) -> str:
    message = translations(language).gettext(key)
    return message.format(**values) if values else message


def day(language: Language, value: date) -> str:
    return format_date(value, format="medium", locale=language.value)


def moment(language: Language, value: datetime) -> str:
    return format_datetime(value, format="medium", tzinfo=value.tzinfo, locale=language.value)


def competence_label(labels: dict[str, str], language: Language) -> str:
    """ESCO's preferred label in the language, else English, else any."""
    return labels.get(language.value) or labels.get("en") or next(iter(labels.values()), "")
