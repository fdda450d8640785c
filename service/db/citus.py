"""Where every table lives on a Citus cluster, and `passport distribute`, which puts it there.

``LAYOUT`` is the one place that says how Citus holds each table: sharded by the citizen
(colocated with ``citizens``, so a passport's rows are on one node and join there), sharded by
another key a lookup is made by, replicated to every node as a reference table (small, read
everywhere, joined with everything), or kept on the coordinator alone. A test fails when a
table of the schema is missing here, so a new table is placed on purpose, never by accident.

``distribute`` is run by the schema owner after ``passport migrate``, on a database that has
the ``citus`` extension; on plain PostgreSQL it does nothing. It is idempotent: tables already
placed are left alone, so it is run again after every migration (new tables get placed). What
it does, in one transaction:

1. drops the foreign keys of the tables it is about to place (Citus refuses to distribute a
   table that local tables point at, and the other way round), remembering them;
2. makes the reference tables, then the distributed ones, anchors of a colocation group
   before the tables colocated with them; triggers go along (``citus.enable_unsafe_triggers``:
   the schema's triggers only compare a row's old and new values, which is safe on a shard);
3. adds back every foreign key Citus can enforce: between reference tables, from a
   distributed table to a reference table, and between colocated tables on their
   distribution column. The others (``CROSSING_FOREIGN_KEYS``) join rows that live on
   different nodes; the application writes both ends in one transaction;
4. restores any grant or index the conversion lost and refreshes the materialized views
   (they live on the coordinator and read through Citus), removes the local copies of the
   rows it moved to the shards, and lets the application's role log in: Citus opens its
   connections to the workers as the role the query runs as.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

CITIZENS = "citizens"
CITIZEN_KEY = "citizen_id"


class Kind(StrEnum):
    DISTRIBUTED = "distributed"  # hash-sharded by ``column``
    REFERENCE = "reference"  # a copy on every node
    LOCAL = "local"  # on the coordinator only


@dataclass(frozen=True)
class Placement:
    kind: Kind
    column: str | None = None  # the distribution column
    colocate_with: str | None = None  # the table whose shards this one shares; None: its own


def by_citizen() -> Placement:
    """A citizen's rows: on the node of their ``citizens`` row."""
    return Placement(Kind.DISTRIBUTED, CITIZEN_KEY, CITIZENS)


def by(column: str, colocate_with: str | None = None) -> Placement:
    """Sharded by what it is looked up by; anchors its own group unless ``colocate_with``."""
    return Placement(Kind.DISTRIBUTED, column, colocate_with)


REFERENCE = Placement(Kind.REFERENCE)
LOCAL = Placement(Kind.LOCAL)

