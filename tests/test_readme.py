"""The README and the behaviour agree: what it points at is in the repository, what it says the
demo reader needs is what the demo seeds, and the body it shows for POST /verify is the one
the contract takes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from service.demo import DEMO_CITIZEN_INSZ, LEGAL_BASIS, demo_guide

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted(ROOT.glob("docs/*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# A file named in code: a path with an extension the repository's own files have.
NAMED = re.compile(r"`([\w./-]+\.(?:md|py|json|graphql|sh|lock|toml|yaml|ndjson|csv))`")
# Named on purpose though not in the repository: files the examples download, the name a
# download is saved under, and the ESCO file the README explains could not be shipped.
NOT_FILES_OF_THE_REPOSITORY = {
    "credential.json",
    "passport-credential.json",
    "passport-data.json",
    "competence-passport.credential.json",
    "skills_nl.csv",
}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_pointed_at_is_in_the_repository(document: Path) -> None:
    """The README once pointed at DESIGN.md, which was not in the repository."""
    text = document.read_text()
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        assert (document.parent / target).exists(), f"{document.name} links to {target}"
    for name in NAMED.findall(text):
        if name in NOT_FILES_OF_THE_REPOSITORY or name.startswith("/"):  # "/": a route
            continue
        candidates = [ROOT / name, document.parent / name, ROOT / "examples" / name]
        found = any(path.exists() for path in candidates) or any(ROOT.rglob(Path(name).name))
        assert found, f"{document.name} names {name}, which is not in the repository"
    assert "DESIGN.md" not in text


def test_the_demo_readers_legal_basis_is_named_where_a_newcomer_looks() -> None:
    """Without it the demo reader's reads are NotFound; it was named only in service/demo.py."""
    named = f'legalBasis: "{LEGAL_BASIS}"'
    assert named in (ROOT / "README.md").read_text()
    assert any(named in line for line in demo_guide())
    assert any(DEMO_CITIZEN_INSZ in line for line in demo_guide())


def test_the_verify_body_shown_is_the_one_the_contract_takes() -> None:
    contract = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    body = contract["paths"]["/verify"]["post"]["requestBody"]["content"]["application/json"]
    fields = set(body["schema"]["properties"])
    assert fields == {"credential", "exportId"}
    readme = (ROOT / "README.md").read_text()
    for field in fields:
        assert f'{{"{field}": ' in readme, field
