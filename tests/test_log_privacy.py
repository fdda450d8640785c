"""A whole scenario with every logger at its most talkative: no national number, name, token or
share-link secret reaches a log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from service.logs import configure_logging, formatter, redact_text
from tests import factories
from tests.citizen_api import (
    ERASE,
    EXPORT,
    LEGAL_READ,
    MY_PASSPORT,
    SELF_DECLARE,
    access_log,
    consent_read,
    grant,
    shared_read,
)
from tests.conftest import make_partner
from tests.graphql_client import Api, Partner
from tests.test_claims_api import ISSUE, issue

NAME = "Janssens-Vermeulen"  # a citizen's name, as a coach might type it into free text


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    configure_logging("DEBUG", library_level="DEBUG")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    talkative = {name: logging.getLogger(name) for name in ("sqlalchemy.engine", "httpx")}
    levels = {name: lg.level for name, lg in talkative.items()}
    root.addHandler(handler)
    for lg in talkative.values():
        lg.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name, lg in talkative.items():
            lg.setLevel(levels[name])
        configure_logging()


async def test_a_full_scenario_logs_no_personal_data(
    api: Api, school: Partner, reader: Partner, captured: io.StringIO
) -> None:
    citizen = factories.insz()
    dotted = f"{citizen[:2]}.{citizen[2:4]}.{citizen[4:6]}-{citizen[6:9]}.{citizen[9:]}"
    me = api.citizen(citizen)
    claim = await issue(
        api,
        school,
        factories.claim_input(citizen, context=f"Assessed {NAME} on the job", issuerRole=NAME),
    )
    # Failures too: a wrong number, a number in the wrong place, a broken token.
    await api.gql(school.token, ISSUE, {"input": factories.claim_input(dotted[:-1] + "0")})
    await api.gql(
        school.token, ISSUE, {"input": factories.claim_input(citizen, externalRef=citizen)}
    )
    await api.post(me[:-4] + "AAAA", MY_PASSPORT)
    await api.post(f"{citizen}.{NAME}", MY_PASSPORT)
    await api.gql(
        me,
        SELF_DECLARE,
        {
            "input": {
                "competenceUri": factories.ENGLISH,
                "acquiredOn": "2010-01-01",
                "context": f"{NAME} speaks English",
            }
        },
    )
    employer = await make_partner(api, kind="EMPLOYER", scopes=("PASSPORTS_READ",))
    await grant(api, me, granteeKind="ORGANISATION", organisationId=str(employer.organisation_id))
    link = await grant(api, me)
    token = link["shareLink"]["token"]
    await grant(api, me, purpose=f"for {citizen}")  # refused: a number in a purpose
    await consent_read(api, employer.token, citizen)
    await shared_read(api, token)
    await api.gql(
        reader.token,
        LEGAL_READ,
        {"citizen": {"insz": citizen}, "basis": "GUIDANCE", "purpose": "intake"},
    )
    await api.gql(me, MY_PASSPORT)
    await access_log(api, me)
    await api.gql(me, EXPORT)
    await api.http.get("/me/export", headers={"Authorization": f"Bearer {me}"})
    await api.gql(me, ERASE)

    output = captured.getvalue()
    assert output.count("\n") > 50, "the scenario should have logged (SQL at INFO level)"
    assert claim["claim"]["id"]  # ids are not personal data and may appear
    for secret in (citizen, dotted, NAME, me, token, token[4:24], employer.token, school.token):
        assert secret not in output, f"{secret[:12]}... found in the logs"


def test_a_value_the_driver_could_not_send_is_not_repeated() -> None:
    """asyncpg names the value in its error; logs and spans keep the argument's number only."""
    message = "invalid input for query argument $3: 'Jan Peeters' (expected int, got str)"
    cleaned = redact_text(message)
    assert "Peeters" not in cleaned and "query argument $3: " in cleaned, cleaned
    assert cleaned.endswith("(expected int, got str)"), cleaned