# Every table of the schema. Order matters only within a kind: an anchor before the tables
# colocated with it.
LAYOUT: Mapping[str, Placement] = {
    # The ESCO taxonomy: loaded by the schema owner, read by every passport query.
    "competences": REFERENCE,
    "competence_labels": REFERENCE,
    "competence_broader": REFERENCE,
    "competence_collections": REFERENCE,
    "isco_groups": REFERENCE,
    "occupations": REFERENCE,
    "occupation_labels": REFERENCE,
    "occupation_competences": REFERENCE,
    "taxonomy_imports": REFERENCE,
    # Who writes and reads: a few thousand rows, joined with every citizen's claims.
    "organisations": REFERENCE,
    "api_clients": REFERENCE,
    "legal_bases": REFERENCE,
    "learning_opportunities": REFERENCE,
    "webhook_subscriptions": REFERENCE,
    "team_checks": REFERENCE,  # an organisation's checks, named in its staff's consents
    "competence_profiles": REFERENCE,  # an organisation's own profiles of competences
    # Labour-market signals: imported by the schema owner, read with the taxonomy.
    "signal_imports": REFERENCE,
    "labour_market_signals": REFERENCE,
    # Kept after an erasure, with nothing that leads back to the citizen.
    "erasures": REFERENCE,
    "retained_access_records": REFERENCE,
    # A citizen's passport: everything read or written for one citizen is on one node.
    CITIZENS: Placement(Kind.DISTRIBUTED, CITIZEN_KEY),
    "citizen_settings": by_citizen(),
    "claims": by_citizen(),
    "claim_revocations": by_citizen(),
    "citizen_events": by_citizen(),
    "access_records": by_citizen(),
    "access_grants": by_citizen(),
    "credential_exports": by_citizen(),
    "credential_export_entries": by_citizen(),
    "credential_export_revocations": by_citizen(),
    "webhook_deliveries": by_citizen(),
    "claim_endorsements": by_citizen(),
    "credential_export_endorsements": by_citizen(),
    "competence_wants": by_citizen(),
    "career_goals": by_citizen(),
    "work_experiences": by_citizen(),
    "credential_offers": by_citizen(),
    # Lookups that find a citizen from something else: sharded by that something.
    "citizen_identities": by("insz_hash"),  # national number hash -> citizen
    "share_links": by("secret_hash"),  # share-link secret hash -> grant
    "claim_refs": by("organisation_id"),  # an issuer's idempotency key -> claim
    "bulk_uploads": by("organisation_id", "claim_refs"),  # an issuer's upload key -> report
    "endorsement_refs": by("organisation_id", "claim_refs"),  # an endorser's key -> endorsement
    "work_experience_refs": by("organisation_id", "claim_refs"),  # an employer's key -> record
    "credential_offer_codes": by("code_hash"),  # a wallet's pre-authorized code -> offer
    "wallet_access_tokens": by("token_hash"),  # a wallet's access token -> offer
    "wallet_nonces": by("nonce_hash"),  # a nonce handed to a wallet, spent once
    # Status lists: each list with its taken positions (a list is read whole, by its number).
    "status_lists": by("id"),
    "status_list_entries": by("status_list", "status_lists"),
    # Alembic's bookkeeping: read by readiness on the coordinator.
    "alembic_version": LOCAL,
}

# Foreign keys Citus cannot enforce, because their two ends live on different nodes: (the
# table, the table it refers to). ``distribute`` drops them; the application writes both
# ends in one transaction, and erasure removes both ends explicitly.
CROSSING_FOREIGN_KEYS: Mapping[tuple[str, str], str] = {
    ("citizen_identities", CITIZENS): "a national number's hash is found by the hash",
    ("claim_refs", CITIZENS): "an issuer's idempotency key is found by the issuer",
    ("share_links", "access_grants"): "a share link is found by its secret's hash",
    ("credential_exports", "status_list_entries"): "a status list is read by its number",
    ("credential_export_entries", "status_list_entries"): "a status list is read by its number",
    ("credential_export_endorsements", "status_list_entries"): "a status list is read by its "
    "number",
    ("endorsement_refs", CITIZENS): "an endorser's idempotency key is found by the endorser",
    ("work_experience_refs", CITIZENS): "an employer's idempotency key is found by the employer",
    ("credential_offer_codes", "credential_offers"): "a wallet's code is found by its hash",
    ("wallet_access_tokens", "credential_offers"): "a wallet's token is found by its hash",
}


@dataclass(frozen=True)
class ForeignKey:
    table: str
    name: str
    referred: str
    columns: tuple[str, ...]
    referred_columns: tuple[str, ...]
    definition: str = ""  # pg_get_constraintdef


def citus_keeps(fk: ForeignKey, layout: Mapping[str, Placement] = LAYOUT) -> bool:
    """Whether Citus can enforce ``fk`` once both tables are placed as ``layout`` says."""
    source, target = layout[fk.table], layout[fk.referred]
    if target.kind is Kind.REFERENCE:
        return source.kind is not Kind.LOCAL
    if source.kind is not Kind.DISTRIBUTED or target.kind is not Kind.DISTRIBUTED:
        return source.kind is target.kind is Kind.LOCAL
    if _anchor(fk.table, layout) != _anchor(fk.referred, layout):
        return False
    return any(
        column == source.column and referred == target.column
        for column, referred in zip(fk.columns, fk.referred_columns, strict=True)
    )


