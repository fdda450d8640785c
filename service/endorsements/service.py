"""Endorsing claims: an organisation other than the issuer vouches for a claim in a few words.

The rules, all here:

- the endorser is a client with the ``claims:endorse`` scope, speaking for its own
  organisation (never taken from input);
- never a claim of its own organisation: a partner cannot vouch for itself a second time;
- only a current claim of an organisation (a self-declaration has no issuer to endorse) that
  the citizen lets the endorser's organisation see right now, through an active grant that
  covers its competence. The citizen decides who learns what they hold, so only someone who
  may see a claim may endorse it, and an endorser cannot probe passports by claim id;
- idempotent by the endorser's reference: a retry returns the endorsement it made, the same
  reference for anything else is a conflict;
- the endorser may revoke it; the citizen may hide it from readers and show it again.

Every change is an event in the citizen's hash chain, under their lock; the endorser hears of
its own endorsements by webhook, never of the citizen's choice to hide one.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, bindparam, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service import canonical, clock
from service.auth.policy import require_endorser
from service.auth.principal import Principal
from service.citizens.service import lock_citizen, own_citizen_id
from service.claims.views import ClaimView, load_claim, load_claims
from service.consent.service import active_grants
from service.endorsements.views import EndorsementView, EndorserView
from service.errors import Conflict, InvalidState, NotAuthorized, NotFound
from service.events.chain import append_event
from service.events.outbox import Notice
from service.events.payloads import endorsement_payload
from service.models import ApiClient, Claim, ClaimEndorsement, EndorsementRef, Organisation
from service.models.enums import ClaimStatus, EventType
from service.pagination import decode_cursor, encode_cursor
from service.taxonomy.search import CompetenceRef
from service.validation import Name, Statement, validate

NOT_VISIBLE = "no claim with this id that the citizen shares with your organisation"
NO_SUCH_ENDORSEMENT = "no endorsement with this id"


class EndorseInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    claim_id: uuid.UUID
    statement: Annotated[Statement, Field(min_length=3, max_length=1000)]
    endorser_role: Name | None = None
    external_ref: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")

    def digest(self) -> bytes:
        """Tells a faithful retry from another endorsement under the same reference."""
        body = self.model_dump(mode="json", exclude={"external_ref"})
        return hashlib.sha256(canonical.dumps(body)).digest()


class RevokeEndorsementInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    reason: Annotated[Statement, Field(min_length=3, max_length=1000)]


@dataclass(frozen=True)
class EndorseOutcome:
    endorsement: EndorsementView
    created: bool  # False: a retry with the same reference returned the earlier endorsement


@dataclass(frozen=True)
class GivenEndorsement:
    """An endorsement as its endorser sees it in its own list."""

    endorsement: EndorsementView
    citizen_id: uuid.UUID
    external_ref: str
    competence: CompetenceRef | None

    @property
    def cursor(self) -> str:
        return encode_cursor(self.endorsement.endorsed_at, self.endorsement.endorsement_id)


_VIEW = (
    select(
        ClaimEndorsement,
        Organisation.name,
        Organisation.kind,
        ApiClient.client_id.label("api_client_id"),
    )
    .join(Organisation, Organisation.id == ClaimEndorsement.organisation_id)
    .join(ApiClient, ApiClient.id == ClaimEndorsement.client_id)
)


def _view(row: Any) -> EndorsementView:
    e: ClaimEndorsement = row[0]
    return EndorsementView(
        endorsement_id=e.endorsement_id,
        claim_id=e.claim_id,
        endorser=EndorserView(e.organisation_id, row.name, row.kind, row.api_client_id),
        endorser_role=e.endorser_role,
        statement=e.statement,
        endorsed_at=e.endorsed_at,
        revoked_at=e.revoked_at,
        revocation_reason=e.revocation_reason,
        hidden_at=e.hidden_at,
    )


_Rows = Select[ClaimEndorsement, str, str, str]


async def _one(session: AsyncSession, statement: _Rows) -> EndorsementView | None:
    row = (await session.execute(statement)).first()
    return _view(row) if row is not None else None


def _by_key(citizen_id: uuid.UUID, endorsement_id: uuid.UUID) -> _Rows:
    return _VIEW.where(
        ClaimEndorsement.citizen_id == citizen_id,
        ClaimEndorsement.endorsement_id == endorsement_id,
    )


_RESERVE = (
    pg_insert(EndorsementRef)
    .values(
        organisation_id=bindparam("org"),
        external_ref=bindparam("ref"),
        citizen_id=bindparam("citizen_id"),
        endorsement_id=bindparam("endorsement_id"),
        payload_digest=bindparam("digest"),
    )
    .on_conflict_do_nothing(index_elements=["organisation_id", "external_ref"])
    .returning(EndorsementRef.endorsement_id)
)
_EARLIER = select(
    EndorsementRef.citizen_id, EndorsementRef.endorsement_id, EndorsementRef.payload_digest
).where(
    EndorsementRef.organisation_id == bindparam("org"),
    EndorsementRef.external_ref == bindparam("ref"),
)


async def _shared_with(session: AsyncSession, claim: ClaimView, organisation_id: uuid.UUID) -> bool:
    """Whether the citizen's active grants let this organisation see the claim now."""
    for grant in await active_grants(session, claim.citizen_id, organisation_id):
        if grant.competence_ids is None or claim.competence.id in grant.competence_ids:
            return True
    return False


