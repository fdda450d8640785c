"""Admin operations on the partner registry."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.policy import may_hold_legal_basis, require_admin
from service.auth.principal import Principal
from service.clock import now
from service.db.raw import driver_sql, fetchrow
from service.errors import Conflict, NotFound, ValidationFailed
from service.identity.numbers import InvalidNumber, normalize_enterprise_number
from service.models import ApiClient, LegalBasis, Organisation
from service.models.enums import ClientStatus, OrganisationKind, OrganisationStatus, Scope
from service.validation import Name, Statement, validate

CLIENT_ID = re.compile(r"[A-Za-z0-9._:\-]{3,200}")
ClientId = Annotated[str, Field(pattern=f"^{CLIENT_ID.pattern}$")]
LegalBasisCode = Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
MAX_LEGAL_BASIS_TERM = timedelta(days=20 * 366)


@dataclass(frozen=True)
class OrganisationView:
    id: uuid.UUID
    kind: str
    name: str
    enterprise_number: str
    status: str


@dataclass(frozen=True)
class ClientView:
    id: uuid.UUID
    client_id: str
    organisation_id: uuid.UUID
    name: str
    scopes: tuple[str, ...]
    status: str


@dataclass(frozen=True)
class LegalBasisView:
    id: uuid.UUID
    organisation_id: uuid.UUID
    code: str
    reference: str
    valid_from: datetime
    valid_until: datetime | None
    revoked_at: datetime | None


class OrganisationInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: OrganisationKind
    name: Name
    enterprise_number: str = Field(max_length=20)

    @field_validator("enterprise_number")
    @classmethod
    def _enterprise_number(cls, value: str) -> str:
        try:
            return normalize_enterprise_number(value)
        except InvalidNumber as exc:
            raise ValueError(str(exc)) from exc


class ClientInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    organisation_id: uuid.UUID
    client_id: ClientId
    name: Name
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))


class LegalBasisInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    organisation_id: uuid.UUID
    code: LegalBasisCode
    reference: Annotated[Statement, Field(min_length=5, max_length=1000)]
    valid_until: datetime | None = None

    @field_validator("valid_until")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("must carry a time zone offset")
        if not now() < value < now() + MAX_LEGAL_BASIS_TERM:
            raise ValueError("must be in the future, within 20 years")
        return value


def _org_view(row: Organisation) -> OrganisationView:
    return OrganisationView(row.id, row.kind, row.name, row.enterprise_number, row.status)


def _client_view(row: ApiClient) -> ClientView:
    return ClientView(
        row.id, row.client_id, row.organisation_id, row.name, tuple(row.scopes), row.status
    )


async def register_organisation(
    session: AsyncSession, principal: Principal, data: dict[str, object]
) -> OrganisationView:
    require_admin(principal)
    spec = validate(OrganisationInput, data)
    inserted = await session.scalar(
        insert(Organisation)
        .values(
            id=uuid.uuid4(),
            kind=spec.kind.value,
            name=spec.name,
            enterprise_number=spec.enterprise_number,
            status=OrganisationStatus.ACTIVE.value,
        )
        .on_conflict_do_nothing(index_elements=["enterprise_number"])
        .returning(Organisation)
    )
    if inserted is None:
        existing = await session.scalar(
            select(Organisation.id).where(Organisation.enterprise_number == spec.enterprise_number)
        )
        raise Conflict("an organisation with this enterprise number exists", str(existing))
    return _org_view(inserted)


async def get_organisation(session: AsyncSession, organisation_id: uuid.UUID) -> Organisation:
    org = await session.get(Organisation, organisation_id)
    if org is None:
        raise NotFound("no such organisation")
    return org


async def list_organisations(session: AsyncSession, principal: Principal) -> list[OrganisationView]:
    require_admin(principal)
    rows = await session.scalars(select(Organisation).order_by(Organisation.name))
    return [_org_view(row) for row in rows]


async def set_organisation_status(
    session: AsyncSession,
    principal: Principal,
    organisation_id: uuid.UUID,
    status: OrganisationStatus,
) -> OrganisationView:
    require_admin(principal)
    org = await session.scalar(
        update(Organisation)
        .where(Organisation.id == organisation_id)
        .values(status=status.value)
        .returning(Organisation)
    )
    if org is None:
        raise NotFound("no such organisation")
    return _org_view(org)


async def register_client(
    session: AsyncSession, principal: Principal, data: dict[str, object]
) -> ClientView:
    require_admin(principal)
    spec = validate(ClientInput, data)
    await get_organisation(session, spec.organisation_id)
    inserted = await session.scalar(
        insert(ApiClient)
        .values(
            id=uuid.uuid4(),
            client_id=spec.client_id,
            organisation_id=spec.organisation_id,
            name=spec.name,
            scopes=sorted({scope.value for scope in spec.scopes}),
            status=ClientStatus.ACTIVE.value,
        )
        .on_conflict_do_nothing(index_elements=["client_id"])
        .returning(ApiClient)
    )
    if inserted is None:
        raise Conflict("a client with this client_id exists")
    return _client_view(inserted)


async def set_client_status(
    session: AsyncSession, principal: Principal, client_id: str, status: ClientStatus
) -> ClientView:
    require_admin(principal)
    if not CLIENT_ID.fullmatch(client_id):
        raise NotFound("no such client")  # no registered client has such an id
    client = await session.scalar(
        update(ApiClient)
        .where(ApiClient.client_id == client_id)
        .values(status=status.value)
        .returning(ApiClient)
    )
    if client is None:
        raise NotFound("no such client")
    return _client_view(client)


def _basis_view(row: LegalBasis) -> LegalBasisView:
    return LegalBasisView(
        row.id,
        row.organisation_id,
        row.code,
        row.reference,
        row.valid_from,
        row.valid_until,
        row.revoked_at,
    )


async def grant_legal_basis(
    session: AsyncSession,
    principal: Principal,
    data: dict[str, object],
    allowed_kinds: Iterable[str],
) -> LegalBasisView:
    """Only to the kinds of organisation the law names (settings.legal_basis_organisation_kinds):
    everyone else reads with the citizen's consent."""
    require_admin(principal)
    spec = validate(LegalBasisInput, data)
    org = await get_organisation(session, spec.organisation_id)
    if not may_hold_legal_basis(org.kind, allowed_kinds):
        raise ValidationFailed.one(
            "input.organisationId",
            "this kind of organisation reads only with the citizen's consent",
            "legal_basis_not_allowed",
        )
    inserted = await session.scalar(
        insert(LegalBasis)
        .values(
            id=uuid.uuid4(),
            organisation_id=spec.organisation_id,
            code=spec.code,
            reference=spec.reference,
            valid_from=now(),
            valid_until=spec.valid_until,
            granted_by=principal.subject,
        )
        .on_conflict_do_nothing(index_elements=["organisation_id", "code"])
        .returning(LegalBasis)
    )
    if inserted is None:
        raise Conflict("this organisation already has a legal basis with this code")
    return _basis_view(inserted)


