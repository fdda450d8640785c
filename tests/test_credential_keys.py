"""Key rotation keeps old exports verifiable; the texts of exports exist in both languages."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.pofile import read_po

from service.app import create_app
from service.credentials.keys import KeyFileError, rotate
from service.models.enums import (
    AssessmentMethod,
    EvidenceKind,
    LearningContext,
    OrganisationKind,
    ProficiencyScale,
    ReuseLevel,
)
from service.settings import Settings
from tests import factories
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue

LOCALES = Path(__file__).resolve().parents[1] / "service" / "credentials" / "locales"
TEMPLATES = Path(__file__).resolve().parents[1] / "service" / "credentials" / "templates"


@asynccontextmanager
async def app_with_keys(settings: Settings, keys: Path) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings.model_copy(update={"signing_keys_file": keys}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_rotation_keeps_old_exports_verifiable(
    api: Api, school: Partner, settings: Settings, tmp_path: Path
) -> None:
    insz = factories.insz()
    await issue(api, school, factories.claim_input(insz))
    me = {"Authorization": f"Bearer {api.citizen(insz)}"}
    keys = tmp_path / "signing-keys.json"
    first = rotate({"keys": []})
    keys.write_text(json.dumps(first))
    async with app_with_keys(settings, keys) as http:
        old = (await http.get("/passports/me/credential", headers=me)).json()
    old_kid = first["keys"][0]["kid"]
    assert old["proof"][0]["verificationMethod"].endswith("#" + old_kid)

    keys.write_text(json.dumps(rotate(first, retire_after=0)))  # old key: public part only
    async with app_with_keys(settings, keys) as http:
        published = [k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]]
        assert published[1] == old_kid and len(published) == 2
        report = (await http.post("/verify", json={"credential": old})).json()
        assert report["verified"] is True, report
        new = (await http.get("/passports/me/credential", headers=me)).json()
        assert new["proof"][0]["verificationMethod"].endswith("#" + published[0])
        assert (await http.post("/verify", json={"credential": new})).json()["verified"] is True

    keys.write_text(json.dumps({"keys": [rotate({"keys": []})["keys"][0]]}))  # old key gone
    async with app_with_keys(settings, keys) as http:
        report = (await http.post("/verify", json={"credential": old})).json()
        assert report["verified"] is False
        assert report["credential"]["issuerKeyKnown"] is False


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read"),
        ('{"keys": []}', "JWK Set"),
        ('{"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}', "Ed25519"),
        ('{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "' + "A" * 43 + '"}]}', "no private"),
    ],
)
def test_a_bad_key_file_stops_the_service_at_start(
    settings: Settings, tmp_path: Path, content: str, message: str
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(content)
    with pytest.raises(KeyFileError, match=message):
        create_app(settings.model_copy(update={"signing_keys_file": keys}))


def _catalogue(language: str) -> dict[str, str]:
    with (LOCALES / language / "LC_MESSAGES" / "passport.po").open("rb") as po:
        return {str(m.id): str(m.string) for m in read_po(po) if m.id}


def test_both_languages_have_every_text() -> None:
    nl, en = _catalogue("nl"), _catalogue("en")
    assert set(nl) == set(en)
    assert [k for k, v in {**nl, **en}.items() if not v.strip()] == []
    for key in nl:  # the same placeholders in both
        assert re.findall(r"{(\w+)}", nl[key]) == re.findall(r"{(\w+)}", en[key]), key
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""t\('([\w.]*\w)'""", template.read_text()))
    needed: set[Any] = used | {"reuse.none"}
    for prefix, values in (
        ("organisation", OrganisationKind),
        ("assessment", AssessmentMethod),
        ("learning", LearningContext),
        ("scale", ProficiencyScale),
        ("evidence", EvidenceKind),
        ("reuse", ReuseLevel),
    ):
        needed |= {f"{prefix}.{v.value}" for v in values}
    needed |= {f"status.{s}" for s in ("active", "revoked", "superseded", "expired", "erased")}
    assert sorted(needed - set(nl)) == []