async def endorse_claim(
    session: AsyncSession, principal: Principal, data: Mapping[str, Any]
) -> EndorseOutcome:
    organisation_id = require_endorser(principal)
    spec = validate(EndorseInput, data)
    claim = await load_claim(session, spec.claim_id)
    if claim is None:
        raise NotFound(NOT_VISIBLE)
    if claim.issuer is not None and claim.issuer.id == organisation_id:
        raise NotAuthorized("an organisation cannot endorse a claim it issued")
    await lock_citizen(session, claim.citizen_id)
    endorsement_id, digest = uuid.uuid4(), spec.digest()
    key = {"org": organisation_id, "ref": spec.external_ref}
    reserved = await session.scalar(
        _RESERVE,
        {**key, "citizen_id": claim.citizen_id, "endorsement_id": endorsement_id, "digest": digest},
    )
    if reserved is None:  # the reference is taken: a retry, or a conflict
        earlier = (await session.execute(_EARLIER, key)).one()
        if bytes(earlier.payload_digest) != digest:
            raise Conflict(
                "externalRef was already used for a different endorsement",
                str(earlier.endorsement_id),
            )
        found = await _one(session, _by_key(earlier.citizen_id, earlier.endorsement_id))
        assert found is not None
        return EndorseOutcome(found, created=False)
    # A new endorsement: checked under the lock, against the claim as it is now.
    current = await load_claim(session, claim.claim_id, claim.citizen_id)
    if (
        current is None
        or current.issuer is None
        or not await _shared_with(session, current, organisation_id)
    ):
        raise NotFound(NOT_VISIBLE)
    if current.status is not ClaimStatus.ACTIVE:
        raise InvalidState("only a current claim can be endorsed")
    now = clock.now()
    row = {
        "citizen_id": claim.citizen_id,
        "endorsement_id": endorsement_id,
        "claim_id": claim.claim_id,
        "organisation_id": organisation_id,
        "client_id": principal.client_pk,
        "endorser_role": spec.endorser_role,
        "statement": spec.statement,
        "external_ref": spec.external_ref,
        "endorsed_at": now,
    }
    await session.execute(pg_insert(ClaimEndorsement).values(**row))
    await append_event(
        session,
        claim.citizen_id,
        EventType.ENDORSEMENT_CREATED,
        endorsement_payload(row),
        now,
        _notice(
            organisation_id, claim.citizen_id, endorsement_id, claim.claim_id, spec.external_ref
        ),
    )
    found = await _one(session, _by_key(claim.citizen_id, endorsement_id))
    assert found is not None
    return EndorseOutcome(found, created=True)


def _notice(
    organisation_id: uuid.UUID,
    citizen_id: uuid.UUID,
    endorsement_id: uuid.UUID,
    claim_id: uuid.UUID,
    external_ref: str,
) -> Notice:
    return Notice(
        organisation_id,
        {
            "endorsementId": str(endorsement_id),
            "claimId": str(claim_id),
            "externalRef": external_ref,
            "passportId": str(citizen_id),
        },
    )


