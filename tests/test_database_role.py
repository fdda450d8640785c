"""Defence in depth in the database: the application's role can append to the record but
never change or remove it; only the erasure function removes, and only a whole citizen."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.engine import sqlstate
from tests import factories
from tests.citizen_api import REVOKE_GRANT, SHARED_READ, grant
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue

INSUFFICIENT_PRIVILEGE = "42501"
APPEND_ONLY = ("claims", "claim_revocations", "claim_refs", "citizen_events", "access_records")


def _app_engine(app: object) -> AsyncEngine:
    engine: AsyncEngine = app.state.passport.engine  # type: ignore[attr-defined]
    return engine


async def test_the_application_runs_as_its_restricted_role(app: object) -> None:
    async with _app_engine(app).connect() as conn:
        assert await conn.scalar(text("SELECT current_user")) == "passport_app"
        # The role is the session's own, so resetting it changes nothing.
        await conn.execute(text("RESET ROLE"))
        assert await conn.scalar(text("SELECT current_user")) == "passport_app"


@pytest.mark.parametrize("table", APPEND_ONLY)
@pytest.mark.parametrize("statement", ["UPDATE {t} SET citizen_id = citizen_id", "DELETE FROM {t}"])
async def test_direct_updates_and_deletes_fail(
    app: object, api: Api, school: Partner, table: str, statement: str
) -> None:
    await issue(api, school, factories.claim_input(factories.insz()))  # rows exist to touch
    async with _app_engine(app).connect() as conn:
        with pytest.raises(DBAPIError) as raised:
            await conn.execute(text(statement.format(t=table)))
        await conn.rollback()
    assert sqlstate(raised.value) == INSUFFICIENT_PRIVILEGE


async def test_no_table_lets_the_application_delete(engine: AsyncEngine) -> None:
    """The privilege matrix as the database holds it: DELETE nowhere, UPDATE only on columns
    that record a status or a withdrawal, never on the append-only tables."""
    async with engine.connect() as conn:
        deletes = await conn.scalars(
            text(
                "SELECT table_name FROM information_schema.role_table_grants "
                "WHERE grantee = 'passport_app' AND privilege_type IN ('DELETE', 'TRUNCATE')"
            )
        )
        assert list(deletes) == []
        updates = await conn.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.column_privileges "
                "WHERE grantee = 'passport_app' AND privilege_type = 'UPDATE' ORDER BY 1, 2"
            )
        )
        catalogue = (
            "competence_ids",
            "duration_hours",
            "language",
            "location",
            "mode",
            "status",
            "title",
            "updated_at",
            "url",
        )  # a provider's offers, not personal
        assert [tuple(row) for row in updates] == [
            ("access_grants", "revoked_at"),
            ("api_clients", "status"),
            # the citizen's goals and stances: theirs to change (each change is an event)
            ("career_goals", "active"),
            ("career_goals", "horizon_year"),
            ("career_goals", "updated_at"),
            # the name the citizen chose for their exports: theirs to change
            ("citizen_settings", "export_name"),
            ("citizen_settings", "updated_at"),
            # the citizen hides an endorsement, its endorser revokes it
            ("claim_endorsements", "hidden_at"),
            ("claim_endorsements", "revocation_reason"),
            ("claim_endorsements", "revoked_at"),
            *(
                ("competence_profiles", column)
                for column in ("archived_at", "name", "requirements", "updated_at")
            ),  # an organisation's profiles, not personal
            ("competence_wants", "stance"),
            ("competence_wants", "updated_at"),
            # an offer to the citizen's wallet: wrong transaction codes counted, redeemed once
            ("credential_offers", "redeemed_at"),
            ("credential_offers", "tx_code_failures"),
            *(("learning_opportunities", column) for column in catalogue),
            ("legal_bases", "revoked_at"),
            ("organisations", "status"),
            ("team_checks", "closed_at"),
            ("wallet_nonces", "used_at"),  # a key proof's nonce, spent once
            *(
                ("webhook_deliveries", column)
                for column in (
                    "attempts",
                    "delivered_at",
                    "last_attempt_at",
                    "last_error",
                    "last_response_status",
                    "next_attempt_at",
                    "status",
                )
            ),  # the dispatcher's record of attempts; what was sent never changes
            ("webhook_subscriptions", "disabled_at"),
            ("work_experiences", "withdrawn_at"),  # by whoever recorded it; nothing else
        ]
        # Every table has been given some privilege on purpose, or deliberately none.
        ungranted = await conn.scalars(
            text(
                "SELECT table_name FROM information_schema.tables t "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND NOT EXISTS ("
                "  SELECT 1 FROM information_schema.role_table_grants g "
                "  WHERE g.grantee = 'passport_app' AND g.table_name = t.table_name) "
                "ORDER BY 1"
            )
        )
        assert list(ungranted) == ["erasures", "retained_access_records"]


async def test_the_taxonomy_is_read_only_to_the_application(app: object) -> None:
    async with _app_engine(app).connect() as conn:
        with pytest.raises(DBAPIError) as raised:
            await conn.execute(text("UPDATE competences SET code = code WHERE id = 1"))
        await conn.rollback()
    assert sqlstate(raised.value) == INSUFFICIENT_PRIVILEGE


async def test_only_the_erasure_function_removes_a_citizen(
    app: object, api: Api, school: Partner
) -> None:
    await issue(api, school, factories.claim_input(factories.insz()))
    async with _app_engine(app).connect() as conn:
        with pytest.raises(DBAPIError) as raised:
            await conn.execute(text("DELETE FROM citizens"))
        await conn.rollback()
    assert sqlstate(raised.value) == INSUFFICIENT_PRIVILEGE


async def test_a_revocation_cannot_be_withdrawn(app: object, api: Api) -> None:
    """The application may record a revocation, never undo it: a revoked consent stays so."""
    me = api.citizen(factories.insz())
    made = await grant(api, me)
    await api.gql(me, REVOKE_GRANT, {"id": made["grant"]["id"]})
    async with _app_engine(app).connect() as conn:
        with pytest.raises(DBAPIError) as raised:
            await conn.execute(
                text("UPDATE access_grants SET revoked_at = NULL WHERE grant_id = :g"),
                {"g": made["grant"]["id"]},
            )
        await conn.rollback()
    assert sqlstate(raised.value) == "23000"
    assert (await api.post(made["shareLink"]["token"], SHARED_READ)).status_code == 401


async def test_the_erasure_function_resolves_nothing_the_application_could_shadow(
    app: object, engine: AsyncEngine
) -> None:
    async with engine.connect() as conn:
        config = await conn.scalar(
            text("SELECT proconfig FROM pg_proc WHERE proname = 'passport_erase_citizen'")
        )
    assert config == ["search_path=pg_catalog, pg_temp"]
    async with _app_engine(app).connect() as conn:
        with pytest.raises(DBAPIError) as raised:
            await conn.execute(
                text(
                    "CREATE FUNCTION public.hashtextextended(text, integer) RETURNS bigint "
                    "LANGUAGE sql AS 'SELECT 0::bigint'"
                )
            )
        await conn.rollback()
    assert sqlstate(raised.value) == INSUFFICIENT_PRIVILEGE
