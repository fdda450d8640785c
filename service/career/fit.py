"""How far an occupation suits a citizen: the fit of the passport, moved by what they want.

One rule, in two forms that must agree: ``standing`` explains one occupation (the reasons an
answer gives), ``SCORE_SQL`` ranks all of them in the database (``occupationMatches``). Both
take their numbers from ``POINTS``; a test holds them to the same score.

- fit: the share of the occupation's essential competences the passport holds, verified;
- +0.05 for each competence it asks for (essential or optional) that the citizen wants to use
  more, at most +0.15; the same for competences they want to develop;
- -0.10 for each essential competence they would rather not use any more, at most -0.30;
- +0.25 when it is one of their career goals.

So wants reorder occupations of similar fit, and a goal lifts an occupation a quarter of the
scale, but no want turns a poor fit into a good one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from service.career.texts import Text, percent
from service.models.enums import RankFactorKind, Want

# (points per competence, most points in all) for wants; points once for a goal.
POINTS: Mapping[RankFactorKind, tuple[float, float]] = {
    RankFactorKind.USE_MORE: (0.05, 0.15),
    RankFactorKind.DEVELOP: (0.05, 0.15),
    RankFactorKind.RATHER_NOT: (0.10, 0.30),
    RankFactorKind.GOAL: (0.25, 0.25),
}


@dataclass(frozen=True)
class Preferences:
    """What the citizen wants, as far as the caller may see it."""

    stances: Mapping[int, Want] = field(default_factory=dict)  # competence id -> stance
    goals: Mapping[int, int | None] = field(default_factory=dict)  # occupation id -> by year

    @property
    def empty(self) -> bool:
        return not self.stances and not self.goals

    def with_stance(self, stance: Want, ids: Iterable[int]) -> list[int]:
        return sorted(c for c in ids if self.stances.get(c) is stance)


NO_PREFERENCES = Preferences()


@dataclass(frozen=True)
class RankFactor:
    kind: RankFactorKind
    points: float
    competence_ids: tuple[int, ...]
    text: Text


@dataclass(frozen=True)
class Standing:
    score: float
    fit: float
    factors: list[RankFactor]


def _capped(kind: RankFactorKind, count: int) -> float:
    each, most = POINTS[kind]
    return min(count * each, most)


def standing(
    occupation_id: int,
    essential: Collection[int],
    optional: Collection[int],
    verified: Collection[int],
    preferences: Preferences,
) -> Standing:
    """The score ``SCORE_SQL`` ranks by, with each part of it as a reason."""
    held = sum(1 for c in essential if c in verified)
    fit = held / len(essential) if essential else 0.0
    factors = [
        RankFactor(
            RankFactorKind.FIT,
            fit,
            (),
            Text("rank.fit", {"percent": percent(fit), "held": held, "total": len(essential)}),
        )
    ]
    asked = [*essential, *optional]
    score = fit
    for kind, stance, among, sign in (
        (RankFactorKind.USE_MORE, Want.USE_MORE, asked, 1.0),
        (RankFactorKind.DEVELOP, Want.DEVELOP, asked, 1.0),
        (RankFactorKind.RATHER_NOT, Want.RATHER_NOT, essential, -1.0),
    ):
        ids = preferences.with_stance(stance, among)
        points = sign * _capped(kind, len(ids))
        score = score + points  # the order SCORE_SQL adds in, so the floats agree
        if ids:
            factors.append(
                RankFactor(
                    kind, points, tuple(ids), Text(f"rank.{kind.value}", {"count": len(ids)})
                )
            )
    if occupation_id in preferences.goals:
        points = _capped(RankFactorKind.GOAL, 1)
        score = score + points
        year = preferences.goals[occupation_id]
        factors.append(
            RankFactor(
                RankFactorKind.GOAL,
                points,
                (),
                Text("rank.goal_by", {"year": year}) if year else Text("rank.goal"),
            )
        )
    return Standing(score=score, fit=fit, factors=factors)


# Over a row with essential_held, essential_total, use_more, develop, rather_not and
# occupation_id, and the parameters of ``score_parameters``.
# Every number typed: left to infer, PostgreSQL would take 0.25 next to "ELSE 0" for an integer.
SCORE_SQL = """
  h.essential_held::float8 / t.essential_total
  + least(h.use_more * CAST(:use_more_each AS float8), CAST(:use_more_most AS float8))
  + least(h.develop * CAST(:develop_each AS float8), CAST(:develop_most AS float8))
  - least(h.rather_not * CAST(:rather_not_each AS float8), CAST(:rather_not_most AS float8))
  + CASE WHEN h.occupation_id = ANY(CAST(:goals AS int[]))
         THEN CAST(:goal_points AS float8) ELSE 0 END
"""


def score_parameters(preferences: Preferences) -> dict[str, object]:
    return {
        "use_more_each": POINTS[RankFactorKind.USE_MORE][0],
        "use_more_most": POINTS[RankFactorKind.USE_MORE][1],
        "develop_each": POINTS[RankFactorKind.DEVELOP][0],
        "develop_most": POINTS[RankFactorKind.DEVELOP][1],
        "rather_not_each": POINTS[RankFactorKind.RATHER_NOT][0],
        "rather_not_most": POINTS[RankFactorKind.RATHER_NOT][1],
        "goal_points": _capped(RankFactorKind.GOAL, 1),
        "goals": sorted(preferences.goals),
    }
