"""The schema and its Citus layout (service/db/citus.py, docs/scaling.md) stay in step.

On plain PostgreSQL: every table is placed, every key of a sharded table leads with its
distribution column (so Citus can check it on one shard), and the foreign keys Citus cannot
enforce are exactly the declared ones. On a Citus cluster (``PASSPORT_TEST_CITUS_URL``): the
test database really is laid out so, with nothing lost on the way.
"""

from __future__ import annotations

import secrets

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.citus import (
    CITIZEN_KEY,
    CITIZENS,
    CROSSING_FOREIGN_KEYS,
    LAYOUT,
    REFERENCE,
    ForeignKey,
    Kind,
    LayoutError,
    Placement,
    by_citizen,
    check_layout,
    citus_keeps,
    distribute,
    foreign_keys,
    place_in_migration,
)
from service.db.embedded import asyncpg_dsn
from service.db.migrate import DEFAULT_APP_ROLE
from service.models import Base
from tests.databases import NO_CITUS, on_citus

INDEXES = """
SELECT c.relname AS table_name, i.relname AS index_name, ix.indisprimary AS is_primary,
       (SELECT a.attname FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum = ix.indkey[0]) AS leading
FROM pg_index ix
JOIN pg_class c ON c.oid = ix.indrelid
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND (ix.indisprimary OR ix.indisunique) AND c.relkind = 'r'
ORDER BY 1, 2
"""
TABLES = """
SELECT relname FROM pg_class
WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition
"""
CITIZEN_TABLES = """
SELECT DISTINCT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
  AND a.attname = 'citizen_id' AND NOT a.attisdropped
"""


async def _raw(engine: AsyncEngine) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(engine.url))


