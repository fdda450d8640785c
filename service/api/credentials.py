"""REST routes of signed exports: the CV attachment (PDF), the signed credential (JSON),
their status lists, keys and DID documents, and verification by anyone."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from service import clock
from service.api.auth import rest_transaction
from service.api.bodies import BodyTooLarge, read_bounded
from service.api.problems import PROBLEM_RESPONSES, problem
from service.api.responses import JsonResponse
from service.api.state import AppState, app_state
from service.auth.principal import Principal
from service.credentials import europass, status
from service.credentials.clr import status_list_credential
from service.credentials.exports import (
    NO_SUCH_EXPORT,
    ExportSummary,
    SignedExport,
    citizen_exports,
    export_passport,
    find_export,
    revoke_export,
)
from service.credentials.i18n import Language, day, level_text, moment, text
from service.credentials.issuer import export_code, parse_export_id, verification_url
from service.credentials.pdf import render_cv
from service.credentials.templates_render import render_page
from service.credentials.verify import (
    CredentialCheck,
    Status,
    Verification,
    export_verification,
    verify_online,
)
from service.errors import NotFound, ValidationFailed
from service.models import CredentialExport, Organisation
from service.models.enums import PrincipalKind
from service.schema.cost import WEIGHTS
from service.strict_json import InvalidJson, strict_json

router = APIRouter(tags=["credentials"])
# Signing a passport canonicalizes one credential per claim: the costliest thing a citizen
# can ask for, so it is priced like several whole-passport reads.
EXPORT_COST = 60
VERIFY_COST = 10
PUBLIC_COST = 1
MAX_VERIFY_BYTES = 8 * 1024 * 1024
CITIZEN_ERRORS: dict[int | str, dict[str, Any]] = {
    k: v for k, v in PROBLEM_RESPONSES.items() if k in (401, 403, 404, 429, 503)
}
CITIZEN_ERRORS[409] = {**PROBLEM_RESPONSES[422], "description": "Nothing verified to export"}
CITIZEN_ERRORS[422] = PROBLEM_RESPONSES[422]
PUBLIC_ERRORS: dict[int | str, dict[str, Any]] = {
    k: v for k, v in PROBLEM_RESPONSES.items() if k in (404, 422, 429, 503)
}
LanguageQuery = Annotated[Language, Query(description="Language of the texts: nl or en")]
CREDENTIAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A signed 1EdTech CLR 2.0 ClrCredential (W3C VC 2.0, eddsa-rdfc-2022); "
    "see docs/credentials.md and the CLR 2.0 JSON schema",
    "required": ["@context", "id", "type", "issuer", "validFrom", "credentialSubject", "proof"],
}
STATUS_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A signed W3C BitstringStatusListCredential (statusPurpose revocation)",
    "required": ["@context", "id", "type", "issuer", "validFrom", "credentialSubject", "proof"],
}
DID_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A did:web DID document listing the signing keys as Multikeys",
    "required": ["@context", "id", "verificationMethod", "assertionMethod"],
}


def _anonymous(request: Request) -> Principal:
    """A verifier needs no account; the budget is per client address (never stored)."""
    host = request.client.host if request.client else "unknown"
    return Principal(kind=PrincipalKind.VERIFIER, subject=f"ip:{host}")


async def _spend_anonymous(state: AppState, request: Request, cost: int) -> Principal:
    principal = _anonymous(request)
    await state.limiter.spend(principal, cost)
    return principal


async def _export(
    state: AppState, session: AsyncSession, principal: Principal, lang: Language, operation: str
) -> SignedExport:
    return await export_passport(
        session,
        principal,
        hmac_key=state.hmac_key,
        issuer=state.issuer,
        valid_days=state.settings.export_valid_days,
        language=lang,
        operation=operation,
    )


@router.get(
    "/passports/me/credential",
    summary="Your verified competences as a signed CLR 2.0 / Open Badges 3.0 credential",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {"schema": CREDENTIAL_SCHEMA}},
            "description": "The signed credential; Location: its verification page",
        },
        **CITIZEN_ERRORS,
    },
)
async def download_credential(request: Request, lang: LanguageQuery = Language.EN) -> Response:
    """A citizen's whole passport, or for a share link's holder what the link covers."""
    state = app_state(request)
    async with rest_transaction(request, EXPORT_COST) as (session, principal):
        export = await _export(state, session, principal, lang, "exportCredential")
    return Response(
        export.body,
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="competence-passport.credential.json"',
            "Location": state.issuer.verification_url(export.export_id),
        },
    )


@router.get(
    "/passports/me/cv.pdf",
    summary="Your verified competences as a PDF to attach to a CV, with the signed credential",
    response_class=Response,
    responses={
        200: {
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            "description": "A4 PDF with the signed credential attached; Location: its page",
        },
        **CITIZEN_ERRORS,
    },
)
async def download_cv(request: Request, lang: LanguageQuery = Language.NL) -> Response:
    state = app_state(request)
    async with rest_transaction(request, EXPORT_COST) as (session, principal):
        export = await _export(state, session, principal, lang, "exportPdf")
        # Typeset before the commit: a failure leaves no export nobody received.
        pdf = await asyncio.to_thread(render_cv, export, state.issuer)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": 'attachment; filename="competence-passport.pdf"',
            "Location": state.issuer.verification_url(export.export_id),
        },
    )


EUROPASS_FILE = "competence-passport.europass.jsonld"
EUROPASS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A European Learning Model (ELM v3) EuropeanDigitalCredential, generic "
    "profile, unsealed; see README (Europass)",
    "required": ["@context", "id", "type", "issuer", "credentialSubject", "credentialSchema"],
}


@router.get(
    "/passports/me/europass",
    summary="Your verified competences as a Europass credential (European Learning Model v3)",
    response_class=Response,
    responses={
        200: {
            "content": {europass.MEDIA_TYPE: {"schema": EUROPASS_SCHEMA}},
            "description": "The ELM v3 credential (JSON-LD), to import into Europass",
        },
        **CITIZEN_ERRORS,
    },
)
async def download_europass(request: Request, lang: LanguageQuery = Language.EN) -> Response:
    """Also GraphQL me { europass }. A read of the passport, in the access log."""
    state = app_state(request)
    async with rest_transaction(request, WEIGHTS["Me.europass"]) as (session, principal):
        document = await europass.export_europass(
            session,
            principal,
            hmac_key=state.hmac_key,
            issuer=state.issuer,
            language=lang,
            issuer_legal_id=state.settings.europass_issuer_id or None,
        )
    return Response(
        orjson.dumps(document),
        media_type=europass.MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{EUROPASS_FILE}"'},
    )


class ExportItem(BaseModel):
    """One export of the citizen's passport, as ``Me.exports`` lists it."""

    id: str
    code: str = Field(description="The short code printed on the PDF")
    verificationUrl: str
    createdAt: datetime
    validUntil: datetime
    basis: str = Field(description="SELF: the citizen made it; LINK: a share link's holder did")
    language: str
    credentials: int
    revokedAt: datetime | None
    format: str = Field(description="ldp_vc (ClrCredential) or dc+sd-jwt (SD-JWT VC)")
    sentToWallet: bool


