"""Team checks and the consents that answer them.

An organisation (its reading client, ``passports:read``) opens a team check, a named
invitation, and hands its id to its staff through its own channels: the service knows no
staff lists. Each citizen decides with a grant of their own (``join_team_check``): to that
organisation, for the purpose ``TEAM_PURPOSE``, until an expiry of at most a year, for the
whole passport or chosen competences, and either NAMED (the employer sees their own result)
or COUNTED (they are only part of the team's numbers). Such a grant is read by the team check
and by nothing else; withdrawing it (``revokeAccess``) works from the next request on, as for
every grant. A closed team check takes no new consents and is left out of checks.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import canonical, clock
from service.auth.policy import require_citizen, require_reader
from service.auth.principal import Principal
from service.claims.rules import ConceptUri
from service.consent.service import (
    MAX_GRANT_COMPETENCES,
    GrantOutcome,
    NewGrant,
    OrganisationRef,
    TeamCheckRef,
    before_grant,
    check_term,
    earlier_grant,
    grant_competences,
    organisation_ref,
    record_grant,
    team_consent_counts,
    zoned,
)
from service.errors import Conflict, InvalidState, NotFound
from service.models import Organisation, TeamCheck
from service.models.enums import GranteeKind, OrganisationStatus, TeamCheckStatus, TeamDisclosure
from service.validation import IdempotencyKey, Name, validate

TEAM_PURPOSE = "team competence check"
NO_TEAM_CHECK = "no open team check with this id"


class TeamCheckInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    name: Name
    external_ref: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")


class JoinInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    team_check_id: uuid.UUID
    disclosure: TeamDisclosure
    expires_at: datetime
    competence_uris: list[ConceptUri] | None = Field(
        default=None, min_length=1, max_length=MAX_GRANT_COMPETENCES
    )
    idempotency_key: IdempotencyKey

    @field_validator("expires_at")
    @classmethod
    def _zoned(cls, value: datetime) -> datetime:
        return zoned(value)

    def digest(self) -> bytes:
        body = self.model_dump(mode="json", exclude={"idempotency_key"})
        body["kind"] = "team_check"  # never equal to a grantAccess request's digest
        return hashlib.sha256(canonical.dumps(body)).digest()


@dataclass(frozen=True)
class TeamCheckView:
    id: uuid.UUID
    organisation: OrganisationRef
    name: str
    external_ref: str
    created_at: datetime
    closed_at: datetime | None
    named: int | None = None  # active consents, for the organisation's own list only
    counted: int | None = None

    @property
    def status(self) -> TeamCheckStatus:
        return TeamCheckStatus.OPEN if self.closed_at is None else TeamCheckStatus.CLOSED


def _view(
    row: TeamCheck, org: Organisation, counts: Mapping[TeamDisclosure, int] | None = None
) -> TeamCheckView:
    return TeamCheckView(
        id=row.id,
        organisation=OrganisationRef(org.id, org.name, org.kind, org.enterprise_number),
        name=row.name,
        external_ref=row.external_ref,
        created_at=row.created_at,
        closed_at=row.closed_at,
        named=None if counts is None else counts.get(TeamDisclosure.NAMED, 0),
        counted=None if counts is None else counts.get(TeamDisclosure.COUNTED, 0),
    )


async def create_team_check(
    session: AsyncSession, principal: Principal, data: Mapping[str, Any]
) -> tuple[TeamCheckView, bool]:
    """Idempotent by the organisation's reference: the same again returns the team check
    (False: not created now); the reference with another name is a conflict."""
    organisation_id = require_reader(principal)
    spec = validate(TeamCheckInput, data)
    made = await session.scalar(
        insert(TeamCheck)
        .values(
            id=uuid.uuid4(),
            organisation_id=organisation_id,
            external_ref=spec.external_ref,
            name=spec.name,
            created_at=clock.now(),
        )
        .on_conflict_do_nothing(index_elements=["organisation_id", "external_ref"])
        .returning(TeamCheck)
    )
    row = made or await session.scalar(
        select(TeamCheck).where(
            TeamCheck.organisation_id == organisation_id,
            TeamCheck.external_ref == spec.external_ref,
        )
    )
    assert row is not None
    if made is None and row.name != spec.name:
        raise Conflict("externalRef was already used for another team check", str(row.id))
    org = await session.get(Organisation, organisation_id)
    assert org is not None
    return _view(row, org, {}), made is not None


async def close_team_check(
    session: AsyncSession, principal: Principal, team_check_id: uuid.UUID
) -> TeamCheckView:
    """Idempotent. Consents already given stay the citizens' to withdraw; the check leaves
    a closed team check out."""
    organisation_id = require_reader(principal)
    await session.execute(
        update(TeamCheck)
        .where(
            TeamCheck.id == team_check_id,
            TeamCheck.organisation_id == organisation_id,
            TeamCheck.closed_at.is_(None),
        )
        .values(closed_at=clock.now())
    )
    found = await _own(session, organisation_id, [team_check_id])
    if not found:
        raise NotFound("no team check with this id of your organisation")
    return found[0]


async def _own(
    session: AsyncSession, organisation_id: uuid.UUID, ids: list[uuid.UUID] | None = None
) -> list[TeamCheckView]:
    statement = (
        select(TeamCheck, Organisation)
        .join(Organisation, Organisation.id == TeamCheck.organisation_id)
        .where(TeamCheck.organisation_id == organisation_id)
        .order_by(TeamCheck.created_at.desc(), TeamCheck.id)
    )
    if ids is not None:
        statement = statement.where(TeamCheck.id.in_(ids))
    rows = list(await session.execute(statement))
    counts = await team_consent_counts(session, [row.id for row, _ in rows]) if rows else {}
    return [_view(row, org, counts.get(row.id, {})) for row, org in rows]


async def team_checks_of(session: AsyncSession, principal: Principal) -> list[TeamCheckView]:
    """The organisation's team checks, newest first, with how many consented each way."""
    return await _own(session, require_reader(principal))


