"""Consent: grants to organisations and share links, exactly what they cover, revocation at once."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests import factories
from tests.citizen_api import (
    GRANT,
    LEGAL_READ,
    MY_GRANTS,
    REVOKE_GRANT,
    consent_read,
    grant,
    grant_input,
    in_days,
    shared_read,
    travel,
    uris,
)
from tests.conftest import grant_basis, make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue

GRANTS_RECEIVED = """
query($first: Int) {
  grantsReceived(first: $first) {
    edges { node { id citizenId purpose status competences { uri } } }
    pageInfo { hasNextPage }
  }
}"""


async def _citizen_with_claims(api: Api, school: Partner) -> str:
    citizen = factories.insz()
    for uri in (factories.PYTHON, factories.SQL, factories.TEAMWORK):
        await issue(api, school, factories.claim_input(citizen, uri))
    return citizen


async def _employer_reader(api: Api) -> tuple[Partner, str]:
    """An employer's reading system and the enterprise number a citizen would name it by."""
    reader = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    body = await api.gql(api.admin(), "{ organisations { id enterpriseNumber } }")
    number = next(
        o["enterpriseNumber"]
        for o in body["data"]["organisations"]
        if o["id"] == str(reader.organisation_id)
    )
    return reader, number


async def test_reader_sees_exactly_the_granted_competences(api: Api, school: Partner) -> None:
    citizen = await _citizen_with_claims(api, school)
    me = api.citizen(citizen)
    reader, number = await _employer_reader(api)
    # Without a grant the passport does not exist for this reader.
    assert (await consent_read(api, reader.token, citizen))["__typename"] == "NotFound"
    granted = await grant(
        api,
        me,
        granteeKind="ORGANISATION",
        enterpriseNumber=number,
        competenceUris=[factories.PYTHON, factories.TEAMWORK],
    )
    assert granted["created"] is True and granted["shareLink"] is None
    assert granted["grant"]["organisation"]["id"] == str(reader.organisation_id)
    passport = await consent_read(api, reader.token, citizen, purpose="shortlisting")
    assert passport["basis"] == "CONSENT"
    assert uris(passport) == {factories.PYTHON, factories.TEAMWORK}  # not SQL, not even a hint
    # A second grant for the whole passport widens what this reader sees; the union counts.
    await grant(api, me, granteeKind="ORGANISATION", organisationId=str(reader.organisation_id))
    passport = await consent_read(api, reader.token, citizen)
    assert uris(passport) == {factories.PYTHON, factories.SQL, factories.TEAMWORK}


async def test_revocation_takes_effect_on_the_next_request(api: Api, school: Partner) -> None:
    citizen = await _citizen_with_claims(api, school)
    me = api.citizen(citizen)
    reader, _ = await _employer_reader(api)
    granted = await grant(
        api, me, granteeKind="ORGANISATION", organisationId=str(reader.organisation_id)
    )
    assert (await consent_read(api, reader.token, citizen))["__typename"] == "Passport"
    body = await api.gql(me, REVOKE_GRANT, {"id": granted["grant"]["id"]})
    assert body["data"]["revokeAccess"]["grant"]["status"] == "REVOKED"
    assert (await consent_read(api, reader.token, citizen))["__typename"] == "NotFound"
    again = await api.gql(me, REVOKE_GRANT, {"id": granted["grant"]["id"]})  # idempotent
    assert (
        again["data"]["revokeAccess"]["grant"]["revokedAt"]
        == (body["data"]["revokeAccess"]["grant"]["revokedAt"])
    )


async def test_expired_grant_reads_nothing(
    api: Api, school: Partner, monkeypatch: pytest.MonkeyPatch
) -> None:
    citizen = await _citizen_with_claims(api, school)
    reader, _ = await _employer_reader(api)
    await grant(
        api,
        api.citizen(citizen),
        granteeKind="ORGANISATION",
        organisationId=str(reader.organisation_id),
        expiresAt=in_days(1 / 24),
    )
    assert (await consent_read(api, reader.token, citizen))["__typename"] == "Passport"
    travel(monkeypatch, timedelta(hours=2))
    assert (await consent_read(api, reader.token, citizen))["__typename"] == "NotFound"
    mine = await api.gql(api.citizen(citizen), MY_GRANTS)
    assert mine["data"]["me"]["grants"][0]["status"] == "EXPIRED"


