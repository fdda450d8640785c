"""Endorsements: another organisation than the issuer seconds a claim the citizen lets it see;
idempotent by its reference, revocable by it, hidden by the citizen from everyone else, shown
under the claim and counted apart from vouching, chained as events and announced by webhook."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.events.chain import verify_chain
from service.models import CitizenEvent, ClaimEndorsement, EndorsementRef, WebhookDelivery
from tests import factories
from tests.citizen_api import ERASE, EXPORT, REVOKE_GRANT, grant
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import REVOKE, issue
from tests.test_webhooks import SUBSCRIBE

ERRORS = """
  ... on Error { code message }
  ... on ValidationFailed { problems { field code } }
  ... on Conflict { existingId }
"""
ENDORSEMENT = """
  id claimId statement endorserRole endorsedAt status revokedAt revocationReason hidden
  endorser { id name kind clientId }
"""
ENDORSE = f"""
mutation($input: EndorseClaimInput!) {{
  endorseClaim(input: $input) {{
    __typename ... on ClaimEndorsed {{ created endorsement {{ {ENDORSEMENT} }} }} {ERRORS}
  }}
}}"""
REVOKE_ENDORSEMENT = f"""
mutation($input: RevokeEndorsementInput!) {{
  revokeEndorsement(input: $input) {{
    __typename ... on EndorsementChanged {{ endorsement {{ {ENDORSEMENT} }} }} {ERRORS}
  }}
}}"""
HIDE = f"""
mutation($id: ID!) {{
  hideEndorsement(id: $id) {{
    __typename ... on EndorsementChanged {{ endorsement {{ {ENDORSEMENT} }} }} {ERRORS}
  }}
}}"""
SHOW = HIDE.replace("hideEndorsement", "showEndorsement")
COMPETENCES = f"""
  competences {{
    competence {{ uri }} distinctOrganisations endorsements endorsingOrganisations
    claims {{ id issuer {{ id }} endorsements {{ {ENDORSEMENT} }} }}
  }}
"""
MINE = f"query {{ me {{ passport {{ {COMPETENCES} }} }} }}"
READ = f"""
query($c: CitizenRef!) {{
  passport(citizen: $c, purpose: "endorsement review") {{
    __typename ... on Passport {{ {COMPETENCES} }} ... on Error {{ code }}
  }}
}}"""
GIVEN = """
query { endorsementsGiven(first: 10) {
  edges { node { passportId externalRef competence { uri } endorsement { id status hidden } } }
} }"""


async def coach(api: Api) -> Partner:
    """A career coach that reads passports it is shown and endorses what it saw."""
    return await make_partner(
        api, kind="CAREER_GUIDANCE", scopes=("PASSPORTS_READ", "CLAIMS_ENDORSE")
    )


async def endorse(api: Api, partner: Partner, claim_id: str, **overrides: Any) -> dict[str, Any]:
    data = {"claimId": claim_id, "statement": "Saw them lead the team for a year", **overrides}
    data.setdefault("externalRef", factories.ref())
    body = await api.gql(partner.token, ENDORSE, {"input": data})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["endorseClaim"]
    return result


async def shown_to(api: Api, partner: Partner, citizen: str) -> dict[str, Any]:
    body = await api.gql(partner.token, READ, {"c": {"insz": citizen}})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["passport"]
    return result


async def mine(api: Api, citizen: str) -> list[dict[str, Any]]:
    body = await api.gql(api.citizen(citizen), MINE)
    assert "errors" not in body, body
    result: list[dict[str, Any]] = body["data"]["me"]["passport"]["competences"]
    return result


async def _setup(api: Api, school: Partner) -> tuple[str, str, Partner]:
    """A citizen with a school's claim, and a coach the citizen shares the passport with."""
    citizen = factories.insz()
    claim = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    partner = await coach(api)
    await grant(
        api,
        api.citizen(citizen),
        granteeKind="ORGANISATION",
        organisationId=str(partner.organisation_id),
    )
    return citizen, claim["id"], partner


async def test_an_endorsement_is_shown_under_the_claim_and_counted_apart(
    api: Api, school: Partner
) -> None:
    citizen, claim_id, partner = await _setup(api, school)
    made = await endorse(api, partner, claim_id, endorserRole="career coach")
    assert made["__typename"] == "ClaimEndorsed" and made["created"] is True, made
    endorsement = made["endorsement"]
    assert endorsement["claimId"] == claim_id and endorsement["status"] == "ACTIVE"
    assert endorsement["endorser"]["id"] == str(partner.organisation_id)
    assert endorsement["endorserRole"] == "career coach" and endorsement["hidden"] is False
    for competences in (
        await mine(api, citizen),
        (await shown_to(api, partner, citizen))["competences"],
    ):
        [competence] = competences
        # vouching: the school alone; the coach's endorsement is counted apart
        assert competence["distinctOrganisations"] == 1
        assert competence["endorsements"] == 1 and competence["endorsingOrganisations"] == 1
        [claim] = competence["claims"]
        assert [e["id"] for e in claim["endorsements"]] == [endorsement["id"]]
        assert claim["endorsements"][0]["statement"] == "Saw them lead the team for a year"
    given = await api.gql(partner.token, GIVEN)
    [edge] = given["data"]["endorsementsGiven"]["edges"]
    assert edge["node"]["endorsement"]["id"] == endorsement["id"]
    assert edge["node"]["competence"]["uri"] == factories.PYTHON