def _anchor(table: str, layout: Mapping[str, Placement]) -> str:
    placement = layout[table]
    return placement.colocate_with if placement.colocate_with else table


class LayoutError(RuntimeError):
    """The database holds a table ``LAYOUT`` does not place (or the other way round)."""


@dataclass
class DistributionReport:
    citus: bool  # False: plain PostgreSQL, nothing was done
    placed: dict[str, str] = field(default_factory=dict)  # table -> how, this run
    already: list[str] = field(default_factory=list)  # placed by an earlier run
    foreign_keys_kept: list[str] = field(default_factory=list)
    foreign_keys_dropped: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # grants and indexes put back
    refreshed: list[str] = field(default_factory=list)  # materialized views
    workers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "citus": self.citus,
            "workers": self.workers,
            "placed": self.placed,
            "alreadyPlaced": self.already,
            "foreignKeysKept": self.foreign_keys_kept,
            "foreignKeysDropped": self.foreign_keys_dropped,
            "restored": self.restored,
            "refreshed": self.refreshed,
        }


# Joined with pg_class, where Citus hides the shards a coordinator holds: their keys are not
# the schema's.
_FOREIGN_KEYS = """
SELECT t.relname AS table_name, c.conname AS name,
       r.relname AS referred, pg_get_constraintdef(c.oid) AS definition,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
             ORDER BY k.i)::text[] AS columns,
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
             ORDER BY k.i)::text[] AS referred_columns
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_class r ON r.oid = c.confrelid
WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
ORDER BY 1, 2
"""
_TABLES = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""
# Every privilege held on the schema's relations, as the GRANT that gives it, and every index
# of a materialized view: what a conversion that rebuilds a relation could lose.
_GRANTS = """
SELECT format('GRANT %s ON TABLE %I TO %I', a.privilege_type, c.relname, a.grantee::regrole)
FROM pg_class c, aclexplode(c.relacl) a
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
  AND a.grantee <> 0 AND a.grantee <> c.relowner
UNION
SELECT format('GRANT %s (%I) ON TABLE %I TO %I', a.privilege_type, t.attname, c.relname,
              a.grantee::regrole)
FROM pg_class c JOIN pg_attribute t ON t.attrelid = c.oid, aclexplode(t.attacl) a
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
  AND a.grantee <> 0 AND a.grantee <> c.relowner
"""
_VIEW_INDEXES = """
SELECT pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'm'
"""
_MATERIALIZED_VIEWS = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'm' ORDER BY 1
"""
# Tables already placed, and how. A "Citus local" table (repmodel 's' without a hash key),
# which Citus makes of a local table when it gets a foreign key to a reference table, is not
# placed: it is still on the coordinator alone.
_PLACED = """
SELECT p.logicalrelid::regclass::text AS table_name,
       CASE WHEN p.partmethod = 'h' THEN 'distributed' ELSE 'reference' END AS kind,
       CASE WHEN p.partmethod = 'h' THEN column_to_column_name(p.logicalrelid, p.partkey) END
         AS column_name,
       p.colocationid
