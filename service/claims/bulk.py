"""Issuing many claims in one transaction: the nightly cohort upload and ``issueClaims``.

The rules and the idempotency are those of ``issue_claim`` (the same rules, digest, claim
row, event payload and notice); only the work is batched. Rows arrive already read by the
fast reader (``service.claims.fast``: a ``Checked``) or as mappings the pydantic models read
here. Python does per row only what needs no database: reading, the keyed hash of the INSZ,
the request digest, the claim row and its event with its chain hash. Whatever the batch
size, it is a fixed number of statements: one lookup of the competences, one for the refs
already taken, at most four for the citizens (created only for rows that can be recorded), one
to lock them, two for the idempotency keys, one for the chain heads, one asking whether the
organisation listens for the events, a COPY each for claims and events, and one for the
webhook outbox (when it listens).

Why no staging table (COPY the raw rows, then set-based SQL into the tables): measured, the
database's share of a row here is already the tables' own work (the same COPY into the same
indexed tables, plus the idempotency and citizen lookups a staging design does too), and a
staging table adds a COPY and an INSERT ... SELECT per row on top; the chain hash needs RFC
8785 JSON, whose rule lives in Python (service/canonical.py). What a row cost was Python
(pydantic, ~190 µs), which the fast reader cut; ``ingest`` then overlaps that Python with
PostgreSQL's writing by keeping two chunks in flight.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter, deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgspec
import orjson
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import clock
from service.auth.policy import require_issuer
from service.auth.principal import Principal
from service.citizens.service import find_citizens, get_or_create_citizens, lock_citizens
from service.claims.fast import Checked, checked, fast_mapping
from service.claims.rules import IssueClaimInput
from service.claims.service import retried_claim
from service.db.atomic import atomically
from service.db.engine import retryable
from service.errors import CitizenGone, Conflict, Problem, ValidationFailed
from service.events.chain import GENESIS, event_hash
from service.events.outbox import Announced, claim_notice, enqueue
from service.events.payloads import claim_payload
from service.identity.numbers import normalized_insz_hash
from service.models import CitizenEvent, Claim
from service.models.enums import EventType
from service.observability import bulk_rows, claims_issued
from service.taxonomy.search import competences_by_uri
from service.validation import validate


class RowStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # a faithful retry: the claim recorded earlier under this ref
    REJECTED = "rejected"


class RowOutcome(msgspec.Struct, frozen=True):
    status: RowStatus
    claim_id: uuid.UUID | None = None
    error: ValidationFailed | Conflict | None = None  # why it was rejected


class _Candidate(msgspec.Struct, frozen=True):
    index: int
    spec: Checked
    citizen_id: uuid.UUID
    competence_id: int
    digest: bytes
    claim_id: uuid.UUID


def _rejected(error: ValidationFailed | Conflict) -> RowOutcome:
    return RowOutcome(RowStatus.REJECTED, error=error)


_RESERVE = text(
    """
    INSERT INTO claim_refs (organisation_id, external_ref, citizen_id, claim_id, payload_digest)
    SELECT :org, r, c, i, d FROM unnest(CAST(:refs AS text[]), CAST(:citizens AS uuid[]),
                                        CAST(:ids AS uuid[]), CAST(:digests AS bytea[]))
         AS t(r, c, i, d)
    ON CONFLICT (organisation_id, external_ref) DO NOTHING
    RETURNING external_ref
    """
)
_EARLIER = text(
    "SELECT external_ref, claim_id, payload_digest FROM claim_refs"
    " WHERE organisation_id = :org AND external_ref = ANY(CAST(:refs AS text[]))"
)
# Each citizen's newest event, found from the citizens row (not from the array of ids): Citus
# runs a lateral join correlated on the distribution column on each citizen's own shard, but
# not one over a set-returning function. The citizens exist: the caller holds their locks.
_HEADS = text(
    """
    SELECT c.citizen_id, e.seq, e.hash FROM citizens c
    LEFT JOIN LATERAL (SELECT seq, hash FROM citizen_events
                       WHERE citizen_id = c.citizen_id ORDER BY seq DESC LIMIT 1) AS e ON true
    WHERE c.citizen_id = ANY(CAST(:ids AS uuid[]))
    """
)
_LISTENING = text(
    "SELECT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE organisation_id = :org"
    " AND disabled_at IS NULL AND :type = ANY (event_types))"
)
_CLAIM_COLUMNS = [c.name for c in Claim.__table__.columns]
_EVIDENCE_AT = _CLAIM_COLUMNS.index("evidence")
_EVENT_COLUMNS = [c.name for c in CitizenEvent.__table__.columns]


async def issue_many(
    session: AsyncSession,
    principal: Principal,
    rows: Sequence[Checked | Mapping[str, Any] | Problem],
    hmac_key: bytes,
    prefix: str = "inputs",
    locked: Callable[[], None] | None = None,
) -> list[RowOutcome]:
    """One outcome per row, in order. A row given as a Problem (it could not be read) is
    rejected with it. Runs in the caller's transaction; raises only what reruns it (a
    deadlock, or a citizen erased meanwhile: CitizenGone). ``locked`` is called once the
    transaction holds every lock and key it takes: what remains only writes its own rows."""
    organisation_id = require_issuer(principal)

    outcomes: list[RowOutcome | None] = [None] * len(rows)
    specs: list[tuple[int, Checked]] = []
    for index, row in enumerate(rows):
        if isinstance(row, Checked):
            specs.append((index, row))
            continue
        if isinstance(row, Problem):
            outcomes[index] = _rejected(ValidationFailed(row.message, [row]))
            continue
        if fast := fast_mapping(row):
            specs.append((index, fast))
            continue
        try:
            specs.append((index, checked(validate(IssueClaimInput, row, f"{prefix}.{index}"))))
        except ValidationFailed as exc:
            outcomes[index] = _rejected(exc)

    competences = await competences_by_uri(session, sorted({s.competence_uri for _, s in specs}))
    hashes = {index: normalized_insz_hash(spec.insz, hmac_key) for index, spec in specs}
    citizens, taken = await _citizens(
        session,
        organisation_id,
        [
            (hashes[index], spec.external_ref)
            for index, spec in specs
            if (found := competences.get(spec.competence_uri)) and found.concept_type == "skill"
        ],
    )
    candidates: list[_Candidate] = []
    unknown: list[tuple[int, str]] = []  # retries naming a citizen never recorded
    claim_ids = random_uuids(len(specs))
    for index, spec in specs:
        found = competences.get(spec.competence_uri)
        if found is None or found.concept_type != "skill":
            outcomes[index] = _rejected(
                ValidationFailed.one(
                    f"{prefix}.{index}.competenceUri",
                    "not an ESCO skill or knowledge concept",
                    "unknown_competence",
                )
            )
            continue
        citizen_id = citizens.get(hashes[index])
        if citizen_id is None:
            unknown.append((index, spec.external_ref))
            continue
        candidates.append(
            _Candidate(
                index,
                spec,
                citizen_id,
                found.id,
                spec.digest(citizen_id),
                next(claim_ids),
            )
        )
    if candidates:
        await lock_citizens(session, {c.citizen_id for c in candidates})
        new = await _reserve(session, organisation_id, candidates, outcomes)
        if locked is not None:
            locked()
        if new:
            await _write(session, principal, organisation_id, new)
        for candidate in new:
            outcomes[candidate.index] = RowOutcome(RowStatus.ACCEPTED, candidate.claim_id)
    # Its ref was taken before, or by an earlier row of this batch: a conflict either way.
    first = {c.spec.external_ref: outcomes[c.index] for c in reversed(candidates)}
    for index, ref in unknown:
        outcomes[index] = _rejected(
            Conflict(
                "externalRef was already used for a different claim",
                _holder(taken.get(ref), first.get(ref)),
            )
        )
    return _settled(outcomes)


def _holder(taken: uuid.UUID | None, first: RowOutcome | None) -> str | None:
    """The claim holding a ref: recorded before, or by the batch's first row with it."""
    if taken is not None:
        return str(taken)
    if first is not None and first.claim_id is not None:
        return str(first.claim_id)
    return first.error.existing_id if first and isinstance(first.error, Conflict) else None


