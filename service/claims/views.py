"""Read model of claims: one SQL statement returns claims with issuer, competence and status.

A passport reads its claims with ``load_passport_claims``: the same statement, compiled once per
combination of filters to PostgreSQL's own SQL and run as it is (no statement construction, no
ORM row processing per read); the JSON columns come as text and are parsed by orjson.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import (
    JSON,
    ColumnElement,
    Date,
    Integer,
    Select,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.clock import today
from service.db.raw import DriverSql, driver_args, driver_sql
from service.endorsements.views import EndorsementView, endorsements_column
from service.endorsements.views import parse as parse_endorsements
from service.models import ApiClient, Claim, ClaimRevocation, Competence, Organisation
from service.models.enums import ClaimStatus
from service.taxonomy.search import CompetenceRef


@dataclass(frozen=True)
class IssuerView:
    id: uuid.UUID
    name: str
    kind: str
    client_id: str  # the organisation's system that wrote the claim


@dataclass(frozen=True)
class ClaimView:
    citizen_id: uuid.UUID
    claim_id: uuid.UUID
    issuer: IssuerView | None  # None: the citizen declared it themselves
    issuer_role: str | None
    competence: CompetenceRef
    proficiency_scale: str | None
    proficiency_level: str | None
    proficiency_rank: int | None
    context: str | None
    assessment_method: str
    learning_context: str
    evidence: list[dict[str, Any]]
    acquired_on: date
    last_used_on: date | None
    valid_until: date | None
    recorded_at: datetime
    external_ref: str
    supersedes_claim_id: uuid.UUID | None
    superseded_by_claim_id: uuid.UUID | None
    revoked_at: datetime | None
    revocation_reason: str | None
    status: ClaimStatus
    # Every endorsement of the claim; who may see which: ``service.endorsements.views.visible``.
    endorsements: tuple[EndorsementView, ...] = ()

    @property
    def most_recent_use(self) -> date:
        return self.last_used_on or self.acquired_on

    @property
    def self_declared(self) -> bool:
        return self.issuer is None


def _base_select(*, json_as_text: bool = False, endorsements: bool = True) -> Select[Any]:
    """``json_as_text``: the JSONB columns as their text, for orjson to parse.
    ``endorsements``: False, the column is NULL (no subquery per claim) for a statement that
    reads none of it."""
    newer = aliased(Claim, name="newer")
    status = case(
        (ClaimRevocation.claim_id.is_not(None), literal(ClaimStatus.REVOKED.value)),
        (newer.claim_id.is_not(None), literal(ClaimStatus.SUPERSEDED.value)),
        (Claim.valid_until < bindparam("today", type_=Date), literal(ClaimStatus.EXPIRED.value)),
        else_=literal(ClaimStatus.ACTIVE.value),
    )
    json: Any = (lambda column: cast(column, Text).label(column.key)) if json_as_text else _same
    endorsed: Any = (
        endorsements_column(Claim.citizen_id, Claim.claim_id)
        if endorsements
        else cast(null(), JSON)
    )
    return (
        select(
            *(json(c) if c.key == "evidence" else c for c in Claim.__table__.c),
            Organisation.name.label("org_name"),
            Organisation.kind.label("org_kind"),
            ApiClient.client_id.label("api_client_id"),
            Competence.uri,
            Competence.concept_type,
            Competence.skill_type,
            Competence.reuse_level,
            json(Competence.preferred_labels),
            json(Competence.descriptions),
            newer.claim_id.label("superseded_by"),
            ClaimRevocation.revoked_at,
            ClaimRevocation.reason.label("revocation_reason"),
            status.label("status"),
            (cast(endorsed, Text) if json_as_text else endorsed).label("endorsements"),
        )
        .outerjoin(Organisation, Organisation.id == Claim.organisation_id)
        .join(Competence, Competence.id == Claim.competence_id)
        .outerjoin(ApiClient, ApiClient.id == Claim.client_id)
        .outerjoin(
            ClaimRevocation,
            (ClaimRevocation.citizen_id == Claim.citizen_id)
            & (ClaimRevocation.claim_id == Claim.claim_id),
        )
        .outerjoin(
            newer,
            (newer.citizen_id == Claim.citizen_id) & (newer.supersedes_claim_id == Claim.claim_id),
        )
    )


def _same(column: Any) -> Any:
    return column


# Built once: constructing the joins is costlier than running the query on a small passport.
_CLAIMS = _base_select()


def current() -> ColumnElement[bool]:
    """``_base_select``'s ACTIVE status as a condition on ``claims``, for aggregates over many
    claims that need no other column: not revoked, not superseded, not expired (``today`` a
    parameter, as there). A test holds the two to the same answer."""
    newer = aliased(Claim, name="newer_claim")
    return and_(
        or_(Claim.valid_until.is_(None), Claim.valid_until >= bindparam("today", type_=Date)),
        ~exists().where(
            ClaimRevocation.citizen_id == Claim.citizen_id,
            ClaimRevocation.claim_id == Claim.claim_id,
        ),
        ~exists().where(
            newer.citizen_id == Claim.citizen_id, newer.supersedes_claim_id == Claim.claim_id
        ),
    )


def claims_select(*where: ColumnElement[bool]) -> Select[Any]:
    """All claims matching ``where``; execute with ``{"today": clock.today()}``."""
    return _CLAIMS.where(*where)


_STATUSES = {status.value: status for status in ClaimStatus}


def _view(m: Mapping[str, Any], parse: Callable[[Any], Any] = _same) -> ClaimView:
    """``parse`` reads the JSON columns: the driver's values as they are, or JSON text."""
    return ClaimView(
        citizen_id=m["citizen_id"],
        claim_id=m["claim_id"],
        issuer=IssuerView(m["organisation_id"], m["org_name"], m["org_kind"], m["api_client_id"])
        if m["organisation_id"] is not None
        else None,
        issuer_role=m["issuer_role"],
        competence=CompetenceRef(
            id=m["competence_id"],
            uri=m["uri"],
            concept_type=m["concept_type"],
            skill_type=m["skill_type"],
            reuse_level=m["reuse_level"],
            preferred_labels=parse(m["preferred_labels"]) or {},
            descriptions=parse(m["descriptions"]) or {},
        ),
        proficiency_scale=m["proficiency_scale"],
        proficiency_level=m["proficiency_level"],
        proficiency_rank=m["proficiency_rank"],
        context=m["context"],
        assessment_method=m["assessment_method"],
        learning_context=m["learning_context"],
        evidence=list(parse(m["evidence"]) or []),
        acquired_on=m["acquired_on"],
        last_used_on=m["last_used_on"],
        valid_until=m["valid_until"],
        recorded_at=m["recorded_at"],
        external_ref=m["external_ref"],
        supersedes_claim_id=m["supersedes_claim_id"],
        superseded_by_claim_id=m["superseded_by"],
        revoked_at=m["revoked_at"],
        revocation_reason=m["revocation_reason"],
        status=_STATUSES[m["status"]],
        endorsements=parse_endorsements(m["claim_id"], parse(m["endorsements"])),
    )


