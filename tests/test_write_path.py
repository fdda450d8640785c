"""The hot writes on the request's asyncpg connection (service/db/raw.py): in the session's
own transaction, with the same digest as before, and one citizen for concurrent first claims."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service import canonical
from service.auth.principal import Principal
from service.claims import service as claims
from service.claims.rules import ClaimContent
from service.db.engine import session_factory
from service.identity.numbers import insz_hash
from service.models import ApiClient, CitizenIdentity, Claim
from service.models.enums import PrincipalKind
from service.settings import Settings
from tests import factories
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue


async def _partner(engine: AsyncEngine, school: Partner) -> Principal:
    async with engine.connect() as conn:
        client_pk = await conn.scalar(
            select(ApiClient.id).where(ApiClient.client_id == school.client_id)
        )
    return Principal(
        kind=PrincipalKind.PARTNER,
        subject=school.client_id,
        scopes=frozenset({"claims:write"}),
        client_pk=client_pk,
        organisation_id=school.organisation_id,
        organisation_kind="education_provider",
    )


async def test_a_raw_write_as_first_statement_is_undone_with_the_session(
    engine: AsyncEngine, school: Partner, settings: Settings
) -> None:
    """The raw statements run in the transaction the session rolls back, even when nothing
    went through the session before them (the adapter is asked to begin)."""
    citizen = factories.insz()
    data = {
        "insz": citizen,
        "competence_uri": factories.PYTHON,
        "assessment_method": "exam",
        "learning_context": "formal",
        "acquired_on": "2020-01-01",
        "external_ref": factories.ref(),
    }
    partner = await _partner(engine, school)
    async with session_factory(engine)() as session:
        outcome = await claims.issue_claim(session, partner, data, settings.hmac_key())
        assert outcome.created
        await session.rollback()
    async with engine.connect() as conn:
        written = await conn.scalar(
            select(func.count()).select_from(Claim).where(Claim.claim_id == outcome.claim.claim_id)
        )
        identities = await conn.scalar(
            select(func.count())
            .select_from(CitizenIdentity)
            .where(CitizenIdentity.insz_hash == insz_hash(citizen, settings.hmac_key()))
        )
    assert (written, identities) == (0, 0)


def test_the_digest_made_around_the_citizen_is_the_digest_of_the_whole_request() -> None:
    """Retries of claims recorded before the database made the digest must still match."""
    content = ClaimContent.model_validate(
        {
            "competence_uri": factories.PYTHON,
            "assessment_method": "exam",
            "learning_context": "formal",
            "acquired_on": "2020-01-01",
            "external_ref": 'ref"citizen":"x"',
            "context": 'Cours d\'été: "citizen"',
        }
    )
    citizen, supersedes = uuid.uuid4(), uuid.uuid4()
    for older in (None, supersedes):
        body = content.model_dump(mode="json", exclude={"insz"})
        body["citizen"] = str(citizen)
        body["supersedes"] = str(older) if older else None
        expected = hashlib.sha256(canonical.dumps(body)).digest()
        assert claims.claim_digest(content, citizen, older) == expected


async def test_concurrent_first_claims_of_a_new_citizen_make_one_citizen(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen = factories.insz()
    results = await asyncio.gather(
        *(issue(api, school, factories.claim_input(citizen, uri)) for uri in factories.SKILLS)
    )
    assert all(r["created"] for r in results), results
    ids = [uuid.UUID(r["claim"]["id"]) for r in results]
    async with engine.connect() as conn:
        citizens = await conn.scalar(
            select(func.count(func.distinct(Claim.citizen_id))).where(Claim.claim_id.in_(ids))
        )
    assert citizens == 1
