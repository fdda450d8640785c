"""From verified token claims to a Principal, consulting the client registry every request.

Who a token speaks for is decided in this order:

1. A citizen: the token comes from one of the ``citizen_client_ids`` or carries the
   ``citizen_scope``, and its ``citizen_id_claim`` must be a valid national number. RFC 9068 gives
   every access token a client_id (the portal's too), so a client_id alone says nothing about who
   is calling. A citizen token that asks for ``admin`` is refused rather than quietly downgraded.
2. An administrator: the token carries scope ``admin`` and either its ``sub`` is listed in
   ``admin_subjects`` or it is a development admin token (`passport token admin`: development
   issuer, no client_id, and only while development tokens are accepted at all).
3. A registered API client: any other token with a client_id. The registry caps its scopes, so an
   API client is an administrator only if registered with ``admin``.
4. Anything else is refused.

Looking the client up each time (one indexed query) means a suspended or deleted client, or a
suspended organisation, loses access on its very next request.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal
from service.db.raw import driver_sql, fetchrow
from service.errors import AuthFailure, Unauthenticated
from service.identity.numbers import InvalidNumber, normalize_insz
from service.models import ApiClient, Organisation
from service.models.enums import ClientStatus, OrganisationStatus, PrincipalKind, Scope
from service.organisations.service import CLIENT_ID
from service.settings import Settings

CLIENT_SCOPES = frozenset(scope.value for scope in Scope)
# Compiled once to PostgreSQL's SQL and sent straight to asyncpg (prepared once per
# connection, as the hot writes are: service/db/raw.py): every request runs it, and the
# session's statement machinery cost more than the statement.
_ACTIVE_CLIENT = driver_sql(
    select(ApiClient.id, ApiClient.scopes, Organisation.id, Organisation.kind)
    .join(Organisation, Organisation.id == ApiClient.organisation_id)
    .where(
        ApiClient.client_id == bindparam("client_id"),
        ApiClient.status == ClientStatus.ACTIVE.value,
        Organisation.status == OrganisationStatus.ACTIVE.value,
    )
)


async def resolve_principal(
    session: AsyncSession, claims: Mapping[str, Any], settings: Settings
) -> Principal:
    raw_scope = claims.get("scope", "")
    token_scopes = frozenset(raw_scope.split()) if isinstance(raw_scope, str) else frozenset()
    client_id = claims.get("client_id")
    subject = str(claims["sub"])
    if client_id in settings.citizen_client_ids or settings.citizen_scope in token_scopes:
        if Scope.ADMIN.value in token_scopes:
            # A citizen-facing token never carries admin rights.
            raise Unauthenticated(AuthFailure.CITIZEN_WITH_ADMIN)
        return _citizen(claims.get(settings.citizen_id_claim), _name_claim(claims))
    if Scope.ADMIN.value in token_scopes and (
        subject in settings.admin_subjects or _dev_admin(claims, settings)
    ):
        return Principal(
            kind=PrincipalKind.ADMIN, subject=subject, scopes=frozenset({Scope.ADMIN.value})
        )
    if isinstance(client_id, str) and client_id:
        return await _registered_client(session, client_id, token_scopes)
    raise Unauthenticated(AuthFailure.NO_CALLER)


def _dev_admin(claims: Mapping[str, Any], settings: Settings) -> bool:
    return (
        settings.dev_tokens_allowed
        and claims.get("iss") == settings.dev_token_issuer
        and "client_id" not in claims
    )


def _citizen(number: object, name: object = None) -> Principal:
    if not isinstance(number, str):
        raise Unauthenticated(AuthFailure.INVALID_CITIZEN)
    try:
        insz = normalize_insz(number)
    except InvalidNumber as exc:  # its message never repeats the number
        raise Unauthenticated(
            AuthFailure.INVALID_CITIZEN, f"the citizen's national number in the token: {exc}"
        ) from exc
    return Principal(
        kind=PrincipalKind.CITIZEN, subject="citizen", insz=insz, display_name=_display_name(name)
    )


def _name_claim(claims: Mapping[str, Any]) -> object:
    """OpenID Connect's ``name``, else its ``given_name`` and ``family_name`` together."""
    if claims.get("name"):
        return claims["name"]
    given, family = claims.get("given_name"), claims.get("family_name")
    if isinstance(given, str) and isinstance(family, str):
        return f"{given} {family}"
    return None


def _display_name(name: object) -> str | None:
    """A printable name of reasonable length, or nothing (a bad one is dropped, not refused:
    the token is valid, only this optional claim is unusable)."""
    if not isinstance(name, str):
        return None
    name = " ".join(name.split())
    if not 1 <= len(name) <= 200 or not name.isprintable():
        return None
    return name


async def active_client(
    session: AsyncSession, client_id: str
) -> tuple[uuid.UUID, list[str], uuid.UUID, str] | None:
    """(client pk, registered scopes, organisation id, organisation kind) of an active client
    of an active organisation, or None; also what `passport token` checks before minting."""
    if not CLIENT_ID.fullmatch(client_id):  # not one the registry could hold (say a NUL byte)
        return None
    # A read of one row, before any other: a unit of work by itself.
    row = await fetchrow(session, _ACTIVE_CLIENT, {"client_id": client_id}, alone=True)
    return (row[0], row[1], row[2], row[3]) if row is not None else None


async def _registered_client(
    session: AsyncSession, client_id: str, token_scopes: frozenset[str]
) -> Principal:
    row = await active_client(session, client_id)
    if row is None:
        raise Unauthenticated(AuthFailure.UNKNOWN_CLIENT)
    client_pk, allowed, org_id, org_kind = row
    scopes = token_scopes & frozenset(allowed) & CLIENT_SCOPES
    kind = (
        PrincipalKind.ADMIN
        if Scope.ADMIN.value in scopes
        else PrincipalKind.PARTNER
        if Scope.CLAIMS_WRITE.value in scopes or Scope.CLAIMS_ENDORSE.value in scopes
        else PrincipalKind.READER
    )
    return Principal(
        kind=kind,
        subject=client_id,
        scopes=scopes,
        client_pk=client_pk,
        organisation_id=org_id,
        organisation_kind=org_kind,
    )