FROM pg_dist_partition p
WHERE (p.partmethod = 'h' OR p.repmodel = 't') AND p.logicalrelid::regclass::text = ANY($1::text[])
"""
_WORKERS = "SELECT node_name || ':' || node_port FROM citus_get_active_worker_nodes() ORDER BY 1"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def is_citus(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'citus'"))


def check_layout(tables: Iterable[str], layout: Mapping[str, Placement] = LAYOUT) -> None:
    """Every table placed, and nothing placed that does not exist."""
    present = set(tables)
    unplaced = sorted(present - layout.keys())
    missing = sorted(layout.keys() - present)
    if unplaced or missing:
        raise LayoutError(
            "the Citus layout (service/db/citus.py LAYOUT) does not match the schema: "
            + "; ".join(
                part
                for part in (
                    f"not placed: {', '.join(unplaced)}" if unplaced else "",
                    f"placed but absent (migrate first): {', '.join(missing)}" if missing else "",
                )
                if part
            )
        )


async def foreign_keys(conn: asyncpg.Connection) -> list[ForeignKey]:
    return [
        ForeignKey(
            row["table_name"],
            row["name"],
            row["referred"],
            tuple(row["columns"]),
            tuple(row["referred_columns"]),
            row["definition"],
        )
        for row in await conn.fetch(_FOREIGN_KEYS)
    ]


_CREATE_REFERENCE = "SELECT create_reference_table({0})"
_CREATE_DISTRIBUTED = "SELECT create_distributed_table({0}, {1}, colocate_with => {2})"


def _creation(table: str, placement: Placement, *marks: str) -> tuple[str, tuple[str, ...]]:
    """The statement that places ``table``, with ``marks`` for its parameters (asyncpg's
    ``$1`` or SQLAlchemy's ``:name``), and their values."""
    if placement.kind is Kind.REFERENCE:
        return _CREATE_REFERENCE.format(*marks), (table,)
    assert placement.column is not None
    return (
        _CREATE_DISTRIBUTED.format(*marks),
        (table, placement.column, placement.colocate_with or "none"),
    )


def _order(layout: Mapping[str, Placement]) -> list[str]:
    """Reference tables first (distributed tables' keys point at them), then each group's
    anchor before the tables colocated with it."""
    reference = [t for t, p in layout.items() if p.kind is Kind.REFERENCE]
    anchors = [t for t, p in layout.items() if p.kind is Kind.DISTRIBUTED and not p.colocate_with]
    members = [t for t, p in layout.items() if p.kind is Kind.DISTRIBUTED and p.colocate_with]
    return [*reference, *anchors, *members]


async def distribute(
    engine: AsyncEngine, app_role: str, layout: Mapping[str, Placement] = LAYOUT
) -> DistributionReport:
    """Place every table as ``layout`` says (see the module's docstring); run by the schema
    owner. On a database without the citus extension, nothing happens."""
    async with engine.connect() as sa_conn:
        raw = await sa_conn.get_raw_connection()
        conn: asyncpg.Connection = raw.driver_connection
        if not await is_citus(conn):
            return DistributionReport(citus=False)
        async with conn.transaction():
            return await _distribute(conn, app_role, layout)


async def _distribute(
    conn: asyncpg.Connection, app_role: str, layout: Mapping[str, Placement]
) -> DistributionReport:
    # The catalogue as Citus shows it: shards the coordinator holds are not tables to place.
    await conn.execute("SET LOCAL citus.override_table_visibility = on")
    report = DistributionReport(citus=True, workers=[r[0] for r in await conn.fetch(_WORKERS)])
    check_layout([row[0] for row in await conn.fetch(_TABLES)], layout)
    # Only one placement at a time; concurrent migrations wait too.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('passport:distribute'))")
    placeable = [t for t in _order(layout) if layout[t].kind is not Kind.LOCAL]
    placed = {row["table_name"]: row for row in await conn.fetch(_PLACED, placeable)}
    _check_placed(placed, layout)
    report.already = [t for t in placeable if t in placed]
    todo = [t for t in placeable if t not in placed]
    grants = {row[0] for row in await conn.fetch(_GRANTS)}
    view_indexes = {row[0] for row in await conn.fetch(_VIEW_INDEXES)}
    if todo:
        await conn.execute("SET LOCAL citus.enable_unsafe_triggers = on")
        # One connection per node for the whole transaction: Citus needs it once a table
        # with a foreign key to a reference table is written after a parallel operation.
        await conn.execute("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
        touched = [fk for fk in await foreign_keys(conn) if fk.table in todo or fk.referred in todo]
        for fk in touched:
            await conn.execute(
                f"ALTER TABLE {_quoted(fk.table)} DROP CONSTRAINT {_quoted(fk.name)}"
            )
        for table in todo:
            sql, args = _creation(table, layout[table], "$1", "$2", "$3")
            await conn.execute(sql, *args)
            placement = layout[table]
            report.placed[table] = (
                "reference"
                if placement.kind is Kind.REFERENCE
                else f"by {placement.column}"
                + (f", with {placement.colocate_with}" if placement.colocate_with else "")
            )
        for fk in touched:
            label = f"{fk.table}.{fk.name} -> {fk.referred}"
            if citus_keeps(fk, layout):
                await conn.execute(
                    f"ALTER TABLE {_quoted(fk.table)} ADD CONSTRAINT {_quoted(fk.name)} "
                    + fk.definition
                )
                report.foreign_keys_kept.append(label)
            else:
                report.foreign_keys_dropped.append(label)
        for table in todo:
            # The rows were copied to the shards; the coordinator's own copy is dead weight.
            await conn.execute("SELECT truncate_local_data_after_distributing_table($1)", table)
    for statement in sorted(grants - {row[0] for row in await conn.fetch(_GRANTS)}):
        await conn.execute(statement)
        report.restored.append(statement)
    for statement in sorted(view_indexes - {row[0] for row in await conn.fetch(_VIEW_INDEXES)}):
        await conn.execute(statement)
        report.restored.append(statement)
    if todo:
        for view in [row[0] for row in await conn.fetch(_MATERIALIZED_VIEWS)]:
            await conn.execute(f"REFRESH MATERIALIZED VIEW {_quoted(view)}")
            report.refreshed.append(view)
    if app_role:
        await _let_role_log_in(conn, app_role)
    return report


def _check_placed(placed: Mapping[str, asyncpg.Record], layout: Mapping[str, Placement]) -> None:
    """A table placed otherwise than ``layout`` says is not moved behind the operator's back
    (that is a rewrite of the table: ``alter_distributed_table``, planned apart)."""
    wrong = []
    for table, row in placed.items():
        placement = layout[table]
        anchor = _anchor(table, layout)
        if (
            row["kind"] != placement.kind.value
            or row["column_name"] != placement.column
            or (anchor in placed and placed[anchor]["colocationid"] != row["colocationid"])
        ):
            wrong.append(f"{table} ({row['kind']} {row['column_name'] or ''})".replace(" )", ")"))
    if wrong:
        raise LayoutError(
            "placed otherwise than LAYOUT says (move them with alter_distributed_table, or "
            f"change LAYOUT): {', '.join(sorted(wrong))}"
        )


async def _let_role_log_in(conn: asyncpg.Connection, role: str) -> None:
    """Citus connects to the workers as the role a query runs as: the application's role must
    be allowed to log in there. It gets no password here; how the workers authenticate the
    coordinator's connections for it (certificates, pg_hba, pg_dist_authinfo) is the
    operator's (docs/scaling.md)."""
    if await conn.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", role):
        return
    try:
        await conn.execute(f"ALTER ROLE {_quoted(role)} LOGIN")  # Citus propagates it
    except asyncpg.InsufficientPrivilegeError as exc:
        raise LayoutError(
            f"the role {role} must be allowed to log in on every node: as a superuser, "
            f"ALTER ROLE {role} LOGIN on the coordinator (see docs/scaling.md)"
        ) from exc


def place_in_migration(
    bind: Connection, table: str, layout: Mapping[str, Placement] = LAYOUT
) -> bool:
    """For a migration that creates ``table`` once the database is distributed: place it now,
    as ``layout`` says, before it gets foreign keys to distributed tables (Citus refuses them
    on a local table). Call it right after CREATE TABLE (``op.get_bind()``). Does nothing on
    plain PostgreSQL, or before the first ``passport distribute`` (which places it then);
    returns whether it placed the table."""
    placement = layout[table]
    if placement.kind is Kind.LOCAL or not bind.scalar(
        text("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
    ):
        return False
    anchor = _anchor(table, layout) if placement.kind is Kind.DISTRIBUTED else CITIZENS
    if anchor == table:
        anchor = CITIZENS  # a group of its own: placed once the schema's tables are
    if not bind.scalar(
        text("SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass(:anchor)"),
        {"anchor": anchor},
    ):
        return False
    bind.execute(text("SET LOCAL citus.enable_unsafe_triggers = on"))
    sql, args = _creation(table, placement, ":a", ":b", ":c")
    bind.execute(text(sql), dict(zip("abc", args, strict=False)))
    return True
