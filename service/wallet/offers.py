"""Credential offers, and the OpenID4VCI flow that redeems them (pre-authorized code flow).

1. The citizen asks for an offer (whole passport or chosen competences). They get an
   ``openid-credential-offer://`` URI (and its QR code) carrying a pre-authorized code, and a
   six-digit transaction code to type into the wallet; both are shown once. Only SHA-256 of
   the code is stored (it has 256 random bits), and HMAC(code, tx_code), so the six digits
   cannot be read or searched from the database.
2. The wallet redeems the code, with the transaction code, at the token endpoint: once, before
   the offer expires (minutes), with a few tries at the transaction code. It gets an access
   token that lives minutes and is stored hashed.
3. It fetches a ``c_nonce`` and asks the credential endpoint for a credential configuration,
   with one key proof per copy (batch issuance: distinct keys, so copies cannot be linked by
   their key). Each configuration is issued once per offer. Each copy is an export of the
   passport, in the citizen's access log, with status positions of its own.

Creating an offer is not idempotent on purpose: its secrets are shown once, so a retry must
show new ones; the unused offer a lost response leaves behind expires by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import quote

import segno
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.principal import Principal
from service.citizens.service import export_name, lock_citizen, own_citizen_id
from service.claims.rules import ConceptUri
from service.claims.views import PassportClaimsFilter, load_passport_claims
from service.credentials.exports import (
    NOTHING_TO_EXPORT,
    ExportTerms,
    Format,
    SignedExport,
    clr_signer,
    issue_export,
)
from service.credentials.i18n import Language
from service.credentials.issuer import Issuer
from service.errors import CitizenGone, InvalidState, ValidationFailed
from service.models import (
    CredentialExport,
    CredentialOffer,
    CredentialOfferCode,
    WalletAccessToken,
    WalletNonce,
)
from service.models.enums import ClaimStatus
from service.passports.service import PassportFilter, read_for_wallet
from service.settings import Settings
from service.taxonomy.search import CompetenceRef, competences_by_id, competences_by_uri
from service.validation import validate
from service.wallet import metadata, sdjwt
from service.wallet.errors import OAuthError, invalid_token
from service.wallet.proofs import HolderKey, verify_proof

OFFER_SCHEME = "openid-credential-offer://"
# Recognisable prefixes, so the log redaction and secret scanners find them.
CODE_PREFIX = "pwc_"
TOKEN_PREFIX = "pwt_"  # noqa: S105 - a prefix, no secret
NONCE_PREFIX = "pwn_"
TX_CODE_LENGTH = 6
MAX_OPEN_OFFERS = 20
MASK = 2
MAX_OFFER_COMPETENCES = 500
OPERATION = {Format.SD_JWT: "walletCredentialSdJwt", Format.LDP_VC: "walletCredentialLdp"}


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def tx_code_mac(code: str, tx_code: str) -> bytes:
    return hmac.new(code.encode(), tx_code.encode(), hashlib.sha256).digest()


class OfferInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    competence_uris: list[ConceptUri] | None = Field(
        default=None, min_length=1, max_length=MAX_OFFER_COMPETENCES
    )
    language: Language = Language.EN


@dataclass
class OfferCreated:
    offer_id: uuid.UUID
    uri: str  # openid-credential-offer://?credential_offer=...
    tx_code: str  # shown to the citizen, once
    expires_at: datetime
    competences: list[CompetenceRef] | None  # None: the whole passport
    configuration_ids: tuple[str, ...]

    @cached_property
    def qr_svg(self) -> str:
        """The URI as a QR code. A fixed mask pattern: segno otherwise tries all eight in pure
        Python, some 150 ms for an offer's version-19 code; any of the eight is standard."""
        code = segno.make(self.uri, error="m", mask=MASK)
        svg: str = code.svg_inline(scale=3, border=2)
        return svg


async def _competence_ids(session: AsyncSession, uris: list[str] | None) -> list[int] | None:
    if uris is None:
        return None
    found = await competences_by_uri(session, uris)
    for n, uri in enumerate(uris):
        if uri not in found or found[uri].concept_type != "skill":
            raise ValidationFailed.one(
                f"input.competenceUris.{n}",
                "not an ESCO skill or knowledge concept",
                "unknown_competence",
            )
    return sorted({found[uri].id for uri in uris})