async def load_claims(
    session: AsyncSession, *where: ColumnElement[bool], limit: int | None = None
) -> list[ClaimView]:
    statement = claims_select(*where).order_by(Claim.recorded_at, Claim.claim_id)
    if limit is not None:
        statement = statement.limit(limit)
    rows = await session.execute(statement, {"today": today()})
    return [_view(row._mapping) for row in rows]


_BY_ID = claims_select(Claim.claim_id == bindparam("claim_id"))
_BY_KEY = claims_select(
    Claim.citizen_id == bindparam("citizen_id"), Claim.claim_id == bindparam("claim_id")
)


async def load_claim(
    session: AsyncSession, claim_id: uuid.UUID, citizen_id: uuid.UUID | None = None
) -> ClaimView | None:
    """By id alone (an index on claim_id), or by primary key when the citizen is known."""
    params: dict[str, Any] = {"claim_id": claim_id, "today": today()}
    if citizen_id is not None:
        params["citizen_id"] = citizen_id
    statement = _BY_KEY if citizen_id is not None else _BY_ID
    row = (await session.execute(statement, params)).first()
    return _view(row._mapping) if row is not None else None


@dataclass(frozen=True)
class PassportClaimsFilter:
    """What a passport read narrows its claims to; None: no narrowing."""

    competence_ids: frozenset[int] | None = None  # the scope of the grants it relies on
    skill_types: frozenset[str] | None = None
    issuer_kinds: frozenset[str] | None = None
    learning_contexts: frozenset[str] | None = None