async def revoke_endorsement(
    session: AsyncSession, principal: Principal, endorsement_id: uuid.UUID, data: Mapping[str, Any]
) -> EndorsementView:
    """Idempotent: revoking a revoked endorsement returns it unchanged. Only its endorser can."""
    organisation_id = require_endorser(principal)
    spec = validate(RevokeEndorsementInput, data)
    found = (
        await session.execute(
            select(ClaimEndorsement.citizen_id, ClaimEndorsement.external_ref).where(
                ClaimEndorsement.endorsement_id == endorsement_id,
                ClaimEndorsement.organisation_id == organisation_id,
            )
        )
    ).first()
    if found is None:
        raise NotFound("no endorsement with this id was given by your organisation")
    citizen_id = found.citizen_id
    await lock_citizen(session, citizen_id)
    now = clock.now()
    revoked = await session.scalar(
        update(ClaimEndorsement)
        .where(
            ClaimEndorsement.citizen_id == citizen_id,
            ClaimEndorsement.endorsement_id == endorsement_id,
            ClaimEndorsement.revoked_at.is_(None),
        )
        .values(revoked_at=now, revocation_reason=spec.reason)
        .returning(ClaimEndorsement.claim_id)
    )
    if revoked is not None:
        await append_event(
            session,
            citizen_id,
            EventType.ENDORSEMENT_REVOKED,
            {"endorsementId": str(endorsement_id), "organisationId": str(organisation_id)},
            now,
            _notice(organisation_id, citizen_id, endorsement_id, revoked, found.external_ref),
        )
    view = await _one(session, _by_key(citizen_id, endorsement_id))
    assert view is not None
    return view


async def set_hidden(
    session: AsyncSession,
    principal: Principal,
    hmac_key: bytes,
    endorsement_id: uuid.UUID,
    *,
    hidden: bool,
) -> EndorsementView:
    """The citizen hides an endorsement of one of their claims from everyone else (readers,
    share links, exports), or shows it again. Idempotent; the endorser is not told."""
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    if citizen_id is None:
        raise NotFound(NO_SUCH_ENDORSEMENT)
    await lock_citizen(session, citizen_id)
    now = clock.now()
    key = (
        ClaimEndorsement.citizen_id == citizen_id,
        ClaimEndorsement.endorsement_id == endorsement_id,
    )
    changed = await session.scalar(
        update(ClaimEndorsement)
        .where(
            *key,
            ClaimEndorsement.hidden_at.is_(None)
            if hidden
            else ClaimEndorsement.hidden_at.is_not(None),
        )
        .values(hidden_at=now if hidden else None)
        .returning(ClaimEndorsement.endorsement_id)
    )
    if changed is not None:
        await append_event(
            session,
            citizen_id,
            EventType.ENDORSEMENT_HIDDEN if hidden else EventType.ENDORSEMENT_SHOWN,
            {"endorsementId": str(endorsement_id)},
            now,
        )
    view = await _one(session, _VIEW.where(*key))
    if view is None:
        raise NotFound(NO_SUCH_ENDORSEMENT)
    return view


@dataclass(frozen=True)
class GivenPage:
    items: list[GivenEndorsement]
    has_next_page: bool
    end_cursor: str | None


async def endorsements_given(
    session: AsyncSession, principal: Principal, *, first: int, after: str | None
) -> GivenPage:
    """What the caller's organisation endorsed, newest first: to find one again, or revoke it.
    Shown as given, hidden or not: hiding is between the citizen and their readers."""
    organisation_id = require_endorser(principal)
    conditions = [ClaimEndorsement.organisation_id == organisation_id]
    if after:
        stamp, last_id = decode_cursor(after)
        conditions.append(
            tuple_(ClaimEndorsement.endorsed_at, ClaimEndorsement.endorsement_id)
            < tuple_(stamp, last_id)
        )
    rows = list(
        await session.execute(
            _VIEW.where(*conditions)
            .order_by(ClaimEndorsement.endorsed_at.desc(), ClaimEndorsement.endorsement_id.desc())
            .limit(first + 1)
        )
    )
    page = rows[:first]
    pairs = [(row[0].citizen_id, row[0].claim_id) for row in page]
    claims = (
        {
            claim.claim_id: claim
            for claim in await load_claims(
                session, tuple_(Claim.citizen_id, Claim.claim_id).in_(pairs)
            )
        }
        if pairs
        else {}
    )
    items = []
    for row in page:
        endorsement: ClaimEndorsement = row[0]
        claim = claims.get(endorsement.claim_id)
        items.append(
            GivenEndorsement(
                endorsement=_view(row),
                citizen_id=endorsement.citizen_id,
                external_ref=endorsement.external_ref,
                competence=claim.competence if claim else None,
            )
        )
    return GivenPage(items, len(rows) > first, items[-1].cursor if items else None)
