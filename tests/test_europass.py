"""Europass (ELM v3) exports checked against the official SHACL shapes of the European
Learning Model (``../shared/specs/elm/shapes``, EDC generic profile) with pySHACL. The JSON-LD
becomes RDF with the contexts the service ships, never fetched; the official examples go
through the same validator in the same test, which shows it tells a conforming credential
from one that is not."""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import rdflib
from pyld import jsonld
from pyshacl import validate
from rdflib.namespace import SH

from service.credentials.documents import ELM_FILES, load_elm_document
from tests import factories
from tests.graphql_client import Api, Partner
from tests.test_credentials import bearer, passport_with

ROOT = Path(__file__).resolve().parents[1]
ELM = ROOT.parent / "shared" / "specs" / "elm"
SHIPPED = ROOT / "service" / "credentials" / "contexts"
needs_specs = pytest.mark.skipif(not ELM.is_dir(), reason="../shared/specs/elm is not beside")
ELM_NS = "http://data.europa.eu/snb/model/elm/"
CRED = "https://www.w3.org/2018/credentials#"
EUROPASS = "{ me { europass(language: NL) } }"
LOG = "{ me { accessLog(first: 10) { edges { node { operation } } } } }"


@cache
def shapes() -> rdflib.Graph:
    graph = rdflib.Graph()
    for name in ("EDC-generic-no-cv.ttl", "EDC-generic-full.ttl"):
        graph.parse(ELM / "shapes" / name)
    return graph


@cache
def ontology() -> rdflib.Graph:
    return rdflib.Graph().parse(ELM / "ELM.ttl")


def data_graph(document: dict[str, Any]) -> rdflib.Graph:
    """RDF of the JSON-LD, every context from the service's shipped copies."""
    nquads = jsonld.to_rdf(
        copy.deepcopy(document),
        {"format": "application/n-quads", "documentLoader": load_elm_document},
    )
    return rdflib.Graph().parse(data=nquads, format="nt")


def violations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(shape constraint, path) of every violation, as pySHACL reports them."""
    conforms, report, _ = validate(
        data_graph(document),
        shacl_graph=shapes(),
        ont_graph=ontology(),
        inference="rdfs",
        advanced=True,
    )
    found = {
        (
            str(report.value(result, SH.sourceConstraintComponent)).rsplit("#", 1)[-1],
            str(report.value(result, SH.resultPath)),
        )
        for result in report.subjects(SH.resultSeverity, SH.Violation)
    }
    assert conforms == (not found)
    return found


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ELM / "examples" / name).read_text())
    if "payload" in document:  # sealed (JAdES): the credential is the signed payload
        document = json.loads(document["payload"])
    return document


@needs_specs
def test_the_shipped_elm_contexts_are_the_published_ones() -> None:
    sums: dict[str, str] = {}
    for line in (ELM.parent / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name] = digest
    where = {"credentials-v1.jsonld": "contexts/", "edc-ap-context.jsonld": "elm/"}
    for name in ELM_FILES.values():
        digest = hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest()
        assert sums[where[name] + name] == digest, name


@needs_specs
async def test_exports_and_the_official_examples_against_the_shacl_shapes(
    api: Api, school: Partner, employer: Partner
) -> None:
    _, token, _ = await passport_with(api, school, employer)
    response = await api.http.get("/passports/me/europass?lang=en", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/ld+json"
    document = response.json()
    assert violations(document) == set()
    graph = data_graph(document)
    achievements = set(
        graph.subjects(rdflib.RDF.type, rdflib.URIRef(ELM_NS + "LearningAchievement"))
    )
    assert len(achievements) == 3
    skills = {str(o) for o in graph.objects(None, rdflib.URIRef(ELM_NS + "relatedESCOSkill"))}
    assert skills == {factories.PYTHON, factories.TEAMWORK, factories.SQL}
    bodies = {
        str(o) for o in graph.objects(None, rdflib.URIRef("http://www.w3.org/ns/regorg#legalName"))
    }
    assert {school.name, employer.name} <= bodies
    assert (None, rdflib.URIRef(ELM_NS + "awardingDate"), None) in graph
    assert (None, rdflib.URIRef(ELM_NS + "grade"), None) in graph

    in_dutch = await api.gql(token, EUROPASS)
    assert violations(in_dutch["data"]["me"]["europass"]) == set()
    log = await api.gql(token, LOG)
    operations = [e["node"]["operation"] for e in log["data"]["me"]["accessLog"]["edges"]]
    assert operations.count("exportEuropass") == 2

    # The validator is not lenient: a credential without its issuer's legal name fails.
    broken = copy.deepcopy(document)
    del broken["issuer"]["legalName"]
    assert violations(broken) == {
        ("MinCountConstraintComponent", "http://www.w3.org/ns/regorg#legalName")
    }

    # The official examples, through the same validator: the sealed credential conforms; the
    # unsealed ones lack exactly what the sealing platform adds (the issue date, and the
    # issuer's eIDAS legal identifier); the annex's issuing organisation is also typed a
    # Person with no claim, and the small sample misspells the eIDAS key (a Greek capital
    # iota) and has no individual display.
    assert violations(example("Sample-CertOfPart-signed.jsonld")) == set()
    no_eidas = {
        ("NodeConstraintComponent", CRED + "issuer"),
        ("MinCountConstraintComponent", ELM_NS + "eidasLegalIdentifier"),
    }
    sealing = {*no_eidas, ("MinCountConstraintComponent", CRED + "issued")}
    assert violations(example("Sample-CertOfPart-unsigned.jsonld")) == sealing
    assert violations(example("Sample-MC-Annex1-unsigned.jsonld")) == {
        *sealing,
        ("MinCountConstraintComponent", ELM_NS + "hasClaim"),
    }
    assert violations(example("credential-sample.jsonld")) == {
        *no_eidas,
        ("MinCountConstraintComponent", ELM_NS + "individualDisplay"),
    }


async def test_nothing_to_export_and_only_for_the_citizen(api: Api, school: Partner) -> None:
    empty = await api.http.get(
        "/passports/me/europass", headers=bearer(api.citizen(factories.insz()))
    )
    assert empty.status_code == 409
    partner = await api.http.get("/passports/me/europass", headers=bearer(school.token))
    assert partner.status_code == 403