async def _citizens(
    session: AsyncSession, organisation_id: uuid.UUID, rows: list[tuple[bytes, str]]
) -> tuple[dict[bytes, uuid.UUID], dict[str, uuid.UUID]]:
    """The citizens the rows name, and the refs already taken (with their claims).

    A citizen is created only for a row that can be recorded: the first of its ref in the
    batch, the ref not taken yet. Any other row is a retry, faithful only if it names the
    citizen named before, who exists; one naming someone else is a conflict and must not
    leave a passport behind (a single ``issueClaim`` rolls back; a batch commits its other
    rows). Those are looked up, never created.
    """
    if not rows:
        return {}, {}
    taken = {
        ref: claim_id
        for ref, claim_id, _ in await session.execute(
            _EARLIER, {"org": organisation_id, "refs": sorted({ref for _, ref in rows})}
        )
    }
    creating: set[bytes] = set()
    seen: set[str] = set()
    for digest, ref in rows:
        if ref not in taken and ref not in seen:
            creating.add(digest)
        seen.add(ref)
    found = await get_or_create_citizens(session, creating) if creating else {}
    looking = {digest for digest, _ in rows} - found.keys()
    if looking:
        found.update(await find_citizens(session, looking))
    return found, taken


def counted(principal: Principal, statuses: Iterable[RowStatus]) -> Counter[RowStatus]:
    """The outcomes of committed rows, by status, also counted in the metrics: one place for
    ``issueClaims`` and the upload alike."""
    counts = Counter(statuses)
    bulk_rows(counts[RowStatus.ACCEPTED], counts[RowStatus.DUPLICATE], counts[RowStatus.REJECTED])
    claims_issued(principal.organisation_kind, counts[RowStatus.ACCEPTED])
    return counts