async def test_share_link_is_shown_once_stored_hashed_and_reads_its_subset(
    api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen = await _citizen_with_claims(api, school)
    me = api.citizen(citizen)
    data = grant_input(competenceUris=[factories.SQL])
    first = (await api.gql(me, GRANT, {"input": data}))["data"]["grantAccess"]
    token = first["shareLink"]["token"]
    assert token.startswith("psl_") and len(token) > 40
    # A retry returns the same grant, and never the secret again.
    retry = (await api.gql(me, GRANT, {"input": data}))["data"]["grantAccess"]
    assert retry["created"] is False and retry["shareLink"] is None
    assert retry["grant"]["id"] == first["grant"]["id"]
    # Only the hash is stored, nowhere the token itself.
    async with engine.connect() as conn:
        stored = await conn.scalar(
            text("SELECT count(*) FROM share_links WHERE secret_hash = :h"),
            {"h": hashlib.sha256(token.encode()).digest()},
        )
        anywhere = await conn.scalar(
            text("SELECT count(*) FROM access_grants g WHERE g::text LIKE :t"),
            {"t": f"%{token[4:20]}%"},
        )
    assert (stored, anywhere) == (1, 0)
    shared = await shared_read(api, token)
    assert shared["status"] == 200
    passport = shared["data"]["sharedPassport"]
    assert passport["basis"] == "LINK" and uris(passport) == {factories.SQL}
    # The link reads only its own passport, nothing else.
    other = await api.post(token, "{ me { passport { citizenId } } }")
    assert other.json()["errors"][0]["extensions"]["code"] == "NOT_AUTHORIZED"
    await api.gql(me, REVOKE_GRANT, {"id": first["grant"]["id"]})
    after = await shared_read(api, token)
    assert after["status"] == 401
    assert after["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_expired_and_unknown_share_links_are_refused(
    api: Api, school: Partner, monkeypatch: pytest.MonkeyPatch
) -> None:
    citizen = await _citizen_with_claims(api, school)
    link = await grant(api, api.citizen(citizen), expiresAt=in_days(1 / 24))
    token = link["shareLink"]["token"]
    assert (await shared_read(api, token))["status"] == 200
    travel(monkeypatch, timedelta(hours=2))
    assert (await shared_read(api, token))["status"] == 401
    assert (await shared_read(api, "psl_" + "A" * 43))["status"] == 401
    assert (await shared_read(api, "psl_\x00"))["status"] == 401


async def test_a_retry_after_expiry_still_returns_the_grant(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = api.citizen(factories.insz())
    data = grant_input(expiresAt=in_days(1 / 24))
    made = (await api.gql(me, GRANT, {"input": data}))["data"]["grantAccess"]
    travel(monkeypatch, timedelta(hours=2))
    retry = (await api.gql(me, GRANT, {"input": data}))["data"]["grantAccess"]
    assert retry["__typename"] == "AccessGranted", retry
    assert retry["grant"]["id"] == made["grant"]["id"]
    assert retry["grant"]["status"] == "EXPIRED"


async def test_same_key_with_another_request_is_a_conflict(api: Api) -> None:
    me = api.citizen(factories.insz())
    data = grant_input()
    await api.gql(me, GRANT, {"input": data})
    body = await api.gql(me, GRANT, {"input": {**data, "purpose": "something else"}})
    result = body["data"]["grantAccess"]
    assert result["code"] == "CONFLICT" and result["existingId"]


async def test_active_grants_are_limited_and_a_revocation_frees_a_place(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit is checked under the citizen's lock, by the database call that writes the grant
    (``passport_record_grant``): three active grants at a limit of three, a fourth refused
    and nothing written, then granted once one is revoked. A retry of a grant made before is
    answered even at the limit."""
    monkeypatch.setattr("service.consent.service.MAX_ACTIVE_GRANTS", 3)
    me = api.citizen(factories.insz())
    inputs = [grant_input() for _ in range(3)]
    made = [await grant(api, me, **data) for data in inputs]
    assert all(m["created"] for m in made), made
    data = grant_input()
    refused = (await api.gql(me, GRANT, {"input": data}))["data"]["grantAccess"]
    assert refused["__typename"] == "InvalidState", refused
    assert "at most 3 grants" in refused["message"]
    mine = (await api.gql(me, MY_GRANTS))["data"]["me"]["grants"]
    assert len(mine) == 3
    retry = await grant(api, me, **inputs[1])
    assert retry["created"] is False and retry["grant"]["id"] == made[1]["grant"]["id"], retry
    revoked = await api.gql(me, REVOKE_GRANT, {"id": made[0]["grant"]["id"]})
    assert revoked["data"]["revokeAccess"]["grant"]["status"] == "REVOKED"
    after = (await api.gql(me, GRANT, {"input": data}))["data"]["grantAccess"]
    assert after["__typename"] == "AccessGranted" and after["created"], after


BAD_GRANTS: list[tuple[dict[str, Any], str]] = [
    ({"expiresAt": in_days(367)}, "input.expiresAt"),
    ({"expiresAt": in_days(-1)}, "input.expiresAt"),
    ({"expiresAt": in_days(1 / 24 / 60)}, "input.expiresAt"),  # a minute: too short to use
    ({"expiresAt": "2030-01-01T00:00:00"}, "input.expiresAt"),  # no time zone
    ({"purpose": "  "}, "input.purpose"),
    ({"purpose": "checking 85.07.30-033.28"}, "input.purpose"),  # a national number
    ({"competenceUris": []}, "input.competenceUris"),
    ({"competenceUris": [factories.SKILL_GROUP]}, "input.competenceUris.0"),
    ({"competenceUris": ["http://example.org/none"]}, "input.competenceUris.0"),
    ({"granteeKind": "ORGANISATION"}, "input"),  # names no organisation
    ({"organisationId": "00000000-0000-0000-0000-000000000000"}, "input"),  # link names one
    (
        {"granteeKind": "ORGANISATION", "organisationId": "00000000-0000-0000-0000-000000000000"},
        "input.organisationId",
    ),
    ({"granteeKind": "ORGANISATION", "enterpriseNumber": "0123"}, "input.enterpriseNumber"),
    ({"idempotencyKey": ""}, "input.idempotencyKey"),
]


async def test_bad_grants_are_typed_errors_and_write_nothing(api: Api, engine: AsyncEngine) -> None:
    me = api.citizen(factories.insz())
    for overrides, field in BAD_GRANTS:
        body = await api.gql(me, GRANT, {"input": grant_input(**overrides)})
        result = body["data"]["grantAccess"]
        assert result["code"] == "VALIDATION_FAILED", (overrides, result)
        assert field in [p["field"] for p in result["problems"]], (overrides, result)
    assert (await api.gql(me, MY_GRANTS))["data"]["me"]["grants"] == []


async def test_only_citizens_grant(api: Api, school: Partner, reader: Partner) -> None:
    for token in (school.token, reader.token, api.admin()):
        body = await api.gql(token, GRANT, {"input": grant_input()})
        assert body["data"]["grantAccess"]["code"] == "NOT_AUTHORIZED"


async def test_reader_lists_the_grants_it_received(api: Api, school: Partner) -> None:
    citizen = await _citizen_with_claims(api, school)
    reader, _ = await _employer_reader(api)
    granted = await grant(
        api,
        api.citizen(citizen),
        granteeKind="ORGANISATION",
        organisationId=str(reader.organisation_id),
        competenceUris=[factories.PYTHON],
        purpose="vacancy 2026-17",
    )
    body = await api.gql(reader.token, GRANTS_RECEIVED, {"first": 10})
    nodes = [e["node"] for e in body["data"]["grantsReceived"]["edges"]]
    assert [n["id"] for n in nodes] == [granted["grant"]["id"]]
    assert nodes[0]["purpose"] == "vacancy 2026-17"
    assert nodes[0]["competences"] == [{"uri": factories.PYTHON}]
    other, _ = await _employer_reader(api)
    empty = await api.gql(other.token, GRANTS_RECEIVED, {"first": 10})
    assert empty["data"]["grantsReceived"]["edges"] == []


async def test_legal_basis_is_for_the_public_employment_service_only(api: Api) -> None:
    employer = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    body = await api.gql(
        api.admin(),
        """mutation($input: GrantLegalBasisInput!) {
             grantLegalBasis(input: $input) {
               __typename ... on ValidationFailed { problems { code } }
             }
           }""",
        {
            "input": {
                "organisationId": str(employer.organisation_id),
                "code": "GUIDANCE",
                "reference": "Decree on guidance, art. 5",
            }
        },
    )
    assert body["data"]["grantLegalBasis"]["problems"][0]["code"] == "legal_basis_not_allowed"


async def test_legal_basis_read_needs_a_purpose_and_records_it(
    api: Api, school: Partner, reader: Partner
) -> None:
    citizen = await _citizen_with_claims(api, school)
    body = await api.gql(
        reader.token, LEGAL_READ, {"citizen": {"insz": citizen}, "basis": "GUIDANCE"}
    )
    assert body["data"]["passport"]["__typename"] == "ValidationFailed"
    body = await api.gql(
        reader.token,
        LEGAL_READ,
        {"citizen": {"insz": citizen}, "basis": "GUIDANCE", "purpose": "intake interview"},
    )
    assert body["data"]["passport"]["basis"] == "LEGAL_BASIS"


async def test_a_grant_to_one_reader_shows_nothing_to_another(api: Api, school: Partner) -> None:
    citizen = await _citizen_with_claims(api, school)
    chosen, _ = await _employer_reader(api)
    other, _ = await _employer_reader(api)
    pes = await make_partner(api, kind="PUBLIC_EMPLOYMENT_SERVICE", scopes=("PASSPORTS_READ",))
    await grant_basis(api, pes)
    await grant(
        api,
        api.citizen(citizen),
        granteeKind="ORGANISATION",
        organisationId=str(chosen.organisation_id),
    )
    assert (await consent_read(api, other.token, citizen))["__typename"] == "NotFound"
    # A legal basis does not stand in for consent unless it is named on the read.
    assert (await consent_read(api, pes.token, citizen))["__typename"] == "NotFound"