class ExportList(BaseModel):
    exports: list[ExportItem]
    nextCursor: str | None = Field(description="Pass as ?after= for the next page")


def _item(view: ExportSummary, base_url: str) -> ExportItem:
    return ExportItem(
        id=str(view.export_id),
        code=export_code(view.export_id),
        verificationUrl=verification_url(base_url, view.export_id),
        createdAt=view.created_at,
        validUntil=view.valid_until,
        basis=view.basis.value.upper(),
        language=view.language.value,
        credentials=view.credentials,
        revokedAt=view.revoked_at,
        format=view.format.value,
        sentToWallet=view.offer_id is not None,
    )


@router.get(
    "/passports/me/exports",
    summary="Every export of your passport, newest first (yours and your share links')",
    response_model=ExportList,
    responses={k: v for k, v in CITIZEN_ERRORS.items() if k != 409},
)
async def list_exports(
    request: Request,
    first: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=200)] = None,
) -> JsonResponse:
    state = app_state(request)
    async with rest_transaction(request, WEIGHTS["Me.exports"]) as (session, principal):
        page = await citizen_exports(session, principal, state.hmac_key, first=first, after=after)
    body = ExportList(
        exports=[_item(view, state.settings.base_url) for view in page.items],
        nextCursor=page.end_cursor if page.has_next_page else None,
    )
    return JsonResponse(body.model_dump(mode="json"))


@router.post(
    "/passports/me/exports/{export}/revoke",
    summary="Take back an export you handed out: every credential in it verifies as revoked",
    response_model=ExportItem,
    responses={k: v for k, v in CITIZEN_ERRORS.items() if k != 409},
)
async def revoke(
    request: Request,
    export: Annotated[str, Path(max_length=64, description="The export's id or short code")],
) -> JsonResponse:
    """Idempotent; the same as the GraphQL mutation revokeExport."""
    state = app_state(request)
    async with rest_transaction(request, WEIGHTS["Mutation.revokeExport"]) as (
        session,
        principal,
    ):
        export_id = parse_export_id(export)
        if export_id is None:
            raise NotFound(NO_SUCH_EXPORT)
        view = await revoke_export(session, principal, state.hmac_key, export_id)
    return JsonResponse(_item(view, state.settings.base_url).model_dump(mode="json"))


