"""Demo data for newcomers: partners, clients, a legal basis and a citizen with claims.

Seeded through the same domain functions the API uses, so the demo exercises real rules, and
idempotently, so `passport serve --demo` can be run again on the same database.
"""

from __future__ import annotations

import uuid
from contextlib import suppress
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.auth.keys import DevKey
from service.auth.principal import Principal
from service.auth.tokens import mint_dev_token
from service.claims.service import issue_claim
from service.db.engine import session_factory
from service.errors import Conflict
from service.identity.numbers import insz_hash
from service.models import ApiClient, Organisation
from service.models.enums import OrganisationKind, PrincipalKind, Scope
from service.organisations import service as registry
from service.settings import Settings

DEMO_CITIZEN_INSZ = "85073003328"  # a valid test number, not a real person's
ESCO = "http://data.europa.eu/esco/skill/"

ORGANISATIONS: list[dict[str, Any]] = [
    {
        "kind": OrganisationKind.EDUCATION_PROVIDER,
        "name": "Demo Hogeschool Gent",
        "enterprise_number": "0403170701",
        "client_id": "demo-school",
        "scopes": [Scope.CLAIMS_WRITE],
    },
    {
        "kind": OrganisationKind.EMPLOYER,
        "name": "Demo Logistiek NV",
        "enterprise_number": "0419052173",
        "client_id": "demo-employer",
        "scopes": [Scope.CLAIMS_WRITE],
    },
    {
        "kind": OrganisationKind.PUBLIC_EMPLOYMENT_SERVICE,
        "name": "Demo Arbeidsbemiddeling",
        "enterprise_number": "0887010362",
        "client_id": "demo-employment-service",
        "scopes": [Scope.CLAIMS_WRITE, Scope.PASSPORTS_READ],
    },
]
LEGAL_BASIS = "GUIDANCE"

# (client, external ref, ESCO skill id, method, context, level, years ago acquired, last used)
CLAIMS = [
    (
        "demo-school",
        "hg-2019-py",
        "ccd0a1d9-afda-43d9-b901-96344886e14d",
        "exam",
        "formal",
        ("eqf", "6"),
        6,
        1,
    ),
    (
        "demo-school",
        "hg-2019-sql",
        "598de5b0-5b58-4ea7-8058-a4bc4d18c742",
        "exam",
        "formal",
        ("eqf", "6"),
        6,
        2,
    ),
    (
        "demo-school",
        "hg-2019-en",
        "6d3edede-8951-4621-a835-e04323300fa0",
        "exam",
        "formal",
        ("cefr", "C1"),
        6,
        0,
    ),
    (
        "demo-employer",
        "dl-obs-teams",
        "60c78287-22eb-4103-9c8c-28deaa460da0",
        "workplace_observation",
        "informal",
        ("descriptive", "advanced"),
        3,
        0,
    ),
    (
        "demo-employer",
        "dl-obs-forklift",
        "28cb374e-6261-4133-8371-f9a5470145da",
        "practical_assessment",
        "non_formal",
        ("descriptive", "intermediate"),
        4,
        4,
    ),
    (
        "demo-employment-service",
        "ab-evc-time",
        "d9013e0e-e937-43d5-ab71-0e917ee882b8",
        "prior_learning_recognition",
        "informal",
        ("descriptive", "advanced"),
        2,
        0,
    ),
    (
        "demo-employment-service",
        "ab-evc-teams",
        "60c78287-22eb-4103-9c8c-28deaa460da0",
        "portfolio_review",
        "informal",
        ("descriptive", "expert"),
        1,
        0,
    ),
]


