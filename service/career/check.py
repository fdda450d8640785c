"""The competence check and occupation matches with what the citizen wants and the lights of
the labour market: the matching domain's answers, with the career part around them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.career.fit import Standing, standing
from service.career.lights import Light, load_lights
from service.career.profile import CareerView
from service.career.signals import SignalStatus
from service.career.texts import Text
from service.matching.service import CompetenceCheck, Holdings, OccupationMatch
from service.matching.service import competence_check as run_check
from service.matching.service import occupation_matches as run_matches
from service.models.enums import Want
from service.passports.service import Passport
from service.taxonomy.search import CompetenceRef, OccupationRef, competences_by_id


@dataclass(frozen=True)
class WantsNote:
    """Whether what the citizen wants was shown to the caller and shaped the answer."""

    shown: bool
    applied: bool
    text: Text


def wants_note(career: CareerView) -> WantsNote:
    if not career.visibility.wants:
        return WantsNote(False, False, Text("wants.not_shared"))
    if not career.wants and not career.goals:
        return WantsNote(True, False, Text("wants.none"))
    return WantsNote(
        True, True, Text("wants.applied", {"wants": len(career.wants), "goals": len(career.goals)})
    )


@dataclass(frozen=True)
class CareerCheck:
    check: CompetenceCheck
    standing: Standing
    stances: Mapping[int, Want]
    wants: WantsNote
    lights: list[Light]
    signals: SignalStatus


async def career_check(
    session: AsyncSession,
    passport: Passport,
    career: CareerView,
    occupation: OccupationRef,
    *,
    stale_after_years: int,
    language: str,
    region: str | None,
    light_competences: Iterable[int] | None = None,
) -> CareerCheck:
    """The check of ``occupation``, its standing with the citizen's wants, and its lights;
    the competence lights cover ``light_competences`` (default: the required ones held)."""
    check = await run_check(
        session, passport, occupation, stale_after_years=stale_after_years, language=language
    )
    holdings = Holdings.of(passport)
    preferences = career.preferences
    held = holdings.verified.keys() | holdings.declared
    if light_competences is None:
        light_competences = [r.competence.id for r in check.requirements if r.competence.id in held]
    watched = list(light_competences)
    lights = await load_lights(
        session,
        holdings=holdings,
        occupations=[occupation],
        competence_ids=watched,
        region=region,
        stale_before=check.stale_before,
    )
    return CareerCheck(
        check=check,
        standing=standing(
            occupation.id,
            occupation.essential_ids,
            occupation.optional_ids,
            holdings.verified,
            preferences,
        ),
        stances=preferences.stances,
        wants=wants_note(career),
        lights=lights.occupation(occupation, stale_matters=True) + lights.competences(watched),
        signals=lights.status,
    )


@dataclass(frozen=True)
class CareerMatch:
    match: OccupationMatch
    lights: list[Light]


@dataclass(frozen=True)
class CareerMatches:
    matches: list[CareerMatch]
    wants: WantsNote
    signals: SignalStatus
    refs: Mapping[int, CompetenceRef]  # the wanted competences the reasons name


async def career_matches(
    session: AsyncSession,
    passport: Passport,
    career: CareerView,
    *,
    first: int,
    region: str | None,
    stale_after_years: int,
) -> CareerMatches:
    """Occupations ranked by fit and by what the citizen wants (as far as the caller sees
    it), each with its reasons and lights; stale competences light up for goals only."""
    preferences = career.preferences
    found = await run_matches(session, passport, first=first, preferences=preferences)
    holdings = Holdings.of(passport)
    lights = await load_lights(
        session,
        holdings=holdings,
        occupations=[m.occupation for m in found],
        competence_ids={c.id for m in found for c in m.matched},
        region=region,
        stale_before=clock.add_years(clock.today(), -stale_after_years),
    )
    named = {c for m in found if m.standing for f in m.standing.factors for c in f.competence_ids}
    return CareerMatches(
        refs=await competences_by_id(session, sorted(named)) if named else {},
        matches=[
            CareerMatch(
                m,
                lights.occupation(m.occupation, stale_matters=m.occupation.id in preferences.goals)
                + lights.competences(c.id for c in m.matched),
            )
            for m in found
        ],
        wants=wants_note(career),
        signals=lights.status,
    )
