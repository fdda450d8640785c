"""From verified token claims to a Principal, consulting the client registry every request.

Looking the client up each time (one indexed query) means a suspended or deleted client, or a
suspended organisation, loses access on its very next request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal
from service.errors import Unauthenticated
from service.identity.numbers import InvalidNumber, normalize_insz
from service.models import ApiClient, Organisation
from service.models.enums import ClientStatus, OrganisationStatus, PrincipalKind, Scope
from service.settings import Settings

CLIENT_SCOPES = frozenset({Scope.CLAIMS_WRITE.value, Scope.PASSPORTS_READ.value, Scope.ADMIN.value})


async def resolve_principal(
    session: AsyncSession, claims: Mapping[str, Any], settings: Settings
) -> Principal:
    raw_scope = claims.get("scope", "")
    token_scopes = frozenset(raw_scope.split()) if isinstance(raw_scope, str) else frozenset()
    client_id = claims.get("client_id")
    if isinstance(client_id, str) and client_id:
        row = (
            await session.execute(
                select(ApiClient.id, ApiClient.scopes, Organisation.id, Organisation.kind)
                .join(Organisation, Organisation.id == ApiClient.organisation_id)
                .where(
                    ApiClient.client_id == client_id,
                    ApiClient.status == ClientStatus.ACTIVE.value,
                    Organisation.status == OrganisationStatus.ACTIVE.value,
                )
            )
        ).one_or_none()
        if row is None:
            raise Unauthenticated
        client_pk, allowed, org_id, org_kind = row
        scopes = token_scopes & frozenset(allowed) & CLIENT_SCOPES
        kind = (
            PrincipalKind.ADMIN
            if Scope.ADMIN.value in scopes
            else PrincipalKind.PARTNER
            if Scope.CLAIMS_WRITE.value in scopes
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
    if Scope.ADMIN.value in token_scopes:
        return Principal(
            kind=PrincipalKind.ADMIN, subject=str(claims["sub"]), scopes=frozenset({"admin"})
        )
    citizen_number = claims.get(settings.citizen_id_claim)
    if isinstance(citizen_number, str):
        try:
            insz = normalize_insz(citizen_number)
        except InvalidNumber as exc:
            raise Unauthenticated from exc
        return Principal(kind=PrincipalKind.CITIZEN, subject="citizen", insz=insz)
    raise Unauthenticated