async def seed_demo(engine: AsyncEngine, settings: Settings) -> None:
    admin = Principal(kind=PrincipalKind.ADMIN, subject="demo-seed", scopes=frozenset({"admin"}))
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        for org in ORGANISATIONS:
            try:
                view = await registry.register_organisation(
                    session,
                    admin,
                    {k: org[k] for k in ("kind", "name", "enterprise_number")},
                )
                org_id = view.id
            except Conflict as exc:
                org_id = uuid.UUID(str(exc.existing_id))
            with suppress(Conflict):
                await registry.register_client(
                    session,
                    admin,
                    {
                        "organisation_id": org_id,
                        "client_id": org["client_id"],
                        "name": f"{org['name']} (demo client)",
                        "scopes": org["scopes"],
                    },
                )
            if Scope.PASSPORTS_READ in org["scopes"]:
                with suppress(Conflict):
                    await registry.grant_legal_basis(
                        session,
                        admin,
                        {
                            "organisation_id": org_id,
                            "code": LEGAL_BASIS,
                            "reference": "Demo: decree on public employment guidance, art. 5",
                        },
                        settings.legal_basis_organisation_kinds,
                    )
    async with sessions() as session, session.begin():
        rows = await session.execute(
            select(ApiClient.client_id, ApiClient.id, Organisation.id, Organisation.kind).join(
                Organisation, Organisation.id == ApiClient.organisation_id
            )
        )
        partners = {
            client_id: Principal(
                kind=PrincipalKind.PARTNER,
                subject=client_id,
                scopes=frozenset({Scope.CLAIMS_WRITE.value}),
                client_pk=pk,
                organisation_id=org_id,
                organisation_kind=kind,
            )
            for client_id, pk, org_id, kind in rows
        }
        today = date.today()
        # The refs name the key's demo citizen: a checkout with another development key (kept
        # in its data directory) on the same database seeds its own citizen's claims.
        tag = insz_hash(DEMO_CITIZEN_INSZ, settings.hmac_key()).hex()[:8]
        for client, ref, skill, method, context, (scale, level), acquired, used in CLAIMS:
            # Seeded at every start: a claim an earlier start seeded stays as it was, though
            # its dates, relative to that day, differ now. A refusal ends its statement (and
            # the transaction with it) in PostgreSQL: the savepoint keeps the rest.
            with suppress(Conflict):
                async with session.begin_nested():
                    await issue_claim(
                        session,
                        partners[client],
                        {
                            "insz": DEMO_CITIZEN_INSZ,
                            "competence_uri": ESCO + skill,
                            "external_ref": f"{ref}-{tag}",
                            "assessment_method": method,
                            "learning_context": context,
                            "proficiency": {"scale": scale, "level": level},
                            "acquired_on": today - timedelta(days=365 * acquired + 30),
                            "last_used_on": today - timedelta(days=365 * used + 1),
                            "evidence": [
                                {
                                    "kind": "certificate"
                                    if method == "exam"
                                    else "assessment_report",
                                    "title": "Demo evidence",
                                    "url": f"https://example.org/evidence/{ref}",
                                }
                            ],
                        },
                        settings.hmac_key(),
                    )


def demo_guide() -> list[str]:
    """What `passport token demo` prints under the tokens: who is who, and the legal basis
    the demo reader must name (without it, its reads are refused, as NotFound)."""
    read = (
        f'passport(citizen: {{insz: "{DEMO_CITIZEN_INSZ}"}}, legalBasis: "{LEGAL_BASIS}",'
        ' purpose: "guidance interview")'
    )
    return [
        f"citizen: the demo citizen, INSZ {DEMO_CITIZEN_INSZ} (a test number, nobody's)",
        "demo-school, demo-employer: partners; they issue, revoke and supersede claims",
        "demo-employment-service: a partner too, and a reader: it reads passports without"
        f' consent under legalBasis: "{LEGAL_BASIS}", stating a purpose, e.g.',
        f"  {read}",
        "admin: registers organisations and clients, grants legal bases",
        "Examples of every task: the examples/ folder; in a browser, the GraphQL URL"
        " `passport serve` printed opens GraphiQL",
    ]


def demo_tokens(key: DevKey, settings: Settings, lifetime: timedelta) -> dict[str, str]:
    tokens = {
        "admin": mint_dev_token(
            key, settings, subject="dev-admin", scopes=["admin"], lifetime=lifetime
        ),
        "citizen": mint_dev_token(key, settings, subject=DEMO_CITIZEN_INSZ, lifetime=lifetime),
    }
    for org in ORGANISATIONS:
        tokens[org["client_id"]] = mint_dev_token(
            key,
            settings,
            subject=org["client_id"],
            client_id=org["client_id"],
            scopes=[s.value for s in org["scopes"]],
            lifetime=lifetime,
        )
    return tokens
