"""Labour-market signals: what an operator imports (`passport import-signals FILE`), and the
lookup the warning lights use.

A file is CSV (a header row, then one signal per row) or JSON (an array of objects), UTF-8,
with these columns or keys:

- exactly one of ``occupationUri`` (an ESCO occupation), ``skillUri`` (an ESCO skill or
  knowledge concept) or ``iscoCode`` (an ISCO-08 group, 1 to 4 digits: the signal holds for
  every ESCO occupation in it);
- ``kind``: ``shortage`` (a shortage occupation, or a scarce competence), ``rising_demand`` or
  ``falling_demand``;
- ``region``: a NUTS code (``BE`` for Belgium, ``BE2`` for the Flemish Region, ``BE21`` for
  the province of Antwerp ...);
- ``horizonYear``: the year the signal speaks of;
- ``source``: who says so (e.g. ``VDAB knelpuntberoepen 2025``), ``publishedOn`` (YYYY-MM-DD),
  and optionally ``sourceUrl``.

Every row is checked and reported on its own. A file's accepted rows replace, for each source
it names, that source's earlier signals; other sources stay as they are. The replacement is
one transaction that first writes every new row and only then removes what they replace, so
until an import is complete readers keep seeing the previous one, and an import that fails
leaves it in place. Importing the same rows again, in any order, changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Self

import asyncpg
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service import canonical, clock
from service.career.texts import Text
from service.claims.rules import ConceptUri, PastDate, WebUrl
from service.errors import Problem, ValidationFailed
from service.models.enums import SignalImportStatus, SignalKind
from service.taxonomy.search import OccupationRef
from service.validation import Name, validate

MAX_ROWS = 100_000
MAX_BYTES = 64 * 1024 * 1024
SUBJECTS = ("occupationUri", "skillUri", "iscoCode")
COLUMNS = frozenset(
    {*SUBJECTS, "kind", "region", "horizonYear", "source", "sourceUrl", "publishedOn"}
)
REQUIRED = ("kind", "region", "horizonYear", "source", "publishedOn")
# Countries in the NUTS classification (EU, EFTA, candidates; "EL" is Greece, "UK" as was).
NUTS_COUNTRIES = frozenset(
    (
        *("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU"),
        *("IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"),
        *("CH", "IS", "LI", "NO", "AL", "ME", "MK", "RS", "TR", "UK"),
    )
)


class SignalFileError(ValueError):
    """The file cannot be read as a signal file at all; nothing was imported."""


def nuts(value: str) -> str:
    """A NUTS code: a country's two letters, then up to three levels of one letter or digit."""
    code = value.strip().upper()
    if not (
        2 <= len(code) <= 5
        and code[:2] in NUTS_COUNTRIES
        and all(ch.isascii() and ch.isalnum() for ch in code)
    ):
        raise ValueError("not a NUTS region code (e.g. BE, BE2, BE21)")
    return code


Region = Annotated[str, Field(max_length=10), AfterValidator(nuts)]


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class SignalRow(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, frozen=True, alias_generator=to_camel
    )

    occupation_uri: ConceptUri | None = None
    skill_uri: ConceptUri | None = None
    isco_code: str | None = Field(default=None, pattern=r"^[0-9]{1,4}$")
    kind: Annotated[SignalKind, BeforeValidator(_lower)]
    region: Region
    horizon_year: int = Field(ge=1990, le=2200)
    source: Name
    source_url: WebUrl | None = None
    published_on: PastDate

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        given = [s for s in (self.occupation_uri, self.skill_uri, self.isco_code) if s]
        if len(given) != 1:
            raise ValueError("give exactly one of occupationUri, skillUri or iscoCode")
        return self

    @property
    def subject(self) -> tuple[str, str]:
        if self.occupation_uri:
            return "occupation", self.occupation_uri
        if self.skill_uri:
            return "skill", self.skill_uri
        assert self.isco_code is not None
        return "isco", self.isco_code

    def normalized(self) -> dict[str, Any]:
        """What identifies the row's content, for the digest and for duplicates."""
        kind, subject = self.subject
        return {
            kind: subject,
            "kind": self.kind.value,
            "region": self.region,
            "horizonYear": self.horizon_year,
            "source": self.source,
            "sourceUrl": str(self.source_url) if self.source_url else None,
            "publishedOn": self.published_on.isoformat(),
        }