@router.get(
    "/credentials/status/{list_id}",
    summary="A signed BitstringStatusListCredential (revocation)",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {"schema": STATUS_LIST_SCHEMA}}},
        **PUBLIC_ERRORS,
    },
)
async def status_list(
    request: Request, list_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> Response:
    state = app_state(request)
    await _spend_anonymous(state, request, PUBLIC_COST)
    async with state.sessions() as session:
        exists, owner = await status.list_owner(session, list_id)
        if not exists:
            raise NotFound("no such status list")
        bits = await status.set_bits(session, list_id)
    document = status_list_credential(
        state.issuer, list_id, owner, status.encode(bits), clock.now().replace(microsecond=0)
    )
    return JsonResponse(document, headers={"Cache-Control": "max-age=60"})


class PublicKey(BaseModel):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class KeySet(BaseModel):
    """RFC 7517 JWK Set: every key that signed, or signs, exported credentials."""

    keys: list[PublicKey]


@router.get(
    "/.well-known/jwks.json",
    summary="The keys that sign exported credentials",
    response_model=KeySet,
)
async def jwks(request: Request) -> JsonResponse:
    return JsonResponse(app_state(request).issuer.keys.jwks())


@router.get(
    "/.well-known/did.json",
    summary="The service's did:web document",
    response_class=Response,
    responses={200: {"content": {"application/json": {"schema": DID_SCHEMA}}}},
)
async def service_did(request: Request) -> JsonResponse:
    issuer = app_state(request).issuer
    return JsonResponse(issuer.did_document(issuer.did))


@router.get(
    "/organisations/{organisation_id}/did.json",
    summary="The did:web document under which the service signs for an organisation",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {"schema": DID_SCHEMA}}},
        **{k: v for k, v in PROBLEM_RESPONSES.items() if k in (404, 422, 503)},
    },
)
async def organisation_did(request: Request, organisation_id: uuid.UUID) -> JsonResponse:
    state = app_state(request)
    async with state.sessions() as session:
        if await session.get(Organisation, organisation_id) is None:
            raise NotFound("no such organisation")
    return JsonResponse(state.issuer.did_document(state.issuer.organisation_did(organisation_id)))


class VerifyRequest(BaseModel):
    """Either the credential itself, or the id (or short code) of an export."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    credential: dict[str, Any] | None = None
    export_id: str | None = Field(default=None, alias="exportId", max_length=64)


class CheckReport(BaseModel):
    credentialId: str | None
    type: list[str]
    name: str | None
    issuer: str | None
    issuerName: str | None
    competence: str | None = None
    level: str | None = None
    validFrom: str | None
    validUntil: str | None
    signatureValid: bool | None = Field(description="null when checked by export id")
    issuerKeyKnown: bool
    expired: bool
    notYetValid: bool
    revoked: bool | None = Field(description="null: no status this service can vouch for")
    status: str
    errors: list[str]


class VerificationReport(BaseModel):
    verified: bool = Field(description="Every check below passed, for every credential")
    exportId: str | None
    matchesExport: bool | None = Field(
        description="The JSON is byte for byte what the export handed out"
    )
    credential: CheckReport
    claims: list[CheckReport]


def _report(check: CredentialCheck) -> CheckReport:
    return CheckReport(
        credentialId=check.credential_id,
        type=check.types,
        name=check.name,
        issuer=check.issuer_id,
        issuerName=check.issuer_name,
        competence=check.competence_uri,
        level=check.level,
        validFrom=check.valid_from,
        validUntil=check.valid_until,
        signatureValid=check.signature_valid,
        issuerKeyKnown=check.issuer_key_known,
        expired=check.expired,
        notYetValid=check.not_yet_valid,
        revoked=check.revoked,
        status=check.status.value,
        errors=check.errors,
    )


def verification_report(verification: Verification) -> VerificationReport:
    return VerificationReport(
        verified=verification.verified,
        exportId=export_code(verification.export_id) if verification.export_id else None,
        matchesExport=verification.matches_export,
        credential=_report(verification.credential),
        claims=[_report(c) for c in verification.claims],
    )


@router.post(
    "/verify",
    summary="Verify a credential this service signed, or an export by its id",
    response_model=VerificationReport,
    responses={**PUBLIC_ERRORS, 413: {**PROBLEM_RESPONSES[422], "description": "Over 8 MiB"}},
    # Documented here, read by the handler itself: FastAPI would read the whole body first,
    # however large, and answer bad JSON outside the problem format.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": VerifyRequest.model_json_schema()}},
        }
    },
)
async def verify(request: Request) -> Response:
    """Signature, issuer key, validity period and revocation, for the credential and each
    credential in it. Needs no account; the check is in the holder's access log."""
    state = app_state(request)
    principal = await _spend_anonymous(state, request, VERIFY_COST)
    try:
        raw = await read_bounded(request, MAX_VERIFY_BYTES)
    except BodyTooLarge:
        return problem(413, "PAYLOAD_TOO_LARGE", "a credential of more than 8 MiB")
    try:
        parsed = VerifyRequest.model_validate(strict_json(raw))
    except ValueError as exc:
        raise ValidationFailed.one("body", _why(exc)) from None
    if (parsed.credential is None) == (parsed.export_id is None):
        raise ValidationFailed.one("body", "give exactly one of credential or exportId")
    now = clock.now()
    async with state.sessions() as session:
        if parsed.export_id is not None:
            export_id = parse_export_id(parsed.export_id)
            if export_id is None:
                raise NotFound("no such export")
            record = await find_export(session, export_id, record_as=principal)
            verification = export_verification(record, state.issuer, now, Language.EN)
        else:
            verification = await verify_online(session, state.issuer, parsed.credential, now)
            if verification.export_id is not None:
                export = await session.scalar(
                    select(CredentialExport).where(CredentialExport.id == verification.export_id)
                )
                verification.matches_export = export is not None and (
                    export.document_sha256 == _digest(parsed.credential)
                )
                await find_export(session, verification.export_id, record_as=principal)
        await session.commit()
    return JsonResponse(verification_report(verification).model_dump())