async def revoke_legal_basis(
    session: AsyncSession, principal: Principal, legal_basis_id: uuid.UUID
) -> LegalBasisView:
    require_admin(principal)
    row = await session.scalar(
        update(LegalBasis)
        .where(LegalBasis.id == legal_basis_id, LegalBasis.revoked_at.is_(None))
        .values(revoked_at=now())
        .returning(LegalBasis)
    )
    if row is None:
        raise NotFound("no such active legal basis")
    return _basis_view(row)


# Built once: every read under a legal basis runs it.
# What makes a legal basis count at ``at``: the one rule, which ``read_passport`` also selects
# beside the citizen it names.
ACTIVE_BASIS = select(*(LegalBasis.__table__.c[f.name] for f in fields(LegalBasisView))).where(
    LegalBasis.organisation_id == bindparam("org"),
    LegalBasis.code == bindparam("code"),
    LegalBasis.revoked_at.is_(None),
    LegalBasis.valid_from <= bindparam("at"),
    (LegalBasis.valid_until.is_(None)) | (LegalBasis.valid_until > bindparam("at")),
)
# Checked on every reader's read: sent straight to the driver (service/db/raw.py).
_ACTIVE_BASIS = driver_sql(ACTIVE_BASIS)


def active_basis_values(organisation_id: uuid.UUID, code: str) -> dict[str, object]:
    """``ACTIVE_BASIS``'s parameters: an organisation's basis by code, now."""
    return {"org": organisation_id, "code": code, "at": now()}


def active_basis_view(row: Sequence[object]) -> LegalBasisView:
    """The basis in the first columns of a row that selected ``ACTIVE_BASIS``'s."""
    return LegalBasisView(*row[:_BASIS_COLUMNS])  # type: ignore[arg-type]


_BASIS_COLUMNS = len(fields(LegalBasisView))


async def active_legal_basis(
    session: AsyncSession, organisation_id: uuid.UUID, code: str
) -> LegalBasisView | None:
    row = await fetchrow(session, _ACTIVE_BASIS, active_basis_values(organisation_id, code))
    return None if row is None else active_basis_view(row)