@dataclass(frozen=True)
class RowReport:
    line: int  # the file's own line (CSV) or position in the array, from 1 (JSON)
    status: str  # accepted | rejected
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "status": self.status}
        if self.problems:
            out["problems"] = [
                {"field": p.field, "message": p.message, "code": p.code} for p in self.problems
            ]
        return out


@dataclass(frozen=True)
class ImportReport:
    status: str  # imported | unchanged | checked (dry run) | nothing_to_import
    file_name: str
    rows: list[RowReport]
    import_id: int | None
    sources: list[str]
    replaced_signals: int
    seconds: float

    @property
    def accepted(self) -> int:
        return sum(1 for r in self.rows if r.status == "accepted")

    @property
    def rejected(self) -> int:
        return len(self.rows) - self.accepted

    def summary(self) -> dict[str, Any]:
        return {
            "summary": {
                "status": self.status,
                "file": self.file_name,
                "importId": self.import_id,
                "rows": len(self.rows),
                "accepted": self.accepted,
                "rejected": self.rejected,
                "sources": self.sources,
                "replacedSignals": self.replaced_signals,
                "seconds": round(self.seconds, 2),
            }
        }


# --- reading a file ---------------------------------------------------------------------------


def _read_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any] | None]]:
    """(line, row) per row; a row None when it is no object (JSON)."""
    if path.stat().st_size > MAX_BYTES:
        raise SignalFileError(f"{path.name}: larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SignalFileError(f"{path.name}: not UTF-8") from None
    if path.suffix.lower() == ".json" or content.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            raise SignalFileError(
                f"{path.name}: not valid JSON ({exc.msg}, line {exc.lineno})"
            ) from None
        if not isinstance(data, list):
            raise SignalFileError(f"{path.name}: JSON must be an array of signal objects")
        for index, item in enumerate(data, start=1):
            yield index, item if isinstance(item, dict) else None
        return
    reader = csv.DictReader(io.StringIO(content, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    unknown = [name for name in header if name not in COLUMNS]
    missing = [name for name in REQUIRED if name not in header]
    if unknown or missing or not any(s in header for s in SUBJECTS):
        raise SignalFileError(
            f"{path.name}: the header must name {', '.join(REQUIRED)} and one or more of "
            f"{', '.join(SUBJECTS)}" + (f"; unknown column {', '.join(unknown)}" if unknown else "")
        )
    reader.fieldnames = header
    for row in reader:
        if None in row:  # more fields than the header names
            yield reader.line_num, None
            continue
        yield reader.line_num, {k: v for k, v in row.items() if v is not None and v.strip()}


@dataclass
class _Taxonomy:
    occupations: dict[str, int]
    skills: dict[str, int]
    isco: frozenset[str]


async def _taxonomy(conn: asyncpg.Connection) -> _Taxonomy:
    occupations = {r["uri"]: r["id"] for r in await conn.fetch("SELECT uri, id FROM occupations")}
    skills = {
        r["uri"]: r["id"]
        for r in await conn.fetch("SELECT uri, id FROM competences WHERE concept_type = 'skill'")
    }
    isco = frozenset(r["code"] for r in await conn.fetch("SELECT code FROM isco_groups"))
    return _Taxonomy(occupations, skills, isco)


@dataclass(frozen=True)
class _Accepted:
    line: int
    row: SignalRow
    occupation_id: int | None
    competence_id: int | None


def check_rows(
    rows: Iterable[tuple[int, Mapping[str, Any] | None]], taxonomy: _Taxonomy
) -> tuple[list[RowReport], list[_Accepted]]:
    """Every row checked on its own: its fields, that its concept exists, and that no earlier
    row of the file says the same."""
    reports: list[RowReport] = []
    accepted: list[_Accepted] = []
    seen: dict[str, int] = {}
    for count, (line, data) in enumerate(rows, start=1):
        if count > MAX_ROWS:
            raise SignalFileError(f"more than {MAX_ROWS} rows: split the file")
        prefix = f"line {line}"
        if data is None:
            shape = Problem(prefix, "not a signal object (or more fields than the header)")
            reports.append(RowReport(line, "rejected", [shape]))
            continue
        try:
            row = validate(SignalRow, data, prefix=prefix)
        except ValidationFailed as failed:
            reports.append(RowReport(line, "rejected", failed.problems))
            continue
        kind, subject = row.subject
        occupation_id = taxonomy.occupations.get(subject) if kind == "occupation" else None
        competence_id = taxonomy.skills.get(subject) if kind == "skill" else None
        problem: Problem | None = None
        if kind == "occupation" and occupation_id is None:
            problem = Problem(f"{prefix}.occupationUri", "not an ESCO occupation", "unknown")
        elif kind == "skill" and competence_id is None:
            problem = Problem(
                f"{prefix}.skillUri", "not an ESCO skill or knowledge concept", "unknown"
            )
        elif kind == "isco" and subject not in taxonomy.isco:
            problem = Problem(f"{prefix}.iscoCode", "not an ISCO-08 group", "unknown")
        key = canonical.dumps(row.normalized()).decode()
        if problem is None and key in seen:
            problem = Problem(prefix, f"the same signal as line {seen[key]}", "duplicate")
        if problem is not None:
            reports.append(RowReport(line, "rejected", [problem]))
            continue
        seen[key] = line
        reports.append(RowReport(line, "accepted"))
        accepted.append(_Accepted(line, row, occupation_id, competence_id))
    return reports, accepted


def _digest(accepted: Sequence[_Accepted]) -> bytes:
    """Of the rows' content, in no particular order: the same rows reordered are the same."""
    keys = sorted(canonical.dumps(a.row.normalized()).decode() for a in accepted)
    return hashlib.sha256("\n".join(keys).encode()).digest()


# --- importing --------------------------------------------------------------------------------

_LOCK = "SELECT pg_advisory_xact_lock(hashtext('passport:signal-import'))"


def _by_source(accepted: Sequence[_Accepted]) -> dict[str, dict[str, Any]]:
    counts = Counter(a.row.source for a in accepted)
    latest: dict[str, date] = {}
    for a in accepted:
        latest[a.row.source] = max(latest.get(a.row.source, a.row.published_on), a.row.published_on)
    return {
        source: {"signals": n, "publishedOn": latest[source].isoformat()}
        for source, n in sorted(counts.items())
    }


async def _unchanged(conn: asyncpg.Connection, digest: bytes, rows: int) -> int | None:
    """A complete import of exactly these rows whose signals are all still current."""
    found = await conn.fetchrow(
        """
        SELECT i.id FROM signal_imports i
        WHERE i.digest = $1 AND i.status = 'complete'
          AND (SELECT count(*) FROM labour_market_signals s WHERE s.import_id = i.id) = $2
        ORDER BY i.id DESC LIMIT 1
        """,
        digest,
        rows,
    )
    return None if found is None else int(found["id"])


async def _write(
    conn: asyncpg.Connection, name: str, digest: bytes, accepted: Sequence[_Accepted]
) -> tuple[int, int]:
    """(the new import's id, how many earlier signals it replaced). The new rows first, then
    the replacement; one transaction, so it is all or nothing."""
    by_source = _by_source(accepted)
    import_id = await conn.fetchval(
        """
        INSERT INTO signal_imports (file_name, digest, sources, status, imported_at, counts)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING id
        """,
        name,
        digest,
        sorted(by_source),
        SignalImportStatus.COMPLETE.value,
        clock.now(),
        json.dumps({"bySource": by_source}),
    )
    await conn.copy_records_to_table(
        "labour_market_signals",
        columns=[
            "import_id",
            "line",
            "occupation_id",
            "competence_id",
            "isco_code",
            "kind",
            "region",
            "horizon_year",
            "source",
            "source_url",
            "published_on",
        ],
        records=[
            (
                import_id,
                a.line,
                a.occupation_id,
                a.competence_id,
                a.row.isco_code,
                a.row.kind.value,
                a.row.region,
                a.row.horizon_year,
                a.row.source,
                str(a.row.source_url) if a.row.source_url else None,
                a.row.published_on,
            )
            for a in accepted
        ],
    )
    replaced = await _replace(conn, import_id, sorted(by_source))
    return int(import_id), replaced


async def _replace(conn: asyncpg.Connection, import_id: int, sources: list[str]) -> int:
    """Earlier signals of these sources go; an earlier import left with none is replaced."""
    status = await conn.execute(
        "DELETE FROM labour_market_signals WHERE import_id <> $1 AND source = ANY($2::text[])",
        import_id,
        sources,
    )
    await conn.execute(
        """
        UPDATE signal_imports i
        SET sources = ARRAY(SELECT s FROM unnest(i.sources) s WHERE s <> ALL($2::text[])),
            counts = jsonb_set(i.counts, '{bySource}',
                               (i.counts->'bySource') - $2::text[]),
            status = CASE WHEN i.sources <@ $2::text[] THEN $3 ELSE i.status END
        WHERE i.id <> $1 AND i.status = 'complete' AND i.sources && $2::text[]
        """,
        import_id,
        sources,
        SignalImportStatus.REPLACED.value,
    )
    return int(status.split()[-1])


async def import_signals(engine: AsyncEngine, path: Path, *, dry_run: bool = False) -> ImportReport:
    """Check every row of the file and, unless ``dry_run``, import the accepted ones."""
    started = time.perf_counter()
    rows = list(_read_rows(path))
    async with engine.connect() as sa_conn:
        raw = await sa_conn.get_raw_connection()
        conn: asyncpg.Connection = raw.driver_connection
        async with conn.transaction():
            await conn.execute(_LOCK)  # one import at a time
            reports, accepted = check_rows(rows, await _taxonomy(conn))
            sources = sorted({a.row.source for a in accepted})

            def report(
                status: str, import_id: int | None = None, replaced: int = 0
            ) -> ImportReport:
                return ImportReport(
                    status,
                    path.name,
                    reports,
                    import_id,
                    sources,
                    replaced,
                    time.perf_counter() - started,
                )

            if not accepted:
                return report("nothing_to_import")
            digest = _digest(accepted)
            if dry_run:
                return report("checked")
            same = await _unchanged(conn, digest, len(accepted))
            if same is not None:
                return report("unchanged", same)
            import_id, replaced = await _write(conn, path.name, digest, accepted)
            return report("imported", import_id, replaced)


# --- looking up -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signal:
    kind: SignalKind
    region: str
    horizon_year: int
    source: str
    source_url: str | None
    published_on: date
    occupation_id: int | None
    competence_id: int | None
    isco_code: str | None


@dataclass(frozen=True)
class SourceSummary:
    name: str
    published_on: date
    imported_at: datetime
    signals: int


@dataclass(frozen=True)
class SignalStatus:
    sources: list[SourceSummary]

    @property
    def loaded(self) -> bool:
        return bool(self.sources)

    @property
    def text(self) -> Text:
        if self.loaded:
            return Text("signals.loaded", {"count": len(self.sources)})
        return Text("signals.not_loaded")


_STATUS = text(
    "SELECT imported_at, counts FROM signal_imports WHERE status = 'complete' ORDER BY id"
)
_SIGNALS = text(
    """
    SELECT kind, region, horizon_year, source, source_url, published_on,
           occupation_id, competence_id, isco_code
    FROM labour_market_signals
    WHERE (competence_id = ANY(:competences) OR occupation_id = ANY(:occupations)
           OR isco_code = ANY(:isco))
      AND (CAST(:region AS text) IS NULL OR starts_with(CAST(:region AS text), region))
    ORDER BY published_on DESC, source, region, horizon_year, id
    """
)


async def signal_status(session: AsyncSession) -> SignalStatus:
    sources: list[SourceSummary] = []
    for row in await session.execute(_STATUS):
        for name, facts in (row.counts.get("bySource") or {}).items():
            sources.append(
                SourceSummary(
                    name,
                    date.fromisoformat(facts["publishedOn"]),
                    row.imported_at,
                    int(facts["signals"]),
                )
            )
    return SignalStatus(sorted(sources, key=lambda s: s.name))


def isco_prefixes(group: str | None) -> list[str]:
    """An occupation in ISCO group 2512 is in 251, 25 and 2 as well."""
    return [group[:n] for n in range(1, len(group) + 1)] if group else []


async def signals_for(
    session: AsyncSession,
    *,
    competence_ids: Iterable[int],
    occupations: Iterable[OccupationRef],
    region: str | None,
) -> list[Signal]:
    """The current signals on these competences and occupations (and their ISCO groups), for
    ``region`` and the regions around it (BE for BE21), or for every region when None."""
    occupations = list(occupations)
    rows = await session.execute(
        _SIGNALS,
        {
            "competences": sorted(set(competence_ids)),
            "occupations": sorted({o.id for o in occupations}),
            "isco": sorted({p for o in occupations for p in isco_prefixes(o.isco_group)}),
            "region": region,
        },
    )
    return [
        Signal(
            SignalKind(r.kind),
            r.region,
            r.horizon_year,
            r.source,
            r.source_url,
            r.published_on,
            r.occupation_id,
            r.competence_id,
            r.isco_code,
        )
        for r in rows
    ]


class RegionInput(BaseModel):
    region: Region | None = None


def parse_region(value: str | None) -> str | None:
    """A query's region argument, as a typed error when it is no NUTS code."""
    return validate(RegionInput, {"region": value}, prefix="").region
