"""The CV attachment as a recruiter and their software meet it: PDF/A-3 with the credential as
its associated source file, tagged (PDF/UA-1), metadata set, one page for a small passport,
one row per claim in the document's language, and a holder named whenever a name can be had.
Checked with pypdf, a library that is not the typesetter."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pypdf
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import Competence, CompetenceLabel
from tests import factories
from tests.citizen_api import grant, in_days
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue
from tests.test_credentials import SELF_DECLARE, bearer, passport_with

SET_NAME = """mutation($name: String) { setExportName(name: $name) { __typename
  ... on ExportNameSet { exportName } ... on ValidationFailed { problems { field } } } }"""


async def cv(api: Api, token: str, lang: str) -> pypdf.PdfReader:
    response = await api.http.get(f"/passports/me/cv.pdf?lang={lang}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return pypdf.PdfReader(io.BytesIO(response.content))


def text_of(reader: pypdf.PdfReader) -> str:
    return "\n".join(page.extract_text(extraction_mode="layout") for page in reader.pages)


def catalog(reader: pypdf.PdfReader) -> Any:
    return reader.trailer["/Root"]


def xmp(reader: pypdf.PdfReader) -> str:
    stream = catalog(reader)["/Metadata"].get_object()
    return str(stream.get_data().decode())


def structure(node: Any) -> Iterator[DictionaryObject]:
    """Every element of the tagged structure tree."""
    node = node.get_object() if isinstance(node, IndirectObject) else node
    if isinstance(node, ArrayObject):
        for item in node:
            yield from structure(item)
    elif isinstance(node, DictionaryObject) and "/S" in node:
        yield node
        if "/K" in node:
            yield from structure(node["/K"])


async def test_the_pdf_is_pdf_a3_and_pdf_ua_with_the_credential_as_its_source(
    api: Api, school: Partner, employer: Partner
) -> None:
    _, token, _ = await passport_with(api, school, employer)
    reader = await cv(api, token, "nl")
    metadata = xmp(reader)
    assert re.search(r"pdfaid:part[>=\"]+3", metadata) and "pdfaid:conformance" in metadata
    assert re.search(r"pdfuaid:part[>=\"]+1", metadata)
    root = catalog(reader)
    # tagged, in Dutch, its title shown in the window: PDF/UA's basics
    assert bool(root["/MarkInfo"]["/Marked"])
    assert str(root["/Lang"]).startswith("nl")
    assert bool(root["/ViewerPreferences"]["/DisplayDocTitle"])
    kinds = {str(element["/S"]) for element in structure(root["/StructTreeRoot"]["/K"])}
    assert {"/H1", "/H2", "/Table", "/TR", "/TH", "/TD", "/Figure"} <= kinds
    figures = [e for e in structure(root["/StructTreeRoot"]["/K"]) if e["/S"] == "/Figure"]
    assert all(str(figure.get("/Alt", "")).startswith("QR: http") for figure in figures)
    # the signed credential is the associated file, as the PDF's source
    [spec] = [item.get_object() for item in root["/AF"]]
    assert spec["/AFRelationship"] == "/Source"
    attached = json.loads(reader.attachments["competence-passport.credential.json"][0])
    assert "ClrCredential" in attached["type"]
    info = reader.metadata
    assert info is not None and info.title == "Competentiepaspoort: Anna Peeters"
    assert info.author and info.subject


async def test_a_small_passport_is_one_page_with_a_row_per_claim_in_its_language(
    api: Api, school: Partner, employer: Partner
) -> None:
    insz, token, _ = await passport_with(api, school, employer)
    # a second organisation vouches for the same competence, with its own level and method
    await issue(
        api,
        employer,
        factories.claim_input(
            insz,
            assessmentMethod="WORKPLACE_OBSERVATION",
            proficiency={"scale": "DESCRIPTIVE", "level": "advanced"},
            acquiredOn="2023-03-01",
        ),
    )
    declared = await api.gql(
        token,
        SELF_DECLARE,
        {"input": {"competenceUri": factories.ENGLISH, "acquiredOn": "2019-01-01"}},
    )
    assert declared["data"]["selfDeclare"]["__typename"] == "SelfDeclared"
    dutch = await cv(api, token, "nl")
    assert len(dutch.pages) == 1
    # each claim's first line holds its own level, issuer, method and date (cells wrap below)
    lines = text_of(dutch).splitlines()
    assert any(
        all(part in line for part in ("gevorderd", "Test org", "Observatie", "1 mrt"))
        for line in lines
    )
    assert any(
        all(part in line for part in ("EKK-niveau 5", "Test org", "Examen", "30 jun"))
        for line in lines
    )
    whole = text_of(dutch)
    assert re.search(r"\d{1,2} \w+ \d{4}, \d{2}:\d{2} CES?T", whole)  # when, and in which zone
    assert "POST" not in whole and "JSON" not in whole
    english = text_of(await cv(api, token, "en"))
    assert "advanced" in english and "EQF level 5" in english and "30 Jun" in english


async def test_a_label_not_in_the_documents_language_is_marked(
    api: Api, school: Partner, session: AsyncSession
) -> None:
    english_only = await session.scalar(
        select(Competence.uri)
        .where(
            Competence.concept_type == "skill",
            ~exists().where(
                CompetenceLabel.competence_id == Competence.id, CompetenceLabel.lang == "nl"
            ),
        )
        .order_by(Competence.uri)
        .limit(1)
    )
    assert english_only is not None
    insz = factories.insz()
    await issue(api, school, factories.claim_input(insz, english_only))
    reader = await cv(api, api.citizen(insz), "nl")
    content = b"".join(page.get_contents().get_data() for page in reader.pages)  # type: ignore[union-attr]
    assert b"/Lang(en)" in content  # marked as English where it is, in a Dutch document
    assert "EN: ESCO heeft voor deze competentie nog geen Nederlandse benaming" in text_of(reader)


async def test_the_holder_is_named_whenever_a_name_can_be_had(
    api: Api, school: Partner, employer: Partner
) -> None:
    _, token, _ = await passport_with(api, school, employer, name=None)
    link = await grant(api, token, expiresAt=in_days(1))
    secret = link["shareLink"]["token"]
    assert "Naam niet meegedeeld" in text_of(await cv(api, secret, "nl"))
    chosen = await api.gql(token, SET_NAME, {"name": "  Anna   Peeters "})
    assert chosen["data"]["setExportName"] == {
        "__typename": "ExportNameSet",
        "exportName": "Anna Peeters",
    }
    for bearer_token in (secret, token):  # the link's holder and the citizen alike
        reader = await cv(api, bearer_token, "nl")
        assert "Anna Peeters" in text_of(reader)
        assert reader.metadata is not None and str(reader.metadata.title).endswith("Anna Peeters")
    refused = await api.gql(token, SET_NAME, {"name": "\u0000"})
    assert refused["data"]["setExportName"]["__typename"] == "ValidationFailed"
    cleared = await api.gql(token, SET_NAME, {"name": None})
    assert cleared["data"]["setExportName"]["exportName"] is None