def _settled(outcomes: list[RowOutcome | None]) -> list[RowOutcome]:
    assert all(outcomes), "every row has an outcome"
    return [o for o in outcomes if o is not None]


async def _reserve(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    candidates: list[_Candidate],
    outcomes: list[RowOutcome | None],
) -> list[_Candidate]:
    """Take the idempotency keys; settle every row whose key was taken before (a duplicate,
    or a conflict when it says something else) and return the rows to write."""
    first: dict[str, _Candidate] = {}
    repeats: list[_Candidate] = []
    for candidate in candidates:
        ref = candidate.spec.external_ref
        if ref in first:
            repeats.append(candidate)  # the same ref twice in one batch
        else:
            first[ref] = candidate
    taken = set(
        await session.scalars(
            _RESERVE,
            {
                "org": organisation_id,
                "refs": list(first),
                "citizens": [c.citizen_id for c in first.values()],
                "ids": [c.claim_id for c in first.values()],
                "digests": [c.digest for c in first.values()],
            },
        )
    )
    settled: dict[str, tuple[uuid.UUID, bytes]] = {
        ref: (c.claim_id, c.digest) for ref, c in first.items() if ref in taken
    }
    earlier = {c.spec.external_ref for c in first.values() if c.spec.external_ref not in taken}
    if earlier:
        for ref, claim_id, digest in await session.execute(
            _EARLIER, {"org": organisation_id, "refs": sorted(earlier)}
        ):
            settled[ref] = (claim_id, bytes(digest))
    new = []
    for candidate in [*first.values(), *repeats]:
        ref = candidate.spec.external_ref
        if candidate is first.get(ref) and ref in taken:
            new.append(candidate)
            continue
        try:
            claim_id = retried_claim(*settled[ref], candidate.digest)
        except Conflict as exc:
            outcomes[candidate.index] = _rejected(exc)
        else:
            outcomes[candidate.index] = RowOutcome(RowStatus.DUPLICATE, claim_id)
    return new


async def _write(
    session: AsyncSession,
    principal: Principal,
    organisation_id: uuid.UUID,
    new: list[_Candidate],
) -> None:
    heads: dict[uuid.UUID, tuple[int, bytes]] = {
        citizen: (seq or 0, bytes(digest) if digest is not None else GENESIS)
        for citizen, seq, digest in await session.execute(
            _HEADS, {"ids": list({c.citizen_id for c in new})}
        )
    }
    recorded_at = clock.now()
    # The notices are built only when the organisation listens; the outbox's own join
    # (service.events.outbox.enqueue) still decides which subscriptions hear them.
    listening = bool(
        await session.scalar(
            _LISTENING, {"org": organisation_id, "type": EventType.CLAIM_ISSUED.value}
        )
    )
    claim_rows: list[tuple[Any, ...]] = []
    event_rows: list[tuple[Any, ...]] = []
    announced: list[Announced] = []
    client_pk = principal.client_pk
    event_ids = random_uuids(len(new))
    for candidate in new:
        spec = candidate.spec
        row = spec.claim_row(
            organisation_id=organisation_id,
            client_pk=client_pk,
            citizen_id=candidate.citizen_id,
            claim_id=candidate.claim_id,
            competence_id=candidate.competence_id,
            recorded_at=recorded_at,
        )
        values = list(row.values())  # in _CLAIM_COLUMNS' order (asserted below)
        values[_EVIDENCE_AT] = _copyable(values[_EVIDENCE_AT])
        claim_rows.append(tuple(values))
        seq, prev = heads[candidate.citizen_id]
        seq += 1
        event_id = next(event_ids)
        payload = claim_payload(row)
        digest = event_hash(
            prev,
            citizen_id=candidate.citizen_id,
            seq=seq,
            event_id=event_id,
            event_type=EventType.CLAIM_ISSUED.value,
            occurred_at=recorded_at,
            payload=payload,
            built=True,
        )
        heads[candidate.citizen_id] = (seq, digest)
        event_rows.append(
            (
                candidate.citizen_id,
                seq,
                event_id,
                EventType.CLAIM_ISSUED.value,
                recorded_at,
                _copyable(payload),
                prev,
                digest,
            )
        )
        if not listening:
            continue
        announced.append(
            Announced(
                candidate.citizen_id,
                seq,
                event_id,
                EventType.CLAIM_ISSUED,
                recorded_at,
                claim_notice(
                    organisation_id,
                    candidate.citizen_id,
                    candidate.claim_id,
                    candidate.spec.external_ref,
                    candidate.spec.competence_uri,
                    supersedes=None,
                ),
            )
        )
    await copy_rows(session, "claims", _CLAIM_COLUMNS, claim_rows)
    await copy_rows(session, "citizen_events", _EVENT_COLUMNS, event_rows)
    await enqueue(session, announced)


