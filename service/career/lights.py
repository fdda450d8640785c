"""Warning lights, and good signs, on occupations and held competences: each with the reason,
in Dutch and English, and the source it rests on.

From imported labour-market signals (service.career.signals): a shortage occupation or rising
demand (green), a shrinking occupation (red), a held competence in rising demand or scarce
(green) or in falling demand (amber). From ESCO's shipped collections, the twin transition: an
occupation asking for digital competences of a passport that shows none (red; amber when it
shows other digital ones), or for green competences it does not show (amber). From the
passport's own dates: essential competences of a goal not used for longer than the stale
threshold (amber). Nothing is invented: without imported signals only the ESCO and passport
lights show, and ``SignalStatus`` says that no forecasts are loaded.

The lights judge only what the read may see: a reader under a grant for some competences
gets the digital light worded for what is shared with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.career.signals import Signal, SignalStatus, isco_prefixes, signal_status, signals_for
from service.career.texts import Text
from service.matching.service import Holdings
from service.models.enums import LightColor, LightKind, LightSourceKind, SignalKind
from service.taxonomy.search import CompetenceRef, OccupationRef, competences_by_id

DIGITAL = frozenset({"digital", "digcomp"})
GREEN = "green"
ESCO_FILES = {"digital": "digitalSkillsCollection", "green": "greenSkillsCollection"}

OCCUPATION_SIGNALS: Mapping[SignalKind, tuple[LightKind, LightColor]] = {
    SignalKind.SHORTAGE: (LightKind.OCCUPATION_SHORTAGE, LightColor.GREEN),
    SignalKind.RISING_DEMAND: (LightKind.OCCUPATION_RISING, LightColor.GREEN),
    SignalKind.FALLING_DEMAND: (LightKind.OCCUPATION_FALLING, LightColor.RED),
}
COMPETENCE_SIGNALS: Mapping[SignalKind, tuple[LightKind, LightColor]] = {
    SignalKind.SHORTAGE: (LightKind.COMPETENCE_SHORTAGE, LightColor.GREEN),
    SignalKind.RISING_DEMAND: (LightKind.COMPETENCE_RISING, LightColor.GREEN),
    SignalKind.FALLING_DEMAND: (LightKind.COMPETENCE_FALLING, LightColor.AMBER),
}
MARKET = frozenset(kind for kind, _ in OCCUPATION_SIGNALS.values())


@dataclass(frozen=True)
class LightSource:
    kind: LightSourceKind
    name: str
    published_on: date | None = None
    region: str | None = None
    horizon_year: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class Light:
    kind: LightKind
    color: LightColor
    text: Text
    source: LightSource
    occupation: OccupationRef | None = None
    competences: tuple[CompetenceRef, ...] = ()


_COLLECTIONS = text(
    """
    SELECT competence_id, array_agg(collection) AS collections FROM competence_collections
    WHERE competence_id = ANY(:ids) AND collection = ANY(:wanted)
    GROUP BY competence_id
    """
)
_ESCO_VERSION = text("SELECT esco_version FROM taxonomy_imports ORDER BY id DESC LIMIT 1")


@dataclass(frozen=True)
class Lights:
    """What the lights of one answer are made of, loaded in a fixed number of statements."""

    status: SignalStatus
    signals: Sequence[Signal]
    collections: Mapping[int, frozenset[str]]
    refs: Mapping[int, CompetenceRef]
    esco: str
    holdings: Holdings
    stale_before: date

    def _signal_light(self, signal: Signal, kind: LightKind, color: LightColor) -> Light:
        source = LightSource(
            LightSourceKind.SIGNAL,
            signal.source,
            signal.published_on,
            signal.region,
            signal.horizon_year,
            signal.source_url,
        )
        params: dict[str, str | int] = {
            "source": signal.source,
            "region": signal.region,
            "year": signal.horizon_year,
        }
        return Light(kind, color, Text(f"light.{kind.value}", params), source)

    def _esco(self, collection: str) -> LightSource:
        return LightSource(LightSourceKind.ESCO, f"ESCO {self.esco}, {ESCO_FILES[collection]}")

    def _in(self, ids: Iterable[int], collections: frozenset[str]) -> list[int]:
        return [c for c in ids if self.collections.get(c, frozenset()) & collections]

    def _competences(self, ids: Iterable[int]) -> tuple[CompetenceRef, ...]:
        return tuple(self.refs[c] for c in ids if c in self.refs)

    def occupation(self, occupation: OccupationRef, *, stale_matters: bool) -> list[Light]:
        """The occupation's market signals (its own and its ISCO groups'), the twin
        transition, and, when it is a goal (``stale_matters``), what has gone stale for it."""
        lights = []
        groups = set(isco_prefixes(occupation.isco_group))
        for signal in self.signals:
            if signal.occupation_id == occupation.id or signal.isco_code in groups:
                kind, color = OCCUPATION_SIGNALS[signal.kind]
                lights.append(
                    _about(self._signal_light(signal, kind, color), occupation=occupation)
                )
        verified = self.holdings.verified
        digital = self._in(occupation.essential_ids, DIGITAL)
        if digital and not any(c in verified for c in digital):
            shows_digital = bool(self._in(verified, DIGITAL))
            key = (
                "light.digital_other"
                if shows_digital
                else "light.digital_gap_shared"
                if self.holdings.scope is not None
                else "light.digital_gap"
            )
            lights.append(
                Light(
                    LightKind.DIGITAL_GAP,
                    LightColor.AMBER if shows_digital else LightColor.RED,
                    Text(key, {"count": len(digital)}),
                    self._esco("digital"),
                    occupation,
                    self._competences(digital),
                )
            )
        green = self._in(occupation.essential_ids, frozenset({GREEN}))
        missing_green = [c for c in green if c not in verified]
        if green and len(missing_green) == len(green):
            lights.append(
                Light(
                    LightKind.GREEN_GAP,
                    LightColor.AMBER,
                    Text("light.green_gap", {"count": len(green)}),
                    self._esco(GREEN),
                    occupation,
                    self._competences(green),
                )
            )
        if stale_matters:
            stale = [
                c
                for c in occupation.essential_ids
                if c in verified and verified[c] < self.stale_before
            ]
            if stale:
                lights.append(
                    Light(
                        LightKind.STALE_FOR_GOAL,
                        LightColor.AMBER,
                        Text(
                            "light.stale_for_goal",
                            {"count": len(stale), "date": self.stale_before.isoformat()},
                        ),
                        LightSource(LightSourceKind.PASSPORT, "lastUsedOn"),
                        occupation,
                        self._competences(stale),
                    )
                )
        return lights

    def competences(self, ids: Iterable[int]) -> list[Light]:
        """Market signals on these (held) competences."""
        wanted = set(ids)
        lights = []
        for signal in self.signals:
            if signal.competence_id is not None and signal.competence_id in wanted:
                kind, color = COMPETENCE_SIGNALS[signal.kind]
                light = self._signal_light(signal, kind, color)
                lights.append(_about(light, competences=self._competences([signal.competence_id])))
        return lights


def _about(
    light: Light,
    *,
    occupation: OccupationRef | None = None,
    competences: tuple[CompetenceRef, ...] = (),
) -> Light:
    return Light(
        light.kind,
        light.color,
        light.text,
        light.source,
        occupation or light.occupation,
        competences or light.competences,
    )


async def load_lights(
    session: AsyncSession,
    *,
    holdings: Holdings,
    occupations: Sequence[OccupationRef],
    competence_ids: Iterable[int],
    region: str | None,
    stale_before: date,
) -> Lights:
    """For these occupations and these (held) competences: five statements, whatever their
    number."""
    held = set(competence_ids)
    required = {c for o in occupations for c in o.essential_ids}
    status = await signal_status(session)
    signals = (
        await signals_for(session, competence_ids=held, occupations=occupations, region=region)
        if status.loaded
        else []
    )
    every = sorted(required | holdings.verified.keys() | held)
    collections = {
        row.competence_id: frozenset(row.collections)
        for row in await session.execute(
            _COLLECTIONS, {"ids": every, "wanted": sorted(DIGITAL | {GREEN})}
        )
    }
    refs = await competences_by_id(session, sorted(required | held))
    esco = await session.scalar(_ESCO_VERSION) or ""
    return Lights(status, signals, collections, refs, esco, holdings, stale_before)
