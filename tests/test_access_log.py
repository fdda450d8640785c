"""The access log: every read of a passport, for its citizen only, newest first, paginated."""

from __future__ import annotations

from tests import factories
from tests.citizen_api import (
    ACCESS_LOG,
    LEGAL_READ,
    MY_PASSPORT,
    access_log,
    consent_read,
    grant,
    shared_read,
)
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue


async def test_every_read_is_logged_with_who_why_and_what(
    api: Api, school: Partner, reader: Partner
) -> None:
    citizen = factories.insz()
    me = api.citizen(citizen)
    for uri in (factories.PYTHON, factories.SQL):
        await issue(api, school, factories.claim_input(citizen, uri))
    employer = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    consent = await grant(
        api,
        me,
        granteeKind="ORGANISATION",
        organisationId=str(employer.organisation_id),
        competenceUris=[factories.SQL],
        purpose="application for data analyst",
    )
    link = await grant(api, me, purpose="CV for recruiter")
    await api.gql(me, MY_PASSPORT)
    await api.gql(
        reader.token,
        LEGAL_READ,
        {"citizen": {"insz": citizen}, "basis": "GUIDANCE", "purpose": "intake interview"},
    )
    await consent_read(api, employer.token, citizen, purpose="shortlist")
    await shared_read(api, link["shareLink"]["token"])

    entries = await access_log(api, me)
    assert [e["basis"] for e in entries] == ["LINK", "CONSENT", "LEGAL_BASIS", "SELF"]
    shared, consented, legal, own = entries
    assert shared["principalKind"] == "LINK" and shared["organisation"] is None
    assert shared["grants"] == [{"id": link["grant"]["id"], "purpose": "CV for recruiter"}]
    assert consented["organisation"]["kind"] == "EMPLOYER"
    assert consented["clientId"] == employer.client_id
    assert consented["grants"] == [
        {"id": consent["grant"]["id"], "purpose": "application for data analyst"}
    ]
    assert consented["purpose"] == "shortlist"
    assert [c["uri"] for c in consented["competences"]] == [factories.SQL]
    assert legal["legalBasis"] == {"code": "GUIDANCE", "reference": "Decree on guidance, art. 5"}
    assert legal["purpose"] == "intake interview"
    assert {c["uri"] for c in legal["competences"]} == {factories.PYTHON, factories.SQL}
    assert own["principalKind"] == "CITIZEN" and own["clientId"] is None
    stamps = [e["accessedAt"] for e in entries]
    assert stamps == sorted(stamps, reverse=True)


async def test_refused_reads_leave_no_entry(api: Api, school: Partner) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    stranger = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    assert (await consent_read(api, stranger.token, citizen))["__typename"] == "NotFound"
    assert await access_log(api, api.citizen(citizen)) == []


async def test_the_log_pages_newest_first(api: Api, school: Partner) -> None:
    citizen = factories.insz()
    me = api.citizen(citizen)
    await issue(api, school, factories.claim_input(citizen))
    for _ in range(5):
        await api.gql(me, MY_PASSPORT)
    seen: list[str] = []
    after = None
    while True:
        body = await api.gql(me, ACCESS_LOG, {"first": 2, "after": after})
        page = body["data"]["me"]["accessLog"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 5
    assert seen == [e["id"] for e in await access_log(api, me)]
    bad = await api.gql(me, ACCESS_LOG, {"first": 2, "after": "not-a-cursor"})
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"


async def test_nobody_reads_anothers_log(api: Api, school: Partner, reader: Partner) -> None:
    citizen, other = factories.insz(), factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    await issue(api, school, factories.claim_input(other))
    await api.gql(api.citizen(citizen), MY_PASSPORT)
    await api.gql(api.citizen(other), MY_PASSPORT)
    mine, theirs = (
        await access_log(api, api.citizen(citizen)),
        await access_log(api, api.citizen(other)),
    )
    assert len(mine) == len(theirs) == 1  # `me` is always oneself: each sees only their read
    assert mine[0]["id"] != theirs[0]["id"]
    for token in (school.token, reader.token, api.admin()):
        body = await api.gql(token, ACCESS_LOG, {"first": 5})
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "NOT_AUTHORIZED"
