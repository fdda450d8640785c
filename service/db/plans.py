"""Generic plans for the statements of a read: planned once per connection, not per execution.

PostgreSQL plans a prepared statement anew on each execution (a custom plan) for as long as it
estimates that the values' plan beats the generic one; for statements holding conditions of the
shape ``$1::text[] IS NULL OR column = ANY($1)`` it always does. The passport read's statement
finds one citizen's claims by key whatever the values, and planning it took 1.8 ms of its 4.4 ms
(a 50-claim passport, bench/reads.py); on its generic plan it runs in 2.6 ms. A read of many
passports at once (``passports``) stays on custom plans: there the values' plan, which knows
how many citizens the arrays hold, answered 100 passports in 38 ms (p50) against 57 ms on the
generic one (bench/passport_list.py).

``set_config(..., true)`` is ``SET LOCAL``: it ends with the transaction, so nothing else that
runs on the pooled connection later is planned differently. A read selects it beside its lock
(``service.citizens.service.share_citizen_lock``), so it costs no round trip of its own.

Not on Citus: a coordinator cannot route a generic plan whose citizen is a parameter ("could
not create distributed plan"), so where Citus is loaded (its settings exist) the mode is set
to what it already is, and the read is planned as any other statement there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal_column
from sqlalchemy.sql.elements import ColumnClause

GENERIC_PLANS: ColumnClause[Any] = literal_column(
    "set_config('plan_cache_mode', CASE WHEN current_setting('citus.shard_count', true) IS NULL"
    " THEN 'force_generic_plan' ELSE current_setting('plan_cache_mode') END, true)"
)