def _digest(document: dict[str, Any] | None) -> bytes | None:
    """SHA-256 of the JSON as orjson writes it (as the export was served); None for a
    document orjson will not write (nested past its limit), which no export is."""
    try:
        return hashlib.sha256(orjson.dumps(document)).digest()
    except orjson.JSONEncodeError:
        return None


def _why(exc: Exception) -> str:
    if isinstance(exc, InvalidJson):
        return str(exc)
    return 'expected {"credential": {...}} or {"exportId": "..."}'


@router.get(
    "/v/{code}",
    summary="The verification page behind an export's QR code",
    response_class=HTMLResponse,
    responses={
        404: {"content": {"text/html": {}}, "description": "No such export, or erased"},
        422: PROBLEM_RESPONSES[422],
        429: PROBLEM_RESPONSES[429],
        503: PROBLEM_RESPONSES[503],
    },
)
async def verification_page(
    request: Request,
    code: Annotated[str, Path(max_length=64)],
    lang: Annotated[Language | None, Query()] = None,
) -> HTMLResponse:
    state = app_state(request)
    principal = await _spend_anonymous(state, request, VERIFY_COST)
    language = lang or _accepted_language(request)
    export_id = parse_export_id(code)
    context: dict[str, Any] = {"found": False}
    if export_id is not None:
        async with state.sessions() as session:
            try:
                record = await find_export(session, export_id, record_as=principal)
            except NotFound:
                record = None
            if record is not None:
                result = export_verification(record, state.issuer, clock.now(), language)
                context = _page(result, record.export, language)
            await session.commit()
    html = render_page(
        "verify.html",
        lang=language.value,
        t=lambda key, **values: text(language, key, **values),
        base_url=state.issuer.base_url,
        **context,
    )
    return HTMLResponse(html, status_code=200 if context["found"] else 404)


def _page(result: Verification, export: CredentialExport, language: Language) -> dict[str, Any]:
    outer = result.credential
    return {
        "found": True,
        "verdict": "ok" if result.verified else "partly" if outer.ok else "bad",
        "withdrawn": outer.status is Status.WITHDRAWN,
        "issued": moment(language, export.created_at),
        "valid_until": day(language, export.valid_until.date()),
        "expired": outer.expired,
        "key_known": outer.issuer_key_known,
        "export_status": outer.status.value,
        "rows": [
            {
                "label": c.name or "—",
                "level": level_text(language, c.scale, c.level),
                "issuer": c.issuer_name or "—",
                "status": c.status.value,
            }
            for c in result.claims
        ],
    }


def _accepted_language(request: Request) -> Language:
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in (Language.NL.value, Language.EN.value):
            return Language(tag)
    return Language.NL
