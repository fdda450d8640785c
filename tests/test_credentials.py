"""Signed exports end to end: issue claims, export, verify; tampering, revocation, erasure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.credentials import status
from tests import factories
from tests.graphql_client import Api, Partner
from tests.test_claims_api import REVOKE, issue

SELF_DECLARE = """
mutation($input: SelfDeclareInput!) { selfDeclare(input: $input) { __typename } }
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def passport_with(
    api: Api, school: Partner, employer: Partner, *, name: str | None = "Anna Peeters"
) -> tuple[str, str, list[dict[str, Any]]]:
    """A citizen with three verified claims (two organisations) and their token."""
    insz = factories.insz()
    claims = [
        await issue(api, school, factories.claim_input(insz)),
        await issue(
            api,
            employer,
            factories.claim_input(
                insz,
                factories.TEAMWORK,
                assessmentMethod="WORKPLACE_OBSERVATION",
                learningContext="INFORMAL",
                proficiency=None,
                evidence=[],
            ),
        ),
        await issue(
            api, school, factories.claim_input(insz, factories.SQL, validUntil="2031-01-01")
        ),
    ]
    token = api.token(subject=insz, extra={"name": name} if name else None)
    return insz, token, [c["claim"] for c in claims]


async def export(api: Api, token: str, lang: str = "en") -> dict[str, Any]:
    response = await api.http.get(f"/passports/me/credential?lang={lang}", headers=bearer(token))
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def verify(api: Api, document: Any) -> dict[str, Any]:
    response = await api.http.post("/verify", json={"credential": document})
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def test_round_trip_issue_export_verify(api: Api, school: Partner, employer: Partner) -> None:
    _, token, _claims = await passport_with(api, school, employer)
    document = await export(api, token)
    assert document["type"] == ["VerifiableCredential", "ClrCredential"]
    inner = document["credentialSubject"]["verifiableCredential"]
    assert len(inner) == 3
    assert {c["credentialSubject"]["achievement"]["alignment"][0]["targetUrl"] for c in inner} == {
        factories.PYTHON,
        factories.TEAMWORK,
        factories.SQL,
    }
    report = await verify(api, document)
    assert report["verified"] is True, report
    assert report["matchesExport"] is True
    assert report["credential"]["signatureValid"] and report["credential"]["issuerKeyKnown"]
    assert [c["status"] for c in report["claims"]] == ["active"] * 3
    assert all(c["signatureValid"] and c["revoked"] is False for c in report["claims"])


async def test_revoking_a_claim_flips_its_bit(api: Api, school: Partner, employer: Partner) -> None:
    _, token, claims = await passport_with(api, school, employer)
    document = await export(api, token)
    python = next(
        c
        for c in document["credentialSubject"]["verifiableCredential"]
        if c["credentialSubject"]["achievement"]["alignment"][0]["targetUrl"] == factories.PYTHON
    )
    entry = python["credentialStatus"]
    before = await api.http.get(entry["statusListCredential"].replace("http://127.0.0.1:8000", ""))
    bits = status.decode(before.json()["credentialSubject"]["encodedList"])
    assert not status.is_set(bits, int(entry["statusListIndex"]))
    body = await api.gql(
        school.token,
        REVOKE,
        {"input": {"claimId": claims[0]["id"], "reason": "issued in error"}},
    )
    assert body["data"]["revokeClaim"]["__typename"] == "ClaimRevoked", body
    after = await api.http.get(entry["statusListCredential"].replace("http://127.0.0.1:8000", ""))
    bits = status.decode(after.json()["credentialSubject"]["encodedList"])
    assert status.is_set(bits, int(entry["statusListIndex"]))
    report = await verify(api, document)
    assert report["verified"] is False
    assert report["credential"]["signatureValid"] is True
    revoked = [c for c in report["claims"] if c["revoked"]]
    assert [c["competence"] for c in revoked] == [factories.PYTHON]
    assert revoked[0]["status"] == "revoked"


