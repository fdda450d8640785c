"""The schema stays ready to be distributed by citizen (docs/scaling.md): every per-citizen
table's primary key and unique indexes lead with citizen_id, as the migrations built them."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# Lookups that find a citizen from something else: keyed, and distributed, by that something.
LOOKUPS = {
    "citizen_identities": "insz_hash",  # national number hash -> citizen
    "share_links": "secret_hash",  # share-link secret hash -> grant
    "claim_refs": "organisation_id",  # an issuer's idempotency key -> claim
    "credential_offer_codes": "code_hash",  # a wallet's pre-authorized code hash -> offer
    "wallet_access_tokens": "token_hash",  # a wallet's access token hash -> offer
    "work_experience_refs": "organisation_id",  # an employer's idempotency key -> record
    "endorsement_refs": "organisation_id",  # an endorser's idempotency key -> endorsement
}
INDEXES = """
SELECT c.relname AS table_name, i.relname AS index_name, ix.indisprimary AS is_primary,
       (SELECT a.attname FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum = ix.indkey[0]) AS leading
FROM pg_index ix
JOIN pg_class c ON c.oid = ix.indrelid
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND (ix.indisprimary OR ix.indisunique)
  AND EXISTS (SELECT 1 FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attname = 'citizen_id' AND NOT a.attisdropped)
ORDER BY 1, 2
"""


async def test_per_citizen_keys_lead_with_citizen_id(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        rows = list(await conn.execute(text(INDEXES)))
    tables = {row.table_name for row in rows}
    assert {"claims", "citizen_events", "access_records", "access_grants"} <= tables
    wrong = [
        f"{row.table_name}.{row.index_name} leads with {row.leading}"
        for row in rows
        if row.leading != LOOKUPS.get(row.table_name, "citizen_id")
    ]
    assert wrong == [], "per-citizen keys must lead with citizen_id (docs/scaling.md)"
    primaries = {row.table_name for row in rows if row.is_primary}
    assert primaries == tables, "every per-citizen table has a primary key"