async def open_team_checks(
    session: AsyncSession, organisation_id: uuid.UUID, ids: list[uuid.UUID] | None
) -> list[TeamCheckView]:
    """The organisation's open team checks, all or these (others' or closed ones are left
    out: the caller reports them)."""
    return [view for view in await _own(session, organisation_id, ids) if view.closed_at is None]


async def invitation(
    session: AsyncSession, principal: Principal, team_check_id: uuid.UUID
) -> TeamCheckView:
    """What a citizen sees before deciding: who asks, for which team check, open or not."""
    require_citizen(principal)
    team, organisation = await _team_check(session, team_check_id)
    return _view(team, organisation)


async def _team_check(
    session: AsyncSession, team_check_id: uuid.UUID
) -> tuple[TeamCheck, Organisation]:
    """A team check of an active organisation, open or closed, with its organisation."""
    found = (
        await session.execute(
            select(TeamCheck, Organisation)
            .join(Organisation, Organisation.id == TeamCheck.organisation_id)
            .where(
                TeamCheck.id == team_check_id,
                Organisation.status == OrganisationStatus.ACTIVE.value,
            )
        )
    ).first()
    if found is None:
        raise NotFound(NO_TEAM_CHECK)
    return found[0], found[1]


async def join_team_check(
    session: AsyncSession, principal: Principal, hmac_key: bytes, data: Mapping[str, Any]
) -> GrantOutcome:
    """The citizen's consent to a team check: a grant like any other, read by that check
    alone. One active consent per team check: to change it, withdraw it and join again."""
    spec = validate(JoinInput, data)
    before = await before_grant(session, principal, hmac_key, spec.idempotency_key)
    if before.citizen_id is not None and before.earlier is not None:
        return await earlier_grant(session, before.citizen_id, before.earlier, spec.digest())
    now = clock.now()
    check_term(spec.expires_at, now)
    team, organisation = await _team_check(session, spec.team_check_id)
    if team.closed_at is not None:
        raise InvalidState("this team check is closed")
    return await record_grant(
        session,
        before,
        NewGrant(
            grantee_kind=GranteeKind.ORGANISATION,
            organisation=organisation_ref(organisation),
            purpose=TEAM_PURPOSE,
            competences=await grant_competences(session, spec.competence_uris),
            expires_at=spec.expires_at,
            request_key=spec.idempotency_key,
            request_digest=spec.digest(),
            now=now,
            team_check=TeamCheckRef(team.id, team.name),
            disclosure=spec.disclosure,
        ),
    )