def random_uuids(count: int) -> Iterator[uuid.UUID]:
    """``count`` version-4 UUIDs, as ``uuid.uuid4`` makes them, from one call for randomness
    rather than one each (a system call per id is a fair share of a bulk row's time)."""
    random = os.urandom(16 * count)
    for at in range(0, 16 * count, 16):
        yield uuid.UUID(bytes=random[at : at + 16], version=4)


def _copyable(value: Any) -> Any:
    """JSONB goes to the driver as JSON text (the session's codec for it expects a string)."""
    return orjson.dumps(value).decode() if isinstance(value, (dict, list)) else value


async def copy_rows(
    session: AsyncSession, table: str, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    """Binary COPY on the session's own connection, inside its transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(table, columns=columns, records=rows)


class NumberedOutcome(msgspec.Struct, frozen=True):
    line: int
    outcome: RowOutcome


Row = Checked | Mapping[str, Any] | Problem
Chunk = list[tuple[int, Row]]


class _Abandoned(Exception):
    """A chunk before this one failed: this one rolls back and runs again after it."""


@dataclass
class _Flight:
    """A chunk's transaction, kept open until the chunks before it have committed."""

    chunk: Chunk
    keys: tuple[set[str], set[str]] | None  # its citizens and refs (see _keys)
    locked: asyncio.Event  # set once it holds every lock and key it will take (or failed)
    turn: asyncio.Future[bool]  # True: commit; False: roll back (a chunk before failed)
    task: asyncio.Task[list[RowOutcome]]


def _keys(chunk: Chunk) -> tuple[set[str], set[str]] | None:
    """The citizens (normalized INSZ) and refs a chunk names; None when a row is still to be
    read by the models, whose keys are not known before."""
    citizens: set[str] = set()
    refs: set[str] = set()
    for _, row in chunk:
        if isinstance(row, Checked):
            citizens.add(row.insz)
            refs.add(row.external_ref)
        elif not isinstance(row, Problem):
            return None
    return citizens, refs


def _apart(a: tuple[set[str], set[str]] | None, b: tuple[set[str], set[str]] | None) -> bool:
    """Two chunks that share no citizen and no ref touch no common row: their transactions
    never wait for each other, and neither reads what the other is writing."""
    return a is not None and b is not None and a[0].isdisjoint(b[0]) and a[1].isdisjoint(b[1])


async def ingest(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    rows: Iterable[tuple[int, Row]],
    hmac_key: bytes,
    chunk_rows: int,
) -> AsyncGenerator[list[NumberedOutcome], None]:
    """An upload, ``chunk_rows`` at a time, each chunk a transaction of its own (memory stays
    bounded and a failure loses at most the chunks in flight, which a retry then writes).
    Problems name the line: ``line 12.acquiredOn``.

    Python and PostgreSQL work at once: the next chunk is read (decoded and checked) by a
    task of its own, 64 rows at a time between the transactions' round trips (a thread did
    no better: the GIL lets one run at a time, and it took the GIL for up to 5 ms when a
    round trip's answer came), and a chunk's transaction starts once the one before holds its
    locks, so its Python runs while PostgreSQL writes the one before (two transactions open
    at most). Chunks commit in the file's order: each waits for the ones before,
    and rolls back if one of them failed (all of them then run again, one after the other).
    A chunk sharing a citizen or a ref with a chunk in flight starts only after that one
    committed, as it must see its rows."""
    source = iter(rows)

    async def take() -> Chunk:
        chunk: Chunk = []  # the next chunk_rows rows, or what is left
        for row in source:
            chunk.append(row)
            if len(chunk) == chunk_rows:
                break
            if len(chunk) % 64 == 0:
                await asyncio.sleep(0)
        return chunk

    async def alone(chunk: Chunk) -> list[RowOutcome]:
        async with sessions() as session:
            return await atomically(
                session, lambda: issue_many(session, principal, _rows_of(chunk), hmac_key, "row")
            )

    async def fly(
        chunk: Chunk, locked: asyncio.Event, turn: asyncio.Future[bool]
    ) -> list[RowOutcome]:
        async with sessions() as session:
            try:
                outcomes = await issue_many(
                    session, principal, _rows_of(chunk), hmac_key, "row", locked.set
                )
                locked.set()
                if not await turn:
                    raise _Abandoned
                await session.commit()
            except BaseException:
                with suppress(SQLAlchemyError, OSError):  # the first error is the one to report
                    await session.rollback()
                raise
            finally:
                locked.set()
        return outcomes

    flights: deque[_Flight] = deque()  # open, oldest first

    def launch(chunk: Chunk, keys: tuple[set[str], set[str]] | None) -> None:
        locked = asyncio.Event()
        turn = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(fly(chunk, locked, turn))
        flights.append(_Flight(chunk, keys, locked, turn, task))

    async def settle() -> AsyncIterator[list[NumberedOutcome]]:
        """The oldest flight committed. If it failed, the ones behind it roll back, and (if
        PostgreSQL asked for it) they all run again alone, in order."""
        oldest = flights.popleft()
        oldest.turn.set_result(True)
        try:
            yield _numbered(oldest.chunk, await oldest.task)
            return
        except Exception as exc:
            again = [oldest, *flights]
            flights.clear()
            await _abandon(again[1:])
            if not (retryable(exc) or isinstance(exc, CitizenGone)):
                raise
        for flight in again:
            yield _numbered(flight.chunk, await alone(flight.chunk))

    reading = asyncio.ensure_future(take())
    try:
        while chunk := await reading:
            reading = asyncio.ensure_future(take())
            keys = _keys(chunk)
            # Never more than two: waiting for ``locked`` only while one flight is open, the
            # loop never leaves a flight idle for its turn while the one it waits on waits in
            # PostgreSQL for a third transaction that waits on the idle one (a cycle PostgreSQL
            # cannot see). Three measured no faster anyway (bench/ingest.py).
            while flights and (len(flights) == 2 or not _apart(flights[0].keys, keys)):
                async for done in settle():
                    yield done
            if flights:
                await flights[0].locked.wait()
                if flights[0].task.done():  # it failed before its locks: settle (rerun) it first
                    async for done in settle():
                        yield done
            launch(chunk, keys)
        while flights:
            async for done in settle():
                yield done
    finally:
        gone = list(flights)
        flights.clear()
        await _abandon(gone)
        # The reader must be done before the caller closes what it reads.
        reading.cancel()
        await asyncio.wait({reading})
        if not reading.cancelled():
            reading.exception()  # retrieved: an upload cut short has nothing more to say


async def _abandon(flights: list[_Flight]) -> None:
    """Roll the flights back and wait until they have. Each is told and cancelled before the
    one wait, so a second cancellation cannot leave one open, and none writes its rows first
    only to roll them back."""
    for flight in flights:
        if not flight.turn.done():
            flight.turn.set_result(False)
            flight.task.cancel()
    if flights:
        await asyncio.wait({flight.task for flight in flights})
    for flight in flights:
        if flight.task.done() and not flight.task.cancelled():
            flight.task.exception()  # retrieved: it was given up


def _rows_of(chunk: Chunk) -> list[Row]:
    return [row for _, row in chunk]


def _numbered(chunk: Chunk, outcomes: list[RowOutcome]) -> list[NumberedOutcome]:
    return [
        NumberedOutcome(line, _renumbered(outcome, index, line))
        for index, ((line, _), outcome) in enumerate(zip(chunk, outcomes, strict=True))
    ]


def _renumbered(outcome: RowOutcome, index: int, line: int) -> RowOutcome:
    if not isinstance(outcome.error, ValidationFailed):
        return outcome
    inner = f"row.{index}"
    problems = [
        Problem(
            f"line {line}" + p.field.removeprefix(inner) if p.field.startswith(inner) else p.field,
            p.message,
            p.code,
        )
        for p in outcome.error.problems
    ]
    return RowOutcome(
        outcome.status, outcome.claim_id, ValidationFailed(outcome.error.message, problems)
    )
