"""What the work history teaches: competences it suggests, and the occupations it leads to.

**Suggested competences** are the essential competences of the occupations held that the
passport does not hold yet (verified or self-declared), each with the occupations it came from.
The citizen can accept them, in one call, as self-declared competences: never as verified ones,
since holding an occupation says the competence was asked, not that anyone assessed it.

**Career paths** (after Australia's Skills Match): the occupations that share essential
competences with those held, ranked by the weighted share of their essential competences
already there. A verified competence counts fully, a self-declared one half, a suggested one a
quarter (``WEIGHTS``; the answer states them). Each path lists what is missing and a learning
plan for it (the published offers, greedy cover), and its warning lights. One statement ranks
all 3,007 ESCO occupations: it counts the passport's and the suggestions' relations through the
index on ``competence_id`` and reads each occupation's total from
``occupation_requirement_counts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.principal import Principal
from service.career.lights import Light, load_lights
from service.career.profile import CareerView, WorkView, load_history
from service.career.signals import SignalStatus, signal_status
from service.career.texts import Text, percent
from service.citizens.service import own_citizen_id
from service.claims.rules import ConceptUri, SelfDeclarationInput
from service.claims.service import IssueOutcome, declare_self, self_declaration_ref
from service.claims.views import load_claims
from service.errors import ValidationFailed
from service.learning.service import Recommendation, learning_plans
from service.matching.service import Holdings
from service.models import Claim
from service.models.enums import ClaimStatus, LearningContext, Want
from service.passports.service import Passport
from service.taxonomy.search import (
    CompetenceRef,
    OccupationRef,
    competences_by_id,
    occupation_ref,
    pick_label,
)
from service.validation import validate

VERIFIED, DECLARED, SUGGESTED = "verified", "self_declared", "suggested"
WEIGHTS: Mapping[str, float] = {VERIFIED: 1.0, DECLARED: 0.5, SUGGESTED: 0.25}
MAX_PATHS = 20


@dataclass(frozen=True)
class Suggestion:
    competence: CompetenceRef
    occupations: list[OccupationRef]  # the occupations held that ask for it, essential
    since: date  # the earliest start of those
    until: date | None  # their latest end; None while one is ongoing

    @property
    def text(self) -> Text:
        return Text("suggestion", {"count": len(self.occupations)})


def suggested_ids(history: Sequence[WorkView], holdings: Holdings) -> dict[int, list[WorkView]]:
    """Essential competences of the occupations held, not in the passport: id -> entries."""
    held = holdings.verified.keys() | holdings.declared
    found: dict[int, list[WorkView]] = {}
    for entry in sorted(history, key=lambda e: (e.started_on, str(e.id))):
        for competence_id in entry.occupation.essential_ids:
            if competence_id not in held:
                found.setdefault(competence_id, []).append(entry)
    return found


async def suggestions(
    session: AsyncSession, history: Sequence[WorkView], holdings: Holdings
) -> list[Suggestion]:
    found = suggested_ids(history, holdings)
    refs = await competences_by_id(session, sorted(found)) if found else {}
    out = []
    for competence_id, entries in found.items():
        if competence_id not in refs:
            continue
        occupations = list({e.occupation.id: e.occupation for e in entries}.values())
        ongoing = any(e.ended_on is None for e in entries)
        out.append(
            Suggestion(
                refs[competence_id],
                occupations,
                min(e.started_on for e in entries),
                None if ongoing else max(e.ended_on for e in entries if e.ended_on),
            )
        )
    return sorted(out, key=lambda s: (-len(s.occupations), s.competence.uri))


# The winners are chosen before their occupations are joined: the join and the lists are
# read for the page only, not for every occupation reached.
_PATHS = text(
    """
    WITH mine AS (
      SELECT * FROM unnest(CAST(:ids AS int[]), CAST(:weights AS float8[]),
                           CAST(:kinds AS text[]), CAST(:transferable AS bool[]))
        AS m(competence_id, weight, kind, transferable)
    ), hits AS (
      SELECT oc.occupation_id, sum(m.weight) AS weight,
             count(*) FILTER (WHERE m.kind = 'verified') AS verified,
             count(*) FILTER (WHERE m.kind = 'self_declared') AS declared,
             count(*) FILTER (WHERE m.kind = 'suggested') AS suggested
      FROM occupation_competences oc JOIN mine m USING (competence_id)
      WHERE oc.competence_id = ANY(:ids) AND oc.relation = 'essential'
        AND oc.occupation_id <> ALL(:held_occupations)
      GROUP BY oc.occupation_id
      HAVING bool_or(m.transferable)  -- reachable: it shares one with an occupation held
    ), top AS (
      SELECT h.*, t.essential_total, h.weight / t.essential_total AS score
      FROM hits h JOIN occupation_requirement_counts t USING (occupation_id)
      WHERE t.essential_total > 0
      ORDER BY score DESC, h.verified DESC, t.essential_total DESC, h.occupation_id
      LIMIT :first
    )
    SELECT o.id, o.uri, o.code, o.isco_group, o.preferred_labels, o.descriptions,
           top.verified, top.declared, top.suggested, top.essential_total, top.score,
           array(SELECT oc.competence_id FROM occupation_competences oc
                 WHERE oc.occupation_id = o.id AND oc.relation = 'essential'
                 ORDER BY oc.competence_id) AS essential,
           array(SELECT oc.competence_id FROM occupation_competences oc
                 WHERE oc.occupation_id = o.id AND oc.relation = 'optional'
                 ORDER BY oc.competence_id) AS optional
    FROM top JOIN occupations o ON o.id = top.occupation_id
    ORDER BY top.score DESC, top.verified DESC, top.essential_total DESC, o.id
    """
)


@dataclass(frozen=True)
class CareerPath:
    rank: int
    occupation: OccupationRef
    score: float  # the weighted share of its essential competences already there
    essential_total: int
    verified: int
    declared: int
    suggested: list[CompetenceRef]
    strengths: list[CompetenceRef]  # held, verified or self-declared, and not "rather not"
    rather_not: list[CompetenceRef]  # held, but the citizen would rather not use them
    missing: list[CompetenceRef]
    not_shared: int  # outside what the reader's grants show
    transferable: list[CompetenceRef]  # essential to an occupation held as well
    is_goal: bool
    learning_plan: list[Recommendation]
    lights: list[Light]

    @property
    def text(self) -> Text:
        return Text(
            "path",
            {
                "percent": percent(self.score),
                "verified": self.verified,
                "declared": self.declared,
                "suggested": len(self.suggested),
                "missing": len(self.missing),
            },
        )


@dataclass(frozen=True)
class CareerPaths:
    history_shown: bool
    held: list[OccupationRef]
    paths: list[CareerPath]
    signals: SignalStatus

    @property
    def text(self) -> Text:
        if not self.history_shown:
            return Text("paths.history_not_shared")
        if not self.held:
            return Text("paths.no_history")
        return Text("paths.found", {"count": len(self.held)})

    @property
    def weights_text(self) -> Text:
        return Text(
            "paths.weights",
            {"verified": "1", "declared": "1/2", "suggested": "1/4"},
        )


async def career_paths(
    session: AsyncSession,
    passport: Passport,
    career: CareerView,
    *,
    first: int,
    region: str | None,
    language: str,
    stale_after_years: int,
) -> CareerPaths:
    held_occupations = career.held_occupations
    if not career.visibility.history or not held_occupations or first <= 0:
        status = await signal_status(session)
        return CareerPaths(career.visibility.history, held_occupations, [], status)
    holdings = Holdings.of(passport)
    suggested = suggested_ids(career.history, holdings)
    transferable = {c for o in held_occupations for c in o.essential_ids}
    kinds: dict[int, str] = {c: SUGGESTED for c in suggested}
    kinds.update(dict.fromkeys(holdings.declared, DECLARED))
    kinds.update(dict.fromkeys(holdings.verified, VERIFIED))
    ids = sorted(kinds)
    rows = list(
        await session.execute(
            _PATHS,
            {
                "ids": ids,
                "weights": [WEIGHTS[kinds[c]] for c in ids],
                "kinds": [kinds[c] for c in ids],
                "transferable": [c in transferable for c in ids],
                "held_occupations": sorted(o.id for o in held_occupations),
                "first": first,
            },
        )
    )
    scope = holdings.scope

    def missing(row_essential: Sequence[int]) -> list[int]:
        return [c for c in row_essential if c not in kinds and (scope is None or c in scope)]

    plans = await learning_plans(
        session, {row.id: missing(row.essential) for row in rows}, language=language
    )
    occupations = [occupation_ref(row) for row in rows]
    reluctant = {c for c, want in career.preferences.stances.items() if want is Want.RATHER_NOT}
    strengths = {
        row.id: [
            c for c in row.essential if kinds.get(c) in (VERIFIED, DECLARED) and c not in reluctant
        ]
        for row in rows
    }
    lights = await load_lights(
        session,
        holdings=holdings,
        occupations=occupations,
        competence_ids={c for ids in strengths.values() for c in ids},
        region=region,
        stale_before=clock.add_years(clock.today(), -stale_after_years),
    )
    goals = career.preferences.goals
    refs = lights.refs  # every essential competence of every path

    def listed(ids: Sequence[int]) -> list[CompetenceRef]:
        return [refs[c] for c in ids if c in refs]

    paths = []
    for rank, (row, occupation) in enumerate(zip(rows, occupations, strict=True), start=1):
        essential = row.essential
        paths.append(
            CareerPath(
                rank=rank,
                occupation=occupation,
                score=row.score,
                essential_total=row.essential_total,
                verified=row.verified,
                declared=row.declared,
                suggested=listed([c for c in essential if kinds.get(c) == SUGGESTED]),
                strengths=listed(strengths[row.id]),
                rather_not=listed(
                    [
                        c
                        for c in essential
                        if c in reluctant and kinds.get(c) in (VERIFIED, DECLARED)
                    ]
                ),
                missing=listed(missing(essential)),
                not_shared=sum(
                    1 for c in essential if c not in kinds and scope is not None and c not in scope
                ),
                transferable=listed([c for c in essential if c in transferable]),
                is_goal=occupation.id in goals,
                learning_plan=plans[row.id],
                lights=lights.occupation(occupation, stale_matters=occupation.id in goals)
                + lights.competences(strengths[row.id]),
            )
        )
    return CareerPaths(True, held_occupations, paths, lights.status)


class AcceptInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    competence_uris: list[ConceptUri] = Field(min_length=1, max_length=200)
    language: Literal["nl", "en"] = "nl"


def _declaration(suggestion: Suggestion, language: str) -> dict[str, Any]:
    """What accepting a suggestion declares: since the first occupation that asks it began,
    last used when the last one ended (today while one is ongoing), learnt at work."""
    occupation = suggestion.occupations[0]
    label, _ = pick_label(occupation.preferred_labels, language)
    years = f"{suggestion.since.year}\u2013{suggestion.until.year if suggestion.until else ''}"
    context, _ = Text("suggestion.context", {"occupation": label, "years": years}).render(language)
    return {
        "competence_uri": suggestion.competence.uri,
        "acquired_on": suggestion.since,
        "last_used_on": suggestion.until or clock.today(),
        "learning_context": LearningContext.INFORMAL.value,
        "context": context,
    }


async def accept_suggestions(
    session: AsyncSession, principal: Principal, hmac_key: bytes, data: Mapping[str, Any]
) -> list[IssueOutcome]:
    """Self-declare suggested competences, all or none, in one call; never verified. A retry
    answers with what the first call declared (``created`` false)."""
    spec = validate(AcceptInput, data)
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    claims = await load_claims(session, Claim.citizen_id == citizen_id) if citizen_id else []
    current = [c for c in claims if c.status is ClaimStatus.ACTIVE]
    verified = {c.competence.id: c.most_recent_use for c in current if not c.self_declared}
    declared = {c.competence.id: c for c in current if c.self_declared}
    history = await load_history(session, citizen_id) if citizen_id else []
    # Suggested once verified ones are set aside: an accepted one is still "suggested" here,
    # so that a retry finds it and answers with it.
    offered = {
        s.competence.uri: s
        for s in await suggestions(session, history, Holdings(verified, frozenset()))
    }
    wanted = []
    for index, uri in enumerate(spec.competence_uris):
        field = f"input.competenceUris.{index}"
        if uri not in offered:
            raise ValidationFailed.one(
                field, "not suggested by your work history (or already verified)", "not_suggested"
            )
        declaration = _declaration(offered[uri], spec.language)
        earlier = declared.get(offered[uri].competence.id)
        if earlier is not None:
            ref = self_declaration_ref(validate(SelfDeclarationInput, declaration, prefix=field))
            if earlier.external_ref.rsplit(":", 1)[-1] != ref.rsplit(":", 1)[-1]:
                raise ValidationFailed.one(
                    field, "already self-declared in your own words", "already_declared"
                )
        wanted.append(declaration)
    return [await declare_self(session, principal, hmac_key, d) for d in wanted]