async def create_offer(
    session: AsyncSession,
    principal: Principal,
    hmac_key: bytes,
    data: Mapping[str, Any],
    *,
    settings: Settings,
) -> OfferCreated:
    """An offer of the citizen's verified competences (all, or those named) to their wallet."""
    spec = validate(OfferInput, data)
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    if citizen_id is None:
        raise InvalidState(NOTHING_TO_EXPORT)
    competence_ids = await _competence_ids(session, spec.competence_uris)
    try:
        await lock_citizen(session, citizen_id)
    except CitizenGone:
        raise InvalidState(NOTHING_TO_EXPORT) from None
    claims = await load_passport_claims(
        session,
        citizen_id,
        PassportClaimsFilter(
            competence_ids=frozenset(competence_ids) if competence_ids is not None else None
        ),
    )
    if not any(c.status is ClaimStatus.ACTIVE and not c.self_declared for c in claims):
        raise InvalidState(NOTHING_TO_EXPORT)
    now = clock.now()
    open_offers = await session.scalar(
        select(func.count()).where(
            CredentialOffer.citizen_id == citizen_id,
            CredentialOffer.redeemed_at.is_(None),
            CredentialOffer.expires_at > now,
        )
    )
    if (open_offers or 0) >= MAX_OPEN_OFFERS:
        raise InvalidState(f"at most {MAX_OPEN_OFFERS} offers can be open; let one expire first")
    offer_id = uuid.uuid4()
    code = CODE_PREFIX + secrets.token_urlsafe(32)
    tx_code = f"{secrets.randbelow(10**TX_CODE_LENGTH):0{TX_CODE_LENGTH}d}"
    expires_at = now + timedelta(minutes=settings.wallet_offer_minutes)
    await session.execute(
        insert(CredentialOffer).values(
            citizen_id=citizen_id,
            offer_id=offer_id,
            created_at=now,
            expires_at=expires_at,
            competence_ids=competence_ids,
            language=spec.language.value,
            tx_code_mac=tx_code_mac(code, tx_code),
        )
    )
    await session.execute(
        insert(CredentialOfferCode).values(
            code_hash=secret_hash(code), citizen_id=citizen_id, offer_id=offer_id
        )
    )
    offer = metadata.offer_object(settings.base_url, code, TX_CODE_LENGTH)
    uri = OFFER_SCHEME + "?credential_offer=" + quote(json.dumps(offer, separators=(",", ":")))
    refs = await competences_by_id(session, competence_ids) if competence_ids else {}
    return OfferCreated(
        offer_id=offer_id,
        uri=uri,
        tx_code=tx_code,
        expires_at=expires_at,
        competences=[refs[i] for i in competence_ids if i in refs] if competence_ids else None,
        configuration_ids=metadata.CONFIGURATIONS,
    )


@dataclass(frozen=True)
class TokenIssued:
    access_token: str
    expires_in: int


