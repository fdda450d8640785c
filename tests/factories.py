"""Test data that cannot collide between tests: random but valid national and enterprise numbers."""

from __future__ import annotations

import random
import secrets
from datetime import date
from typing import Any

ESCO = "http://data.europa.eu/esco/skill/"
PYTHON = ESCO + "ccd0a1d9-afda-43d9-b901-96344886e14d"
SQL = ESCO + "598de5b0-5b58-4ea7-8058-a4bc4d18c742"
TEAMWORK = ESCO + "60c78287-22eb-4103-9c8c-28deaa460da0"
ENGLISH = ESCO + "6d3edede-8951-4621-a835-e04323300fa0"
FORKLIFT = ESCO + "28cb374e-6261-4133-8371-f9a5470145da"
# Skills enough for a citizen to hold several claims, each about another competence.
SKILLS = (PYTHON, SQL, ENGLISH, TEAMWORK, FORKLIFT)
SKILL_GROUP = "http://data.europa.eu/esco/skill/b94686e3-cce5-47a2-a8d8-402a0d0ed44e"

_rng = random.Random(secrets.randbits(64))


def insz(born_after_2000: bool = False) -> str:
    """A valid INSZ; after 2000 the check digits are computed over '2' + the first nine digits."""
    year = _rng.randint(0, 20) if born_after_2000 else _rng.randint(40, 99)
    base = f"{year:02d}{_rng.randint(1, 12):02d}{_rng.randint(1, 28):02d}{_rng.randint(1, 997):03d}"
    check = 97 - int(("2" + base) if born_after_2000 else base) % 97
    return base + f"{check:02d}"


_ENTERPRISES: set[int] = set()


def enterprise_number() -> str:
    """A valid number no other call in this run gave: organisations are registered by it, and
    some 600 registrations a run among 8 million numbers collide about one run in fifty."""
    while (number := _rng.randint(2000000, 9999999)) in _ENTERPRISES:
        pass
    _ENTERPRISES.add(number)
    first8 = f"0{number:07d}"
    return first8 + f"{97 - int(first8) % 97:02d}"


def ref() -> str:
    return "ref-" + secrets.token_hex(8)


def claim_input(citizen: str, competence: str = PYTHON, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "insz": citizen,
        "competenceUri": competence,
        "externalRef": ref(),
        "assessmentMethod": "EXAM",
        "learningContext": "FORMAL",
        "acquiredOn": "2020-06-30",
        "lastUsedOn": "2024-01-15",
        "proficiency": {"scale": "EQF", "level": "5"},
        "issuerRole": "assessor",
        "context": "Bachelor course, final exam",
        "evidence": [
            {"kind": "CERTIFICATE", "title": "Exam certificate", "url": "https://example.org/c/1"}
        ],
    }
    data.update(overrides)
    return data


TODAY = date.today()
