"""REST routes of the wallet: the citizen's credential offers, and the OpenID4VCI issuer a
wallet talks to (metadata, token, nonce and credential endpoints, the SD-JWT VC type and its
Token Status Lists). Thin: each parses, calls one domain function, and shapes the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from service import clock
from service.api.auth import bearer, rest_transaction
from service.api.bodies import BodyTooLarge, media_type, read_bounded
from service.api.credentials import CITIZEN_ERRORS, PUBLIC_COST, PUBLIC_ERRORS, _spend_anonymous
from service.api.problems import PROBLEM_RESPONSES
from service.api.responses import JsonResponse
from service.api.state import app_state
from service.credentials import status
from service.errors import NotFound, Unauthenticated, ValidationFailed
from service.schema.cost import WEIGHTS
from service.strict_json import InvalidJson, strict_json
from service.wallet import metadata, offers, sdjwt, tokenstatus
from service.wallet.errors import OAuthError

router = APIRouter(tags=["wallet"])
# A token or credential request is anonymous (the wallet holds a secret, not an account):
# charged to the client address, like a verifier. Issuing signs like an export does.
TOKEN_COST = 5
ISSUE_COST = 60
MAX_FORM_BYTES = 8 * 1024
MAX_REQUEST_BYTES = 256 * 1024
NO_STORE = {"Cache-Control": "no-store"}
OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An OAuth 2.0 error response (RFC 6749 section 5.2, OpenID4VCI 1.0)",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}
OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "content": {"application/json": {"schema": OAUTH_ERROR_SCHEMA}},
        "description": "Refused, with the OAuth error code that says why",
    },
    429: PROBLEM_RESPONSES[429],
    503: PROBLEM_RESPONSES[503],
}


def oauth_error(exc: OAuthError) -> JsonResponse:
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{exc.error}"'
    return JsonResponse(exc.body(), status_code=exc.status, headers=headers)


class OfferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    competenceUris: list[str] | None = Field(
        default=None, description="Offer only these ESCO competences; omit for the whole passport"
    )
    language: str = Field(default="en", description="Language of labels: nl or en")


class CompetenceItem(BaseModel):
    uri: str
    label: str | None


class OfferResponse(BaseModel):
    offerId: str
    credentialOfferUri: str = Field(description="openid-credential-offer://... for the wallet")
    txCode: str = Field(description="Show it to the citizen: the wallet asks for it. Shown once")
    expiresAt: datetime
    qrCodeSvg: str = Field(description="The offer URI as a QR code (SVG) for a phone's wallet")
    credentialConfigurationIds: list[str]
    competences: list[CompetenceItem] | None = Field(
        description="What the offer covers; null: the whole passport"
    )


@router.post(
    "/passports/me/credential-offers",
    summary="Offer your verified competences to your wallet (OpenID4VCI, pre-authorized code)",
    status_code=201,
    response_model=OfferResponse,
    responses={**CITIZEN_ERRORS},
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": OfferRequest.model_json_schema()}},
        }
    },
)
async def create_offer(request: Request) -> JsonResponse:
    """The same as the GraphQL mutation createCredentialOffer. Not idempotent: the code and the
    transaction code are shown once, so a retry makes a new offer (the old one expires)."""
    state = app_state(request)
    async with rest_transaction(request, WEIGHTS["Mutation.createCredentialOffer"]) as (
        session,
        principal,
    ):
        raw = await read_bounded(request, MAX_REQUEST_BYTES)
        try:
            parsed = OfferRequest.model_validate(strict_json(raw) if raw.strip() else {})
        except (ValueError, BodyTooLarge) as exc:
            message = str(exc) if isinstance(exc, InvalidJson) else "expected an OfferRequest"
            raise ValidationFailed.one("body", message) from None
        data = {"competence_uris": parsed.competenceUris, "language": parsed.language}
        created = await offers.create_offer(
            session, principal, state.hmac_key, data, settings=state.settings
        )
    body = OfferResponse(
        offerId=str(created.offer_id),
        credentialOfferUri=created.uri,
        txCode=created.tx_code,
        expiresAt=created.expires_at,
        qrCodeSvg=created.qr_svg,
        credentialConfigurationIds=list(created.configuration_ids),
        competences=None
        if created.competences is None
        else [CompetenceItem(uri=c.uri, label=_label(c)) for c in created.competences],
    )
    return JsonResponse(body.model_dump(mode="json"), status_code=201, headers=NO_STORE)


def _label(ref: Any) -> str | None:
    labels = getattr(ref, "preferred_labels", None) or {}
    return labels.get("en") or next(iter(labels.values()), None)


METADATA_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": {"type": "object"}}}}
}


@router.get(
    "/.well-known/openid-credential-issuer",
    summary="OpenID4VCI credential issuer metadata",
    response_class=Response,
    responses=METADATA_RESPONSE,
)
async def issuer_metadata(request: Request) -> JsonResponse:
    state = app_state(request)
    document = metadata.credential_issuer_metadata(state.issuer, state.settings.wallet_batch_size)
    return JsonResponse(document, headers={"Cache-Control": "max-age=300"})


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="OAuth 2.0 authorization server metadata (RFC 8414) of the credential issuer",
    response_class=Response,
    responses=METADATA_RESPONSE,
)
async def authorization_server(request: Request) -> JsonResponse:
    document = metadata.authorization_server_metadata(app_state(request).issuer)
    return JsonResponse(document, headers={"Cache-Control": "max-age=300"})


@router.get(
    "/.well-known/jwt-vc-issuer",
    summary="The keys that sign SD-JWT VCs (SD-JWT VC JWT VC Issuer Metadata)",
    response_class=Response,
    responses=METADATA_RESPONSE,
)
async def jwt_vc_issuer(request: Request) -> JsonResponse:
    document = metadata.jwt_vc_issuer_metadata(app_state(request).issuer)
    return JsonResponse(document, headers={"Cache-Control": "max-age=300"})


@router.get(
    sdjwt.TYPE_PATH,
    summary="The SD-JWT VC type metadata of the competence passport (its vct)",
    response_class=Response,
    responses=METADATA_RESPONSE,
)
async def type_metadata(request: Request) -> JsonResponse:
    document = sdjwt.type_metadata(app_state(request).issuer.base_url)
    return JsonResponse(document, headers={"Cache-Control": "max-age=3600"})


FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type", "pre-authorized_code"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": [metadata.PRE_AUTHORIZED_GRANT]},
                        "pre-authorized_code": {"type": "string"},
                        "tx_code": {"type": "string"},
                    },
                }
            }
        },
    }
}


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme, no secret
    expires_in: int


def _form(raw: bytes) -> dict[str, str]:
    """RFC 6749: parameters sent once each; a repeated one is an invalid request."""
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a form") from None
    if any(len(values) != 1 for values in parsed.values()):
        raise OAuthError("invalid_request", "a parameter was sent more than once")
    return {name: values[0] for name, values in parsed.items()}


@router.post(
    "/oid4vci/token",
    summary="Token endpoint: a pre-authorized code (and its tx_code) for an access token",
    response_model=AccessToken,
    responses=OAUTH_ERRORS,
    openapi_extra=FORM_BODY,
)
async def token(request: Request) -> Response:
    state = app_state(request)
    await _spend_anonymous(state, request, TOKEN_COST)
    try:
        if media_type(request) != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request", "send application/x-www-form-urlencoded")
        try:
            form = _form(await read_bounded(request, MAX_FORM_BYTES))
        except BodyTooLarge:
            raise OAuthError("invalid_request", "the form is too large") from None
        async with state.sessions() as session:
            try:
                issued = await offers.redeem(session, form, state.settings)
            finally:
                await session.commit()  # a refusal keeps only its count of wrong tx_codes
    except OAuthError as exc:
        return oauth_error(exc)
    body = AccessToken(access_token=issued.access_token, expires_in=issued.expires_in)
    return JsonResponse(body.model_dump(), headers=NO_STORE)


class Nonce(BaseModel):
    c_nonce: str
    c_nonce_expires_in: int


@router.post(
    "/oid4vci/nonce",
    summary="Nonce endpoint: a fresh c_nonce for the key proofs of a credential request",
    response_model=Nonce,
    responses={429: PROBLEM_RESPONSES[429], 503: PROBLEM_RESPONSES[503]},
)
async def nonce(request: Request) -> JsonResponse:
    state = app_state(request)
    await _spend_anonymous(state, request, PUBLIC_COST)
    async with state.sessions() as session:
        value, seconds = await offers.new_nonce(session, state.settings)
        await session.commit()
    return JsonResponse({"c_nonce": value, "c_nonce_expires_in": seconds}, headers=NO_STORE)


class IssuedCredential(BaseModel):
    credential: str | dict[str, Any] = Field(
        description="dc+sd-jwt: the SD-JWT VC (compact); ldp_vc: the signed ClrCredential"
    )


class CredentialResponse(BaseModel):
    credentials: list[IssuedCredential]


CREDENTIAL_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "OpenID4VCI 1.0 credential request",
                    "properties": {
                        "credential_configuration_id": {
                            "type": "string",
                            "enum": list(metadata.CONFIGURATIONS),
                        },
                        "proofs": {
                            "type": "object",
                            "properties": {"jwt": {"type": "array", "items": {"type": "string"}}},
                        },
                    },
                }
            }
        },
    }
}


def _access_token(request: Request) -> str | None:
    """The wallet's access token; its absence is the credential endpoint's OAuth error."""
    try:
        return bearer(request)
    except Unauthenticated:
        return None


@router.post(
    "/oid4vci/credential",
    summary="Credential endpoint: credentials bound to the wallet's proven keys",
    response_model=CredentialResponse,
    responses={
        **OAUTH_ERRORS,
        401: {
            "content": {"application/json": {"schema": OAUTH_ERROR_SCHEMA}},
            "description": "invalid_token: no, an unknown or an expired access token",
        },
    },
    openapi_extra=CREDENTIAL_BODY,
)
async def credential(request: Request) -> Response:
    """Nothing is issued, and no nonce spent, unless the whole request is accepted."""
    state = app_state(request)
    await _spend_anonymous(state, request, ISSUE_COST)
    try:
        try:
            raw = await read_bounded(request, MAX_REQUEST_BYTES)
            body = strict_json(raw)
        except (BodyTooLarge, InvalidJson):
            raise OAuthError("invalid_credential_request", "the body is not JSON") from None
        async with state.sessions() as session:
            issued = await offers.issue(
                session, _access_token(request), body, issuer=state.issuer, settings=state.settings
            )
            await session.commit()
    except OAuthError as exc:
        return oauth_error(exc)
    document = {"credentials": [{"credential": c} for c in issued.credentials()]}
    return JsonResponse(document, headers=NO_STORE)


@router.get(
    "/credentials/token-status/{list_id}",
    summary="A signed IETF Token Status List (statuslist+jwt) of SD-JWT VCs",
    response_class=Response,
    responses={
        200: {"content": {tokenstatus.MEDIA_TYPE: {"schema": {"type": "string"}}}},
        **PUBLIC_ERRORS,
    },
)
async def token_status_list(
    request: Request, list_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> Response:
    state = app_state(request)
    await _spend_anonymous(state, request, PUBLIC_COST)
    async with state.sessions() as session:
        exists, owner = await status.list_owner(session, list_id)
        if not exists or owner is not None:  # SD-JWT VCs draw from the service's lists only
            raise NotFound("no such status list")
        bits = await status.set_bits(session, list_id)
    token_text = tokenstatus.status_list_token(state.issuer, list_id, bits, clock.now())
    return Response(
        token_text,
        media_type=tokenstatus.MEDIA_TYPE,
        headers={"Cache-Control": f"max-age={tokenstatus.TTL_SECONDS}"},
    )