async def redeem(session: AsyncSession, form: Mapping[str, str], settings: Settings) -> TokenIssued:
    """The token endpoint's pre-authorized code grant. A wrong transaction code is counted
    (the caller commits before answering); every other refusal writes nothing."""
    if form.get("grant_type") != metadata.PRE_AUTHORIZED_GRANT:
        raise OAuthError("unsupported_grant_type", "only the pre-authorized code grant is served")
    code = form.get("pre-authorized_code")
    if not code:
        raise OAuthError("invalid_request", "pre-authorized_code is missing")
    # The code, then its offer: two lookups on one shard each (the code is sharded by its hash,
    # the offer by its citizen; joined, Citus would have to repartition them).
    found = await session.scalar(
        select(CredentialOfferCode).where(CredentialOfferCode.code_hash == secret_hash(code))
    )
    if found is None:
        raise OAuthError("invalid_grant", "unknown pre-authorized code")
    try:  # one redemption at a time: a replay racing the first finds it redeemed
        await lock_citizen(session, found.citizen_id)
    except CitizenGone:
        raise OAuthError("invalid_grant", "unknown pre-authorized code") from None
    offer = (
        await session.execute(
            select(CredentialOffer)
            .where(
                CredentialOffer.citizen_id == found.citizen_id,
                CredentialOffer.offer_id == found.offer_id,
            )
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    now = clock.now()
    if offer.redeemed_at is not None:
        raise OAuthError("invalid_grant", "the pre-authorized code was already used")
    if offer.expires_at <= now:
        raise OAuthError("invalid_grant", "the credential offer has expired")
    if offer.tx_code_failures >= settings.wallet_tx_code_attempts:
        raise OAuthError("invalid_grant", "too many wrong transaction codes: ask for a new offer")
    tx_code = form.get("tx_code")
    if tx_code is None:
        raise OAuthError("invalid_request", "this offer needs its tx_code")
    if not hmac.compare_digest(tx_code_mac(code, tx_code), offer.tx_code_mac):
        await session.execute(
            update(CredentialOffer)
            .where(
                CredentialOffer.citizen_id == offer.citizen_id,
                CredentialOffer.offer_id == offer.offer_id,
            )
            .values(tx_code_failures=CredentialOffer.tx_code_failures + 1)
        )
        raise OAuthError("invalid_grant", "wrong transaction code (tx_code)")
    await session.execute(
        update(CredentialOffer)
        .where(
            CredentialOffer.citizen_id == offer.citizen_id,
            CredentialOffer.offer_id == offer.offer_id,
        )
        .values(redeemed_at=now)
    )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await session.execute(
        insert(WalletAccessToken).values(
            token_hash=secret_hash(token),
            citizen_id=offer.citizen_id,
            offer_id=offer.offer_id,
            expires_at=now + timedelta(seconds=settings.wallet_token_seconds),
        )
    )
    return TokenIssued(token, settings.wallet_token_seconds)


async def new_nonce(session: AsyncSession, settings: Settings) -> tuple[str, int]:
    """A fresh ``c_nonce`` and how many seconds it is good for."""
    nonce = NONCE_PREFIX + secrets.token_urlsafe(32)
    await session.execute(
        insert(WalletNonce).values(
            nonce_hash=secret_hash(nonce),
            expires_at=clock.now() + timedelta(seconds=settings.wallet_nonce_seconds),
        )
    )
    return nonce, settings.wallet_nonce_seconds


async def _spend_nonces(session: AsyncSession, nonces: set[str], now: datetime) -> None:
    """Every nonce named must be one we gave, unexpired and unspent; all are spent at once."""
    hashes = [secret_hash(nonce) for nonce in nonces]
    spent = await session.scalars(
        update(WalletNonce)
        .where(
            WalletNonce.nonce_hash.in_(hashes),
            WalletNonce.used_at.is_(None),
            WalletNonce.expires_at > now,
        )
        .values(used_at=now)
        .returning(WalletNonce.nonce_hash)
    )
    if len(set(spent)) != len(hashes):
        raise OAuthError("invalid_nonce", "the proof's nonce is unknown, spent or expired")


@dataclass(frozen=True)
class CredentialRequest:
    configuration_id: str
    proofs: list[str]


def parse_request(body: Any, batch_size: int) -> CredentialRequest:
    """A credential request of OpenID4VCI 1.0 (``credential_configuration_id``, ``proofs``),
    or of the drafts before it (``format``, a single ``proof``)."""
    if not isinstance(body, dict):
        raise OAuthError("invalid_credential_request", "the body must be a JSON object")
    configuration = body.get("credential_configuration_id")
    if configuration is None and "credential_identifier" in body:
        raise OAuthError(
            "invalid_credential_request", "credential_identifier is not used by this issuer"
        )
    if configuration is None and "format" in body:
        by_format = {v: k for k, v in metadata.FORMAT_OF.items()}
        if body["format"] not in by_format:
            raise OAuthError(
                "unsupported_credential_format", f"format {body['format']!r} is not issued here"
            )
        configuration = by_format[body["format"]]
    if configuration is None:
        raise OAuthError("invalid_credential_request", "credential_configuration_id is missing")
    if configuration not in metadata.FORMAT_OF:
        raise OAuthError(
            "unknown_credential_configuration", f"no credential configuration {configuration!r}"
        )
    if "proofs" in body and "proof" in body:
        raise OAuthError("invalid_credential_request", "give proofs or proof, not both")
    if "proofs" in body:
        given = body["proofs"]
        if not isinstance(given, dict) or len(given) != 1:
            raise OAuthError("invalid_proof", "proofs must name exactly one proof type")
        (proof_type, items), *_ = given.items()
        if proof_type != "jwt":
            raise OAuthError("invalid_proof", f"proof type {proof_type!r} is not supported")
        if not isinstance(items, list) or not items:
            raise OAuthError("invalid_proof", "proofs.jwt must be a non-empty array")
    elif "proof" in body:
        single = body["proof"]
        if not isinstance(single, dict) or single.get("proof_type") != "jwt":
            raise OAuthError("invalid_proof", "proof must be of proof_type jwt")
        items = [single.get("jwt")]
    else:
        raise OAuthError("invalid_proof", "a key proof (proofs.jwt) is required")
    if len(items) > batch_size:
        raise OAuthError(
            "invalid_credential_request", f"at most {batch_size} copies in one request"
        )
    return CredentialRequest(configuration, items)


@dataclass(frozen=True)
class Issued:
    format: Format
    exports: list[SignedExport]

    def credentials(self) -> list[Any]:
        return [export.document for export in self.exports]


async def issue(
    session: AsyncSession,
    access_token: str | None,
    body: Any,
    *,
    issuer: Issuer,
    settings: Settings,
) -> Issued:
    """The credential endpoint: one copy per key proof, each bound to its key. Raises
    OAuthError (the caller rolls back: nothing is issued, no nonce is spent)."""
    if not access_token:
        raise invalid_token("an access token from the token endpoint is required")
    now = clock.now()
    grant = await session.scalar(
        select(WalletAccessToken).where(WalletAccessToken.token_hash == secret_hash(access_token))
    )
    if grant is None or grant.expires_at <= now:
        raise invalid_token("the access token is unknown or expired")
    request = parse_request(body, settings.wallet_batch_size)
    holders: list[HolderKey] = [
        verify_proof(proof, audience=issuer.base_url, now=now) for proof in request.proofs
    ]
    if len({holder.rfc7638_id for holder in holders}) != len(holders):
        raise OAuthError("invalid_proof", "each copy must be bound to a key of its own")
    await _spend_nonces(session, {holder.nonce for holder in holders}, now)
    kind = Format(metadata.FORMAT_OF[request.configuration_id])
    try:
        await lock_citizen(session, grant.citizen_id)
    except CitizenGone:
        raise invalid_token("the access token is unknown or expired") from None
    already = await session.scalar(
        select(func.count()).where(
            CredentialExport.citizen_id == grant.citizen_id,
            CredentialExport.offer_id == grant.offer_id,
            CredentialExport.format == kind.value,
        )
    )
    if already:
        raise OAuthError("credential_request_denied", "this offer's credential was issued already")
    offer = await session.get_one(CredentialOffer, (grant.citizen_id, grant.offer_id))
    flt = PassportFilter(
        statuses=frozenset({ClaimStatus.ACTIVE}),
        competence_ids=frozenset(offer.competence_ids) if offer.competence_ids else None,
    )
    holder_name = await export_name(session, grant.citizen_id)
    exports = []
    for holder in holders:
        passport = await read_for_wallet(session, grant.citizen_id, flt, operation=OPERATION[kind])
        terms = ExportTerms(
            issuer=issuer,
            valid_days=settings.export_valid_days,
            language=Language(offer.language),
            holder_name=holder_name,
            format=kind,
            offer_id=offer.offer_id,
            holder_id=holder.did if kind is Format.LDP_VC else None,
        )
        signer = clr_signer(issuer) if kind is Format.LDP_VC else _sd_jwt_signer(issuer, holder)
        try:
            exports.append(await issue_export(session, grant.citizen_id, passport, terms, signer))
        except InvalidState as exc:
            raise OAuthError("credential_request_denied", exc.message) from None
    return Issued(kind, exports)


def _sd_jwt_signer(issuer: Issuer, holder: HolderKey) -> Any:
    def signed(request: Any) -> tuple[str, bytes]:
        token = sdjwt.sign(issuer, request, holder.jwk)
        return token, token.encode()

    return signed
