"""The Dutch and English texts of exports, from gettext message catalogues.

Message ids are keys (``assessment.exam``), so every language, English included, comes from
its catalogue, and a key missing from one is caught by a test rather than shown raw. The
``.po`` files are compiled when first used: no build step, and what ships is what reviewers
read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

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


def plural(language: Language, key: str, count: int, **values: object) -> str:
    """``key_one`` or ``key_other`` (both languages have these two forms)."""
    return text(language, f"{key}_one" if count == 1 else f"{key}_other", count=count, **values)


# Dates as people in Belgium write them (nl-BE; en-GB rather than US order), and moments in
# the service's time zone, named, so nobody has to guess what "21:01" meant.
LOCALES = {Language.NL: "nl_BE", Language.EN: "en_GB"}
DISPLAY_ZONE = ZoneInfo("Europe/Brussels")


def day(language: Language, value: date) -> str:
    return format_date(value, format="medium", locale=LOCALES[language])


def moment(language: Language, value: datetime) -> str:
    return format_datetime(
        value, format="d MMM y, HH:mm z", tzinfo=DISPLAY_ZONE, locale=LOCALES[language]
    )


def level_text(language: Language, scale: str | None, level: str | None) -> str | None:
    """A proficiency level in words of the language: "EKK-niveau 4", "gevorderd", "ERK B2"."""
    if scale is None or level is None:
        return None
    if scale == "descriptive":
        return text(language, f"level.{level}")
    return f"{text(language, f'scale.{scale}')} {level}"


@dataclass(frozen=True)
class Label:
    text: str
    language: str  # the language the text is really in, which may not be the one asked for

    def foreign_to(self, language: Language) -> bool:
        return self.language != language.value


def label_in(labels: dict[str, str], language: Language) -> Label:
    """ESCO's preferred label in the language, else English, else any; saying which."""
    for code in (language.value, "en", *labels):
        if labels.get(code):
            return Label(labels[code], code)
    return Label("", language.value)


def competence_label(labels: dict[str, str], language: Language) -> str:
    return label_in(labels, language).text