@pytest.mark.parametrize("where", ["outer", "inner"])
async def test_changing_the_signed_json_fails(
    api: Api, school: Partner, employer: Partner, where: str
) -> None:
    _, token, _ = await passport_with(api, school, employer)
    document = await export(api, token)
    target = (
        document if where == "outer" else document["credentialSubject"]["verifiableCredential"][1]
    )
    target["validFrom"] = "2020-01-01T00:00:00Z"
    report = await verify(api, document)
    assert report["verified"] is False
    checks = [report["credential"]] if where == "outer" else report["claims"]
    assert any(c["signatureValid"] is False for c in checks)


def qr_urls(pdf: bytes) -> list[str]:
    """Every QR code on the first page, read back from the rendered page as a phone would."""
    import pypdfium2
    import zxingcpp

    page = pypdfium2.PdfDocument(pdf)[0]
    image = page.render(scale=3).to_pil()
    return [code.text for code in zxingcpp.read_barcodes(image)]


async def test_the_pdf_has_a_qr_code_whose_url_verifies(
    api: Api, school: Partner, employer: Partner, tmp_path: Any
) -> None:
    import io

    import pypdf

    _insz, token, _ = await passport_with(api, school, employer)
    declared = await api.gql(
        token,
        SELF_DECLARE,
        {
            "input": {
                "competenceUri": factories.ENGLISH,
                "learningContext": "INFORMAL",
                "acquiredOn": "2019-01-01",
            }
        },
    )
    assert declared["data"]["selfDeclare"]["__typename"] == "SelfDeclared", declared
    response = await api.http.get("/passports/me/cv.pdf?lang=nl", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    pdf = response.content
    (tmp_path / "cv.pdf").write_bytes(pdf)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert reader.pages[0].mediabox.width == pytest.approx(595.28, abs=1)  # A4
    page_text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Competentiepaspoort" in page_text and "Anna Peeters" in page_text
    assert "Zelf opgegeven competenties" in page_text  # the self-declared section, apart
    # The signed credential travels inside the PDF.
    attached = json.loads(reader.attachments["competence-passport.credential.json"][0])
    assert len(attached["credentialSubject"]["verifiableCredential"]) == 3
    assert (await verify(api, attached))["verified"] is True
    urls = qr_urls(pdf)
    assert urls == [response.headers["location"]]
    assert urls[0] in page_text.replace("\n", "")
    page = await api.http.get(urls[0].replace("http://127.0.0.1:8000", "") + "?lang=en")
    assert page.status_code == 200
    assert "every competence in it is still confirmed" in page.text
    assert page.text.count("confirmed</td>") == 3


async def test_a_share_link_exports_its_subset_and_an_expired_one_nothing(
    api: Api, school: Partner, employer: Partner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from tests.citizen_api import grant, in_days, travel

    _, token, _ = await passport_with(api, school, employer)
    link = await grant(api, token, competenceUris=[factories.SQL], expiresAt=in_days(1 / 24))
    secret = link["shareLink"]["token"]
    shared = await export(api, secret)
    inner = shared["credentialSubject"]["verifiableCredential"]
    assert [c["credentialSubject"]["achievement"]["alignment"][0]["targetUrl"] for c in inner] == [
        factories.SQL
    ]
    assert "identifier" not in shared["credentialSubject"]  # a link holder gets no name
    assert (await verify(api, shared))["verified"] is True
    pdf = await api.http.get("/passports/me/cv.pdf?lang=en", headers=bearer(secret))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    travel(monkeypatch, timedelta(hours=2))
    for path in ("/passports/me/credential", "/passports/me/cv.pdf"):
        refused = await api.http.get(path, headers=bearer(secret))
        assert refused.status_code == 401, path
        assert refused.headers["content-type"] == "application/problem+json"


async def test_exports_and_checks_are_in_the_access_log(
    api: Api, school: Partner, employer: Partner
) -> None:
    from tests.citizen_api import access_log

    _, token, _ = await passport_with(api, school, employer)
    response = await api.http.get("/passports/me/credential", headers=bearer(token))
    code = response.headers["location"].rsplit("/", 1)[1]
    checked = await api.http.post("/verify", json={"exportId": code})
    assert checked.status_code == 200 and checked.json()["verified"] is True
    assert checked.json()["credential"]["signatureValid"] is None  # nothing posted to check
    log = await access_log(api, token)
    assert [(e["operation"], e["principalKind"]) for e in log[:2]] == [
        ("verifyExport", "VERIFIER"),
        ("exportCredential", "CITIZEN"),
    ]


async def test_erasure_revokes_every_exported_credential(
    api: Api, school: Partner, employer: Partner
) -> None:
    from tests.citizen_api import ERASE

    _, token, _ = await passport_with(api, school, employer)
    response = await api.http.get("/passports/me/credential", headers=bearer(token))
    document = response.json()
    page_url = response.headers["location"].replace("http://127.0.0.1:8000", "")
    assert (await api.http.get(page_url)).status_code == 200
    erased = await api.gql(token, ERASE)
    counts = {c["kind"]: c["count"] for c in erased["data"]["requestErasure"]["counts"]}
    assert counts["credentialExports"] == 1 and counts["statusPositionsWithdrawn"] == 4
    report = await verify(api, document)
    assert report["verified"] is False and report["exportId"] is None
    assert report["credential"]["signatureValid"] is True  # the signature itself still holds
    assert {c["status"] for c in [report["credential"], *report["claims"]]} == {"erased"}
    entry = document["credentialStatus"]
    listed = await api.http.get(entry["statusListCredential"].replace("http://127.0.0.1:8000", ""))
    bits = status.decode(listed.json()["credentialSubject"]["encodedList"])
    assert status.is_set(bits, int(entry["statusListIndex"]))
    assert (await api.http.get(page_url)).status_code == 404


async def test_nothing_to_export_is_a_clear_error(api: Api) -> None:
    response = await api.http.get(
        "/passports/me/credential", headers=bearer(api.citizen(factories.insz()))
    )
    assert response.status_code == 409 and response.json()["code"] == "INVALID_STATE"
    assert (await api.http.get("/passports/me/cv.pdf")).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"credential": []}',
        b'{"credential": {}, "exportId": "x"}',
        b'{"exportId": 5}',
        b'{"unexpected": 1}',
        b'{"credential": {"a": 1}, "credential": 2}',
    ],
)
async def test_malformed_verification_requests_get_a_typed_error(api: Api, body: bytes) -> None:
    response = await api.http.post(
        "/verify", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "VALIDATION_FAILED"


async def test_a_verification_request_naming_a_key_twice_is_refused(api: Api) -> None:
    """Read by its last copy it would be a lookup (404); one reader may see the first copy."""
    response = await api.http.post(
        "/verify",
        content=b'{"exportId": "first", "exportId": "second"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert "twice" in response.text


@pytest.mark.parametrize(
    "credential",
    [
        {},
        {"@context": "https://example.org/unknown", "type": "VerifiableCredential"},
        {
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "type": ["VerifiableCredential", "ClrCredential"],
            "credentialSubject": {"verifiableCredential": [1, "x", None, {}]},
            "proof": {"verificationMethod": 7},
        },
        {
            "@context": [{"@version": 2}],
            "proof": {"verificationMethod": "did:web:127.0.0.1%3A8000#k"},
        },
        {
            "type": ["VerifiableCredential", "ClrCredential"],
            "credentialStatus": {
                "type": "BitstringStatusListEntry",
                "statusPurpose": "revocation",
                "statusListIndex": "99999999999",
                "statusListCredential": "http://127.0.0.1:8000/credentials/status/1",
            },
        },
    ],
)
async def test_garbage_credentials_are_reported_not_valid(api: Api, credential: Any) -> None:
    report = await verify(api, credential)
    assert report["verified"] is False
    assert report["credential"]["errors"]


async def test_unknown_export_codes(api: Api) -> None:
    for code in ("1111111111111111111111", "0OIl", "x" * 64):
        page = await api.http.get(f"/v/{code}")
        assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert (await api.http.post("/verify", json={"exportId": "nope"})).status_code == 404
    assert (await api.http.get("/credentials/status/999999")).status_code == 404
    assert (await api.http.get("/credentials/status/0")).status_code == 422


async def test_an_export_waiting_for_an_erasure_finds_nothing(
    api: Api, school: Partner, employer: Partner, engine: Any
) -> None:
    """The erasure holds the citizen's lock; the export that waited for it gets a clear
    error, not an internal one, and leaves nothing behind."""
    import asyncio

    from sqlalchemy import func, select

    from service.citizens.service import find_citizen, lock_citizen
    from service.db.engine import session_factory
    from service.models import CredentialExport
    from tests.citizen_api import ERASE

    insz, token, _ = await passport_with(api, school, employer)
    async with session_factory(engine)() as session:
        citizen_id = await find_citizen(session, insz, api.settings.hmac_key())
        assert citizen_id is not None
        await lock_citizen(session, citizen_id)  # holds the erasure, queued first, back
        erased = asyncio.ensure_future(api.gql(token, ERASE))
        await asyncio.sleep(0.3)
        waiting = asyncio.ensure_future(
            api.http.get("/passports/me/credential", headers=bearer(token))
        )
        await asyncio.sleep(0.3)
        assert not erased.done() and not waiting.done()
        await session.rollback()  # the erasure goes first, then the export finds nobody
    assert (await erased)["data"]["requestErasure"]["__typename"] == "ErasureCompleted"
    response = await waiting
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "INVALID_STATE"
    async with engine.connect() as conn:
        left = await conn.scalar(
            select(func.count())
            .select_from(CredentialExport)
            .where(CredentialExport.citizen_id == citizen_id)
        )
    assert left == 0


@pytest.mark.parametrize("depth", [200, 990, 1020, 5000])
async def test_deeply_nested_credentials_are_refused_or_reported(api: Api, depth: int) -> None:
    """The body is read by the route itself, bounded, and parsed by orjson (which stops at
    1,024 levels); nothing deeper than Python's recursion limit reaches the verifier."""
    body = (
        b'{"credential":{"@context":["https://www.w3.org/ns/credentials/v2"],'
        b'"type":["VerifiableCredential","ClrCredential"],'
        b'"id":"urn:uuid:00000000-0000-0000-0000-000000000000","credentialSubject":'
        + b'{"a":' * depth
        + b"1"
        + b"}" * depth
        + b"}}"
    )
    response = await api.http.post(
        "/verify", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json()["verified"] is False
    else:
        assert response.json()["code"] == "VALIDATION_FAILED"


def _unsigned_with(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential", "AchievementCredential"],
        "issuer": "did:web:127.0.0.1%3A8000",
        "validFrom": "2020-01-01T00:00:00Z",
        "proof": {
            "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-rdfc-2022",
            "proofPurpose": "assertionMethod",
            "verificationMethod": "did:web:127.0.0.1%3A8000#x",
            "proofValue": "z1111",
        },
        **extra,
    }


async def test_canonicalization_bombs_are_refused_before_any_json_ld(api: Api) -> None:
    """Found in review: blank nodes that all refer to each other made one 1 KB request take
    seconds (factorially more with each node), with the event loop blocked."""
    import time

    nodes = [
        {
            "@id": f"_:b{i}",
            "https://example.org/p": [{"@id": f"_:b{j}"} for j in range(9) if j != i],
        }
        for i in range(9)
    ]
    alike = [{"type": ["Evidence"], "name": "same"} for _ in range(12)]
    for credential in (
        _unsigned_with({"@included": nodes}),
        _unsigned_with({"evidence": alike}),
        _unsigned_with({"credentialSubject": {"id": "_:b0"}}),
    ):
        started = time.perf_counter()
        report = await verify(api, credential)
        assert time.perf_counter() - started < 1
        assert report["verified"] is False and report["credential"]["errors"]


@pytest.mark.parametrize(
    ("index", "url"),
    [
        ("²", "http://127.0.0.1:8000/credentials/status/1"),
        ("1", "http://127.0.0.1:8000/credentials/status/²"),
    ],
)
async def test_non_ascii_digits_in_a_status_entry(api: Api, index: str, url: str) -> None:
    """Found in review: "²".isdigit() is true and int("²") fails, which was a 500."""
    entry = {
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": index,
        "statusListCredential": url,
    }
    report = await verify(api, _unsigned_with({"credentialStatus": entry}))
    assert report["verified"] is False