async def test_every_table_is_placed(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        tables = set(await conn.scalars(text(TABLES)))
    check_layout(tables)  # raises, naming what is not placed
    assert set(Base.metadata.tables) <= LAYOUT.keys()
    with pytest.raises(LayoutError, match="not placed: wallet_offers"):
        check_layout({*tables, "wallet_offers"})


async def test_per_citizen_tables_are_sharded_with_the_citizen(engine: AsyncEngine) -> None:
    """A table with a citizen's rows lives with the citizen, unless it is a lookup that finds
    the citizen from something else (then it is sharded by that)."""
    async with engine.connect() as conn:
        tables = set(await conn.scalars(text(CITIZEN_TABLES)))
    assert {"claims", "citizen_events", "access_records", "access_grants"} <= tables
    lookups = {
        "citizen_identities",  # national number hash -> citizen
        "share_links",  # share-link secret hash -> grant
        "claim_refs",  # an issuer's idempotency key -> claim
        "endorsement_refs",  # an endorser's idempotency key -> endorsement
        "work_experience_refs",  # an employer's idempotency key -> record
        "credential_offer_codes",  # a wallet's pre-authorized code hash -> offer
        "wallet_access_tokens",  # a wallet's access token hash -> offer
    }
    for table in sorted(tables - lookups - {CITIZENS}):
        assert LAYOUT[table] == Placement(Kind.DISTRIBUTED, CITIZEN_KEY, CITIZENS), table
    for table in sorted(lookups):
        assert LAYOUT[table].kind is Kind.DISTRIBUTED and LAYOUT[table].column != CITIZEN_KEY


async def test_keys_of_sharded_tables_lead_with_their_distribution_column(
    engine: AsyncEngine,
) -> None:
    """Citus checks a primary key or unique index on one shard only when it holds the
    distribution column; leading with it also serves the lookups by it."""
    async with engine.connect() as conn:
        rows = list(await conn.execute(text(INDEXES)))
    sharded = {t for t, p in LAYOUT.items() if p.kind is Kind.DISTRIBUTED}
    wrong = [
        f"{row.table_name}.{row.index_name} leads with {row.leading}"
        for row in rows
        if row.table_name in sharded and row.leading != LAYOUT[row.table_name].column
    ]
    assert wrong == [], "keys of sharded tables must lead with their distribution column"
    assert {row.table_name for row in rows if row.is_primary} >= sharded


def _fk(
    table: str, referred: str, columns: tuple[str, ...], referred_cols: tuple[str, ...]
) -> bool:
    return citus_keeps(ForeignKey(table, "fk", referred, columns, referred_cols))


def test_which_foreign_keys_citus_keeps() -> None:
    assert _fk("claims", "competences", ("competence_id",), ("id",))  # to a reference table
    assert _fk("competence_labels", "competences", ("competence_id",), ("id",))
    assert _fk(
        "claim_revocations", "claims", ("citizen_id", "claim_id"), ("citizen_id", "claim_id")
    )
    # colocated, but not joined on the distribution column
    assert not _fk("claims", "citizens", ("claim_id",), ("citizen_id",))
    assert not _fk("citizen_identities", "citizens", ("citizen_id",), ("citizen_id",))
    assert not _fk("organisations", "citizens", ("id",), ("citizen_id",))  # reference -> sharded


async def test_the_foreign_keys_citus_cannot_keep_are_the_declared_ones(
    engine: AsyncEngine,
) -> None:
    """A foreign key between rows on different nodes is dropped by ``passport distribute``;
    each must be declared (with why the application does not need it) in
    CROSSING_FOREIGN_KEYS."""
    conn = await _raw(engine)
    try:
        found = await foreign_keys(conn)
    finally:
        await conn.close()
    if on_citus(engine.url):  # already distributed: the crossing ones are gone
        assert not any((fk.table, fk.referred) in CROSSING_FOREIGN_KEYS for fk in found)
        assert all(citus_keeps(fk) for fk in found)
        return
    assert {(fk.table, fk.referred) for fk in found if not citus_keeps(fk)} == set(
        CROSSING_FOREIGN_KEYS
    )


async def test_distribute_is_a_no_op_on_plain_postgresql(engine: AsyncEngine) -> None:
    if on_citus(engine.url):
        pytest.skip("the test database is on Citus")
    report = await distribute(engine, DEFAULT_APP_ROLE)
    assert report.citus is False and report.placed == {}


# --- On a Citus cluster ----------------------------------------------------------------------

CITUS_TABLES = """
SELECT p.logicalrelid::regclass::text AS table_name,
       CASE p.partmethod WHEN 'h' THEN 'distributed' WHEN 'n' THEN 'reference' END AS kind,
       column_to_column_name(p.logicalrelid, p.partkey) AS column_name, p.colocationid
FROM pg_dist_partition p
"""


@pytest.fixture
def citus(engine: AsyncEngine) -> AsyncEngine:
    if not on_citus(engine.url):
        pytest.skip(NO_CITUS)
    return engine


async def test_the_layout_is_in_place_on_citus(citus: AsyncEngine) -> None:
    conn = await _raw(citus)
    try:
        rows = {row["table_name"]: row for row in await conn.fetch(CITUS_TABLES)}
        for table, placement in LAYOUT.items():
            if placement.kind is Kind.LOCAL:
                assert table not in rows, table
                continue
            assert rows[table]["kind"] == placement.kind.value, table
            if placement.kind is Kind.DISTRIBUTED:
                assert rows[table]["column_name"] == placement.column, table
                anchor = placement.colocate_with or table
                assert rows[table]["colocationid"] == rows[anchor]["colocationid"], table
        anchors = [
            t for t, p in LAYOUT.items() if p.kind is Kind.DISTRIBUTED and not p.colocate_with
        ]
        assert len({rows[t]["colocationid"] for t in anchors}) == len(anchors)
        # Nothing the conversion could lose is lost: the view's rows, index and grant.
        assert await conn.fetchval("SELECT count(*) FROM occupation_requirement_counts") == 3007
        assert await conn.fetchval(
            "SELECT has_table_privilege($1, 'occupation_requirement_counts', 'SELECT')",
            DEFAULT_APP_ROLE,
        )
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_indexes WHERE indexname = "
            "'uq_occupation_requirement_counts_occupation'"
        )
        # Citus reaches the workers as the application's role.
        assert await conn.fetchval(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", DEFAULT_APP_ROLE
        )
        workers = await conn.fetch("SELECT * FROM citus_get_active_worker_nodes()")
        assert len(workers) >= 2
        # The local copies of the moved rows are gone: the rows live on the shards.
        assert await conn.fetchval("SELECT pg_relation_size('competences')") == 0
        assert await conn.fetchval("SELECT count(*) FROM competences") > 13_000
    finally:
        await conn.close()


