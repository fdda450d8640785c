"""The right to erasure (GDPR art. 17): what is removed, what stays, and why.

Erased, all of it, at once, in one transaction (``passport_erase_citizen``, newest in migration
0013, the only way the application can delete anything):

- every claim about the citizen, organisations' and self-declared, with its revocations, its
  endorsements (with the endorsers' idempotency keys) and its idempotency keys. No claim is
  kept "because the law requires it": this service is a portfolio the citizen controls, not
  the register of record of any competence. Whoever must keep a record by law keeps it in its
  own register (a school's diplomas in the LED database, VDAB its guidance files, an EVC centre
  its certificates) and can issue the claim again;
- the event hash chain (it describes those claims and grants; other citizens' chains are
  separate and keep verifying);
- grants (team-check consents among them) and share links, the national number's keyed hash,
  and the citizen row itself; every status position of their exports, endorsements' included,
  reads as revoked;
- what the citizen wants (stances, career goals) and their work history, the employers'
  records of it and those employers' idempotency keys for it (an employer's record is a
  statement about the citizen, kept in their portfolio like a claim);
- the access log, except reads under a legal basis.

Kept, without anything that leads back to the citizen:

- for each read under a legal basis: who read (organisation and its client), under which
  basis, for which stated purpose, and when, in ``retained_access_records``. The reading
  organisation must be able to show its reads were lawful (GDPR art. 5(2) and 30; Belgian
  rules on consulting data by national number require such logs), and erasure does not
  reach data kept for a legal obligation (art. 17(3)(b)). Which competences it saw, and the
  citizen's id, are dropped; purposes may not contain a national number (``Purpose``);
- a receipt in ``erasures``: when, and how many rows of each kind went.

Both are kept for ``retained_access_years`` (settings) and then removed by
``purge_retained`` (`passport purge-retained`, as the schema owner: the application cannot
delete them). Purposes are the reader's words: the API tells readers not to name the person,
and refuses any purpose holding a national number.

A partner that sends a claim for the same person afterwards starts a new, empty passport:
erasure does not keep the number around to block that, which would defeat its point.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, exists, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.principal import Principal
from service.citizens.service import own_citizen_id
from service.models import Erasure, RetainedAccessRecord


@dataclass(frozen=True)
class ErasureReport:
    erasure_id: uuid.UUID | None  # None: nothing was held about the citizen
    erased_at: datetime
    counts: dict[str, int] = field(default_factory=dict)


async def request_erasure(
    session: AsyncSession, principal: Principal, hmac_key: bytes
) -> ErasureReport:
    """Idempotent: asking again once everything is gone reports that nothing is held."""
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    at = clock.now()
    if citizen_id is None:
        return ErasureReport(None, at)
    erasure_id = uuid.uuid4()
    counts = await session.scalar(
        select(func.passport_erase_citizen(citizen_id, erasure_id, at, type_=JSONB))
    )
    if counts is None:  # erased meanwhile by a concurrent request
        return ErasureReport(None, at)
    return ErasureReport(erasure_id, at, {key: int(value) for key, value in counts.items()})


async def purge_retained(session: AsyncSession, older_than: datetime) -> dict[str, int]:
    """Remove what was kept past its term (run as the schema owner)."""
    records = await session.execute(
        delete(RetainedAccessRecord).where(RetainedAccessRecord.accessed_at < older_than)
    )
    receipts = await session.execute(
        delete(Erasure).where(
            Erasure.erased_at < older_than,
            ~exists().where(RetainedAccessRecord.erasure_id == Erasure.id),
        )
    )
    return {"retainedAccessRecords": removed_rows(records), "erasures": removed_rows(receipts)}


def removed_rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