_PASSPORT_SQL: dict[tuple[bool, ...], DriverSql] = {}


def _many_citizens() -> ColumnElement[bool]:
    """The claims of many passports at once, each narrowed to its own scope: a citizen read
    whole is in ``unscoped``; one read under grants for chosen competences is named, once per
    competence, in the parallel arrays ``scoped_citizens`` and ``scoped_competences``."""
    pairs = (
        func.unnest(
            bindparam("scoped_citizens", type_=ARRAY(UUID(as_uuid=True))),
            bindparam("scoped_competences", type_=ARRAY(Integer)),
        )
        .table_valued("citizen_id", "competence_id")
        .render_derived(name="scoped")
    )
    return or_(
        Claim.citizen_id == any_(bindparam("unscoped", type_=ARRAY(UUID(as_uuid=True)))),
        tuple_(Claim.citizen_id, Claim.competence_id).in_(
            select(pairs.c.citizen_id, pairs.c.competence_id)
        ),
    )


def passport_claims_sql(
    *,
    scope: bool,
    skill_types: bool,
    issuer_kinds: bool,
    learning_contexts: bool,
    many: bool = False,
    json_as_text: bool = True,
    endorsements: bool = True,
) -> DriverSql:
    """A citizen's claims (``many``: those of several citizens, see ``_many_citizens``; then
    ``scope`` is ignored), ordered as ``load_claims`` orders them, as PostgreSQL SQL with the
    name and default of each positional parameter; compiled once per combination of filters.
    ``json_as_text``: the JSON columns as text for orjson (False: as they are, for a statement
    that reads them in SQL). ``endorsements``: False, none are read (``_base_select``)."""
    scope = scope and not many
    shape = (scope, skill_types, issuer_kinds, learning_contexts, many, json_as_text, endorsements)
    found = _PASSPORT_SQL.get(shape)
    if found is not None:
        return found
    conditions: list[ColumnElement[bool]] = [
        _many_citizens()
        if many
        else Claim.citizen_id == bindparam("citizen_id", type_=UUID(as_uuid=True))
    ]
    if scope:
        conditions.append(
            Claim.competence_id == any_(bindparam("competence_ids", type_=ARRAY(Integer)))
        )
    if skill_types:
        conditions.append(
            Competence.skill_type == any_(bindparam("skill_types", type_=ARRAY(Text)))
        )
    if issuer_kinds:
        conditions.append(Organisation.kind == any_(bindparam("issuer_kinds", type_=ARRAY(Text))))
    if learning_contexts:
        conditions.append(
            Claim.learning_context == any_(bindparam("learning_contexts", type_=ARRAY(Text)))
        )
    statement = (
        _base_select(json_as_text=json_as_text, endorsements=endorsements)
        .where(*conditions)
        .order_by(Claim.recorded_at, Claim.claim_id)
    )
    found = _PASSPORT_SQL[shape] = driver_sql(statement)
    return found