async def test_distribute_again_changes_nothing(citus: AsyncEngine) -> None:
    report = await distribute(citus, DEFAULT_APP_ROLE)
    assert report.citus and report.placed == {} and report.restored == []
    assert set(report.already) == {t for t, p in LAYOUT.items() if p.kind is not Kind.LOCAL}


async def test_the_application_role_reads_and_writes_through_citus(
    citus: AsyncEngine, app: object
) -> None:
    engine: AsyncEngine = app.state.passport.engine  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT current_user")) == DEFAULT_APP_ROLE
        assert await conn.scalar(text("SELECT count(*) FROM competences")) > 13_000
        assert await conn.scalar(text("SELECT count(*) >= 0 FROM claims"))


async def test_a_table_a_later_migration_adds_is_placed_before_its_keys(
    engine: AsyncEngine,
) -> None:
    """After `passport distribute`, a migration that adds a per-citizen table places it
    (``place_in_migration``) before its foreign key to ``citizens``, which Citus refuses on a
    local table; on plain PostgreSQL the same migration runs unchanged."""
    table = f"probe_{secrets.token_hex(3)}"
    layout = {**LAYOUT, table: by_citizen()}
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE TABLE {table} (citizen_id uuid NOT NULL, n int NOT NULL, "
                "PRIMARY KEY (citizen_id, n))"
            )
        )
        placed = await conn.run_sync(lambda sync: place_in_migration(sync, table, layout))
        assert placed is on_citus(engine.url)
        await conn.execute(
            text(
                f"ALTER TABLE {table} ADD FOREIGN KEY (citizen_id) "
                "REFERENCES citizens (citizen_id) ON DELETE CASCADE"
            )
        )
        if placed:
            colocated = await conn.scalar(
                text(
                    "SELECT p.colocationid = c.colocationid FROM pg_dist_partition p, "
                    "pg_dist_partition c WHERE p.logicalrelid = CAST(:t AS regclass) "
                    "AND c.logicalrelid = 'citizens'::regclass"
                ),
                {"t": table},
            )
            assert colocated
        await conn.execute(text(f"DROP TABLE {table}"))


async def test_distribute_places_a_table_citus_kept_local(citus: AsyncEngine) -> None:
    """A new table with a foreign key to a reference table is made a "Citus local" table by
    Citus itself (on the coordinator alone); `passport distribute` still places it."""
    table = f"probe_{secrets.token_hex(3)}"
    async with citus.begin() as conn:
        await conn.execute(
            text(
                f"CREATE TABLE {table} (id uuid PRIMARY KEY, "
                "organisation_id uuid REFERENCES organisations (id))"
            )
        )
    try:
        report = await distribute(citus, DEFAULT_APP_ROLE, {**LAYOUT, table: REFERENCE})
        assert report.placed == {table: "reference"}
        assert report.foreign_keys_kept == [
            f"{table}.{table}_organisation_id_fkey -> organisations"
        ]
        with pytest.raises(
            LayoutError,
            match=r"placed otherwise than LAYOUT says .*: citizens \(distributed citizen_id\)$",
        ):
            await distribute(
                citus, DEFAULT_APP_ROLE, {**LAYOUT, table: REFERENCE, CITIZENS: REFERENCE}
            )
    finally:
        async with citus.begin() as conn:
            await conn.execute(text(f"DROP TABLE {table}"))