async def test_a_retry_returns_the_endorsement_and_a_changed_one_conflicts(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    _, claim_id, partner = await _setup(api, school)
    ref = factories.ref()
    first = await endorse(api, partner, claim_id, externalRef=ref)
    again = await endorse(api, partner, claim_id, externalRef=ref)
    assert again["created"] is False
    assert again["endorsement"]["id"] == first["endorsement"]["id"]
    changed = await endorse(api, partner, claim_id, externalRef=ref, statement="Something else")
    assert changed["__typename"] == "Conflict"
    assert changed["existingId"] == first["endorsement"]["id"]
    async with engine.connect() as conn:
        rows = await conn.scalar(
            select(ClaimEndorsement.endorsement_id).where(
                ClaimEndorsement.endorsement_id == uuid.UUID(first["endorsement"]["id"])
            )
        )
        refs = list(
            await conn.scalars(
                select(EndorsementRef.endorsement_id).where(EndorsementRef.external_ref == ref)
            )
        )
    assert rows is not None and len(refs) == 1


async def test_a_partner_can_never_endorse_its_own_claim(api: Api) -> None:
    """Even with the endorse scope and the citizen's grant to it."""
    both = await make_partner(
        api, kind="EMPLOYER", scopes=("CLAIMS_WRITE", "PASSPORTS_READ", "CLAIMS_ENDORSE")
    )
    citizen = factories.insz()
    claim = (await issue(api, both, factories.claim_input(citizen)))["claim"]
    await grant(
        api,
        api.citizen(citizen),
        granteeKind="ORGANISATION",
        organisationId=str(both.organisation_id),
    )
    refused = await endorse(api, both, claim["id"])
    assert refused["__typename"] == "NotAuthorized", refused
    assert await mine(api, citizen) and (await mine(api, citizen))[0]["endorsements"] == 0


async def test_only_what_the_citizen_shares_can_be_endorsed(api: Api, school: Partner) -> None:
    citizen = factories.insz()
    me = api.citizen(citizen)
    python = (await issue(api, school, factories.claim_input(citizen)))["claim"]
    sql = (await issue(api, school, factories.claim_input(citizen, factories.SQL)))["claim"]
    partner = await coach(api)
    # no grant: the claim does not exist for this organisation
    assert (await endorse(api, partner, python["id"]))["__typename"] == "NotFound"
    # a grant for SQL only: Python stays unseen, SQL can be endorsed
    granted = await grant(
        api,
        me,
        granteeKind="ORGANISATION",
        organisationId=str(partner.organisation_id),
        competenceUris=[factories.SQL],
    )
    assert (await endorse(api, partner, python["id"]))["__typename"] == "NotFound"
    assert (await endorse(api, partner, sql["id"]))["__typename"] == "ClaimEndorsed"
    # withdrawn: refused from the very next request
    await api.gql(me, REVOKE_GRANT, {"id": granted["grant"]["id"]})
    assert (await endorse(api, partner, sql["id"]))["__typename"] == "NotFound"
    # a client without the endorse scope, whatever it may read
    reader = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    await grant(api, me, granteeKind="ORGANISATION", organisationId=str(reader.organisation_id))
    assert (await endorse(api, reader, sql["id"]))["__typename"] == "NotAuthorized"
    # a malformed id is simply not found, and a revoked claim cannot be endorsed
    assert (await endorse(api, partner, "not-a-uuid"))["__typename"] == "ValidationFailed"
    await grant(api, me, granteeKind="ORGANISATION", organisationId=str(partner.organisation_id))
    await api.gql(school.token, REVOKE, {"input": {"claimId": python["id"], "reason": "in error"}})
    assert (await endorse(api, partner, python["id"]))["__typename"] == "InvalidState"


async def test_a_hidden_endorsement_is_seen_by_the_citizen_alone(api: Api, school: Partner) -> None:
    citizen, claim_id, partner = await _setup(api, school)
    endorsement = (await endorse(api, partner, claim_id))["endorsement"]
    hidden = await api.gql(api.citizen(citizen), HIDE, {"id": endorsement["id"]})
    assert hidden["data"]["hideEndorsement"]["endorsement"]["hidden"] is True
    [competence] = (await shown_to(api, partner, citizen))["competences"]
    assert competence["claims"][0]["endorsements"] == [] and competence["endorsements"] == 0
    [competence] = await mine(api, citizen)
    assert [e["hidden"] for e in competence["claims"][0]["endorsements"]] == [True]
    # nobody else can hide or show it: not its endorser, not another citizen
    other = await api.gql(api.citizen(factories.insz()), SHOW, {"id": endorsement["id"]})
    assert other["data"]["showEndorsement"]["__typename"] == "NotFound"
    by_endorser = await api.gql(partner.token, SHOW, {"id": endorsement["id"]})
    assert by_endorser["data"]["showEndorsement"]["__typename"] == "NotAuthorized"
    shown = await api.gql(api.citizen(citizen), SHOW, {"id": endorsement["id"]})
    assert shown["data"]["showEndorsement"]["endorsement"]["hidden"] is False
    [competence] = (await shown_to(api, partner, citizen))["competences"]
    assert competence["endorsements"] == 1


async def test_the_endorser_revokes_and_nobody_else_can(api: Api, school: Partner) -> None:
    citizen, claim_id, partner = await _setup(api, school)
    endorsement = (await endorse(api, partner, claim_id))["endorsement"]
    stranger = await coach(api)
    data = {"endorsementId": endorsement["id"], "reason": "given by mistake"}
    refused = await api.gql(stranger.token, REVOKE_ENDORSEMENT, {"input": data})
    assert refused["data"]["revokeEndorsement"]["__typename"] == "NotFound"
    revoked = await api.gql(partner.token, REVOKE_ENDORSEMENT, {"input": data})
    view = revoked["data"]["revokeEndorsement"]["endorsement"]
    assert view["status"] == "REVOKED" and view["revocationReason"] == "given by mistake"
    again = await api.gql(partner.token, REVOKE_ENDORSEMENT, {"input": data})
    assert again["data"]["revokeEndorsement"]["endorsement"]["revokedAt"] == view["revokedAt"]
    [competence] = (await shown_to(api, partner, citizen))["competences"]
    assert competence["claims"][0]["endorsements"] == [] and competence["endorsements"] == 0
    [competence] = await mine(api, citizen)
    assert [e["status"] for e in competence["claims"][0]["endorsements"]] == ["REVOKED"]
    assert competence["endorsements"] == 0


async def test_endorsements_are_chained_announced_exported_and_erased(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen, claim_id, partner = await _setup(api, school)
    subscribed = await api.gql(
        partner.token,
        SUBSCRIBE,
        {
            "input": {
                "url": "http://127.0.0.1:9/hooks",
                "eventTypes": ["ENDORSEMENT_CREATED", "ENDORSEMENT_REVOKED", "GRANT_CREATED"],
            }
        },
    )
    subscription = subscribed["data"]["createWebhookSubscription"]["subscription"]["id"]
    endorsement = (await endorse(api, partner, claim_id))["endorsement"]
    await api.gql(api.citizen(citizen), HIDE, {"id": endorsement["id"]})
    await api.gql(
        partner.token,
        REVOKE_ENDORSEMENT,
        {"input": {"endorsementId": endorsement["id"], "reason": "no longer stands by it"}},
    )
    async with engine.connect() as conn:
        citizen_id = await conn.scalar(
            select(ClaimEndorsement.citizen_id).where(
                ClaimEndorsement.endorsement_id == uuid.UUID(endorsement["id"])
            )
        )
        types = list(
            await conn.scalars(
                select(CitizenEvent.event_type)
                .where(CitizenEvent.citizen_id == citizen_id)
                .order_by(CitizenEvent.seq)
            )
        )
        bodies = [
            orjson.loads(body)
            for body in await conn.scalars(
                select(WebhookDelivery.body)
                .where(WebhookDelivery.subscription_id == uuid.UUID(subscription))
                .order_by(WebhookDelivery.seq)
            )
        ]
    assert citizen_id is not None
    assert types[-3:] == ["endorsement.created", "endorsement.hidden", "endorsement.revoked"]
    assert await verify_chain(engine, citizen_id) == []
    # the endorser hears of its own endorsement and its revocation, not of the hiding
    assert [b["type"] for b in bodies] == ["endorsement.created", "endorsement.revoked"]
    assert bodies[0]["data"]["endorsementId"] == endorsement["id"]
    assert citizen not in orjson.dumps(bodies).decode()
    # the citizen's own data holds it, hidden and revoked as it is
    exported = await api.gql(api.citizen(citizen), EXPORT)
    claims = exported["data"]["me"]["exportData"]["claims"]
    [held] = [e for c in claims for e in c["endorsements"]]
    assert held["status"] == "revoked" and held["hiddenAt"] is not None
    # erasure takes it with everything else
    erased = await api.gql(api.citizen(citizen), ERASE)
    counts = {c["kind"]: c["count"] for c in erased["data"]["requestErasure"]["counts"]}
    assert counts["endorsements"] == 1 and counts["endorsementRefs"] == 1
    async with engine.connect() as conn:
        left = await conn.scalar(
            select(ClaimEndorsement.endorsement_id).where(ClaimEndorsement.citizen_id == citizen_id)
        )
    assert left is None


async def test_a_tampered_endorsement_breaks_the_chain_check(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    """A row changed behind the service's back no longer matches its events."""
    from sqlalchemy import text

    _, claim_id, partner = await _setup(api, school)
    endorsement = (await endorse(api, partner, claim_id))["endorsement"]
    async with engine.begin() as conn:
        citizen_id = await conn.scalar(
            text("SELECT citizen_id FROM claim_endorsements WHERE endorsement_id = :e"),
            {"e": endorsement["id"]},
        )
        await conn.execute(
            text("UPDATE claim_endorsements SET hidden_at = now() WHERE endorsement_id = :e"),
            {"e": endorsement["id"]},
        )
    try:
        breaks = await verify_chain(engine, citizen_id)
    finally:  # other tests verify every chain of the database
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE claim_endorsements SET hidden_at = NULL WHERE endorsement_id = :e"),
                {"e": endorsement["id"]},
            )
    assert [b.reason for b in breaks] == [
        f"hiding of endorsement of {endorsement['id']} has no event"
    ]
    assert await verify_chain(engine, citizen_id) == []


async def test_an_export_carries_the_endorsements_readers_may_see(
    api: Api, school: Partner
) -> None:
    """In force and not hidden: in the credential, on the verification page and in the check
    by export id, where a later revocation by the endorser shows."""
    citizen, claim_id, partner = await _setup(api, school)
    kept = (await endorse(api, partner, claim_id, statement="Runs our data platform"))[
        "endorsement"
    ]
    other = await coach(api)
    await grant(
        api,
        api.citizen(citizen),
        granteeKind="ORGANISATION",
        organisationId=str(other.organisation_id),
    )
    hidden = (await endorse(api, other, claim_id, statement="Not for everyone"))["endorsement"]
    await api.gql(api.citizen(citizen), HIDE, {"id": hidden["id"]})
    response = await api.http.get(
        "/passports/me/credential?lang=en",
        headers={"Authorization": f"Bearer {api.citizen(citizen)}"},
    )
    assert response.status_code == 200, response.text
    inner = response.json()["credentialSubject"]["verifiableCredential"]
    comments = [
        c["credentialSubject"]["endorsementComment"]
        for c in inner
        if "EndorsementCredential" in c["type"]
    ]
    assert comments == ["Runs our data platform"]
    code = response.headers["location"].rsplit("/", 1)[1]
    await api.gql(
        partner.token,
        REVOKE_ENDORSEMENT,
        {"input": {"endorsementId": kept["id"], "reason": "changed jobs"}},
    )
    report = (await api.http.post("/verify", json={"exportId": code})).json()
    [endorsement] = [c for c in report["claims"] if c["type"][-1] == "EndorsementCredential"]
    assert endorsement["status"] == "revoked" and endorsement["issuerName"] == partner.name
    assert report["verified"] is False
    page = await api.http.get(f"/v/{code}?lang=en")
    assert page.status_code == 200 and "Endorsement of" in page.text


async def test_a_development_token_for_an_endorsing_client(
    api: Api, tmp_path: Any, monkeypatch: Any, database_url: str
) -> None:
    """`passport token endorser` signs for a registered endorsing client, as the server
    would accept it (the command refuses a client the server would refuse)."""
    import asyncio

    import jwt
    from typer.testing import CliRunner

    from service.auth.keys import load_or_create_dev_key
    from service.cli import app as cli
    from service.settings import get_settings
    from tests.conftest import make_partner

    coach = await make_partner(api, kind="CAREER_GUIDANCE", scopes=("CLAIMS_ENDORSE",))
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PASSPORT_DATABASE_URL", database_url)
    load_or_create_dev_key(tmp_path)
    get_settings.cache_clear()
    try:
        args = ["token", "endorser", "--client-id", coach.client_id]
        # In a thread: the command runs its own event loop for the client look-up.
        minted = await asyncio.to_thread(lambda: CliRunner().invoke(cli, args))
    finally:
        get_settings.cache_clear()
    assert minted.exit_code == 0, minted.output
    claims = jwt.decode(minted.output.strip(), options={"verify_signature": False})
    assert claims["scope"] == "claims:endorse" and claims["client_id"] == coach.client_id