async def load_passport_claims(
    session: AsyncSession, citizen_id: uuid.UUID, flt: PassportClaimsFilter
) -> list[ClaimView]:
    """``load_claims`` for one citizen's passport, as fast as the driver gives the rows."""
    sql, parameters = passport_claims_sql(
        scope=flt.competence_ids is not None,
        skill_types=bool(flt.skill_types),
        issuer_kinds=bool(flt.issuer_kinds),
        learning_contexts=bool(flt.learning_contexts),
    )
    values = {"citizen_id": citizen_id, "competence_ids": sorted(flt.competence_ids or ())}
    return await _run_passport_sql(session, sql, parameters, values, flt)


async def load_passports_claims(
    session: AsyncSession,
    scopes: Mapping[uuid.UUID, frozenset[int] | None],
    flt: PassportClaimsFilter,
) -> dict[uuid.UUID, list[ClaimView]]:
    """``load_passport_claims`` for many citizens in one statement, by citizen; each citizen's
    claims narrowed to their own scope (None: the whole passport), ``flt.competence_ids``
    unused."""
    sql, parameters = passport_claims_sql(
        scope=False,
        skill_types=bool(flt.skill_types),
        issuer_kinds=bool(flt.issuer_kinds),
        learning_contexts=bool(flt.learning_contexts),
        many=True,
    )
    pairs = sorted(
        (citizen, competence)
        for citizen, scope in scopes.items()
        if scope is not None
        for competence in scope
    )
    values = {
        "unscoped": sorted(c for c, scope in scopes.items() if scope is None),
        "scoped_citizens": [citizen for citizen, _ in pairs],
        "scoped_competences": [competence for _, competence in pairs],
    }
    by_citizen: dict[uuid.UUID, list[ClaimView]] = {citizen: [] for citizen in scopes}
    for claim in await _run_passport_sql(session, sql, parameters, values, flt):
        by_citizen[claim.citizen_id].append(claim)
    return by_citizen


async def _run_passport_sql(
    session: AsyncSession,
    sql: str,
    parameters: tuple[tuple[str, Any], ...],
    values: dict[str, Any],
    flt: PassportClaimsFilter,
) -> list[ClaimView]:
    values.update(
        today=today(),
        skill_types=sorted(flt.skill_types or ()),
        issuer_kinds=sorted(flt.issuer_kinds or ()),
        learning_contexts=sorted(flt.learning_contexts or ()),
    )
    connection = await session.connection()
    given = tuple(values.get(name, default) for name, default in parameters)
    rows = await connection.exec_driver_sql(sql, given)
    return [_view(dict(zip(_KEYS, row, strict=True)), _json) for row in rows]


# The names of the passport statement's columns, in order.
_KEYS = tuple(str(c.key) for c in _base_select(json_as_text=True).selected_columns)


def _json(text: str | None) -> Any:
    return orjson.loads(text) if text else None


# Built once: the claim a hot write answers with (service/claims/service.py), by id alone
# or by primary key, read on the request's asyncpg connection (service/db/raw.py).
_DRIVER_BY_ID = driver_sql(
    _base_select(json_as_text=True).where(Claim.claim_id == bindparam("claim_id"))
)
_DRIVER_BY_KEY = driver_sql(
    _base_select(json_as_text=True).where(
        Claim.citizen_id == bindparam("citizen_id"), Claim.claim_id == bindparam("claim_id")
    )
)


async def fetch_claim(
    conn: asyncpg.Connection, claim_id: uuid.UUID, citizen_id: uuid.UUID | None = None
) -> ClaimView | None:
    """``load_claim`` on a raw connection: the same statement, prepared once by asyncpg."""
    sql = _DRIVER_BY_KEY if citizen_id is not None else _DRIVER_BY_ID
    values = {"claim_id": claim_id, "citizen_id": citizen_id, "today": today()}
    row = await conn.fetchrow(sql[0], *driver_args(sql, values))
    return _view(dict(zip(_KEYS, row, strict=True)), _json) if row is not None else None
