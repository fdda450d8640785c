"""The service's own sentences (rank reasons, warning lights, plan steps) in Dutch and English.

No ESCO label is ever put inside a sentence: each sentence is wholly in one language, and the
answer names the competences and occupations it is about beside it, each with labels of its
own. So every text can say truthfully which language it is in. Source names (an operator's
"VDAB knelpuntberoepen 2025") are proper names and stay as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

LANGUAGES = ("nl", "en")
FALLBACK = "en"

CATALOGUE: Mapping[str, Mapping[str, str]] = {
    # Why an occupation ranks where it does.
    "rank.fit": {
        "nl": "Past voor {percent}%: {held} van de {total} essentiële competenties staan "
        "geverifieerd in het paspoort.",
        "en": "Fits {percent}%: {held} of the {total} essential competences are verified in "
        "the passport.",
    },
    "rank.use_more": {
        "nl": "Vraagt {count} competentie(s) die je meer wilt gebruiken.",
        "en": "Asks for {count} competence(s) you want to use more.",
    },
    "rank.develop": {
        "nl": "Laat je {count} competentie(s) ontwikkelen die je wilt ontwikkelen.",
        "en": "Lets you develop {count} competence(s) you want to develop.",
    },
    "rank.rather_not": {
        "nl": "Steunt op {count} competentie(s) die je liever niet meer gebruikt.",
        "en": "Relies on {count} competence(s) you would rather not use any more.",
    },
    "rank.goal": {
        "nl": "Is een van je loopbaandoelen.",
        "en": "Is one of your career goals.",
    },
    "rank.goal_by": {
        "nl": "Is een van je loopbaandoelen, tegen {year}.",
        "en": "Is one of your career goals, by {year}.",
    },
    # Whether wants shaped the answer.
    "wants.applied": {
        "nl": "De rangschikking houdt rekening met {wants} voorkeur(en) voor competenties en "
        "{goals} loopbaandoel(en).",
        "en": "The ranking takes {wants} want(s) about competences and {goals} career goal(s) "
        "into account.",
    },
    "wants.none": {
        "nl": "Er zijn geen voorkeuren of loopbaandoelen opgegeven: de rangschikking volgt "
        "enkel de match.",
        "en": "No wants or career goals are recorded: the ranking follows the fit alone.",
    },
    "wants.not_shared": {
        "nl": "Wat de burger wil, is niet met jou gedeeld: de rangschikking volgt enkel de match.",
        "en": "What the citizen wants is not shared with you: the ranking follows the fit alone.",
    },
    # Whether labour-market signals are loaded.
    "signals.loaded": {
        "nl": "Arbeidsmarktsignalen van {count} bron(nen) zijn geladen; signalen op basis van "
        "ESCO-collecties gelden daarnaast.",
        "en": "Labour-market signals from {count} source(s) are loaded; lights based on ESCO's "
        "collections apply besides.",
    },
    "signals.not_loaded": {
        "nl": "Er zijn geen arbeidsmarktprognoses geladen: enkel signalen op basis van "
        "ESCO-collecties worden getoond.",
        "en": "No labour-market forecasts are loaded: only lights based on ESCO's collections "
        "are shown.",
    },
    # Warning lights.
    "light.occupation_shortage": {
        "nl": "Knelpuntberoep volgens {source} ({region}, horizon {year}): goede vooruitzichten.",
        "en": "A shortage occupation according to {source} ({region}, horizon {year}): good "
        "prospects.",
    },
    "light.occupation_rising": {
        "nl": "De vraag naar dit beroep stijgt volgens {source} ({region}, horizon {year}).",
        "en": "Demand for this occupation is rising according to {source} ({region}, "
        "horizon {year}).",
    },
    "light.occupation_falling": {
        "nl": "Dit beroep krimpt volgens {source} ({region}, horizon {year}).",
        "en": "This occupation is shrinking according to {source} ({region}, horizon {year}).",
    },
    "light.competence_shortage": {
        "nl": "Deze competentie is schaars volgens {source} ({region}, horizon {year}).",
        "en": "This competence is scarce according to {source} ({region}, horizon {year}).",
    },
    "light.competence_rising": {
        "nl": "De vraag naar deze competentie stijgt volgens {source} ({region}, horizon {year}).",
        "en": "Demand for this competence is rising according to {source} ({region}, horizon "
        "{year}).",
    },
    "light.competence_falling": {
        "nl": "De vraag naar deze competentie daalt volgens {source} ({region}, horizon {year}).",
        "en": "Demand for this competence is falling according to {source} ({region}, horizon "
        "{year}).",
    },
    "light.digital_gap": {
        "nl": "Dit beroep vraagt {count} digitale competentie(s) (ESCO-collectie digitale "
        "vaardigheden) en het paspoort toont geen enkele geverifieerde digitale competentie.",
        "en": "This occupation asks for {count} digital competence(s) (ESCO digital skills "
        "collection) and the passport shows no verified digital competence at all.",
    },
    "light.digital_gap_shared": {
        "nl": "Dit beroep vraagt {count} digitale competentie(s) (ESCO-collectie digitale "
        "vaardigheden) en wat met jou gedeeld is, toont geen enkele geverifieerde digitale "
        "competentie.",
        "en": "This occupation asks for {count} digital competence(s) (ESCO digital skills "
        "collection) and what is shared with you shows no verified digital competence.",
    },
    "light.digital_other": {
        "nl": "Dit beroep vraagt {count} digitale competentie(s) (ESCO-collectie digitale "
        "vaardigheden) die het paspoort niet geverifieerd toont; andere digitale competenties "
        "wel.",
        "en": "This occupation asks for {count} digital competence(s) (ESCO digital skills "
        "collection) the passport does not show verified, though it shows other digital "
        "competences.",
    },
    "light.green_gap": {
        "nl": "Dit beroep vraagt {count} groene competentie(s) (ESCO-collectie groene "
        "vaardigheden, de groene transitie) die het paspoort niet geverifieerd toont.",
        "en": "This occupation asks for {count} green competence(s) (ESCO green skills "
        "collection, the green transition) the passport does not show verified.",
    },
    "light.stale_for_goal": {
        "nl": "{count} essentiële competentie(s) voor dit beroep zijn geverifieerd maar niet "
        "meer gebruikt sinds vóór {date}.",
        "en": "{count} essential competence(s) for this occupation are verified but not used "
        "since before {date}.",
    },
    # Work history and career paths.
    "suggestion": {
        "nl": "Essentiële competentie van {count} beroep(en) uit je werkervaring, nog niet in "
        "je paspoort.",
        "en": "An essential competence of {count} occupation(s) in your work history, not yet "
        "in your passport.",
    },
    "suggestion.context": {
        "nl": "Werkervaring: {occupation}, {years}",
        "en": "Work experience: {occupation}, {years}",
    },
    "paths.weights": {
        "nl": "Geverifieerde competenties tellen voor {verified}, zelf opgegeven competenties "
        "voor {declared} en voorgestelde (uit de werkervaring) voor {suggested}.",
        "en": "Verified competences count {verified}, self-declared ones {declared} and "
        "suggested ones (from the work history) {suggested}.",
    },
    "paths.found": {
        "nl": "Beroepen die essentiële competenties delen met de {count} beroep(en) uit de "
        "werkervaring, gerangschikt naar het gewogen aandeel van hun essentiële competenties "
        "dat al aanwezig is.",
        "en": "Occupations sharing essential competences with the {count} occupation(s) in the "
        "work history, ranked by the weighted share of their essential competences already "
        "held.",
    },
    "paths.no_history": {
        "nl": "Er is geen werkervaring opgegeven: loopbaanpaden vertrekken van de beroepen die "
        "iemand uitoefende.",
        "en": "No work history is recorded: career paths start from the occupations held.",
    },
    "paths.history_not_shared": {
        "nl": "De werkervaring is niet met jou gedeeld: er zijn geen loopbaanpaden te tonen.",
        "en": "The work history is not shared with you: there are no career paths to show.",
    },
    "path": {
        "nl": "{percent}% van de essentiële competenties gewogen gedekt: {verified} "
        "geverifieerd, {declared} zelf opgegeven, {suggested} voorgesteld, {missing} "
        "ontbreken.",
        "en": "{percent}% of the essential competences covered, weighted: {verified} verified, "
        "{declared} self-declared, {suggested} suggested, {missing} missing.",
    },
    # Plan steps.
    "plan.reconsider": {
        "nl": "Dit doel steunt op {count} competentie(s) die je liever niet meer gebruikt: "
        "bespreek met je loopbaanbegeleider of het doel bij je past.",
        "en": "This goal relies on {count} competence(s) you would rather not use any more: "
        "talk with your career coach about whether the goal suits you.",
    },
    "plan.refresh": {
        "nl": "{count} essentiële competentie(s) zijn geverifieerd maar niet meer gebruikt "
        "sinds vóór {date}: zet ze opnieuw in of fris ze op.",
        "en": "{count} essential competence(s) are verified but unused since before {date}: "
        "use or refresh them.",
    },
    "plan.verify": {
        "nl": "{count} essentiële competentie(s) steunen enkel op je eigen woord, een smallere "
        "competentie of je werkervaring: laat ze erkennen, bijvoorbeeld via een EVC-traject.",
        "en": "{count} essential competence(s) rest only on your own word, a narrower "
        "competence or your work history: have them assessed, for example through "
        "recognition of prior learning (EVC).",
    },
    "plan.learn": {
        "nl": "Dit aanbod sluit {count} ontbrekende essentiële competentie(s).",
        "en": "This offer closes {count} missing essential competence(s).",
    },
    "plan.learn_wanted": {
        "nl": "Dit aanbod sluit {count} ontbrekende essentiële competentie(s), waarvan "
        "{wanted} die je wilt ontwikkelen.",
        "en": "This offer closes {count} missing essential competence(s), {wanted} of which "
        "you want to develop.",
    },
    "plan.find_learning": {
        "nl": "Voor {count} ontbrekende essentiële competentie(s) is geen opleidingsaanbod "
        "gepubliceerd: zoek een opleiding of werkervaring die ze aanbrengt.",
        "en": "No learning offer is published for {count} missing essential competence(s): "
        "look for training or work that brings them.",
    },
}


@dataclass(frozen=True)
class Text:
    """A sentence of the catalogue with its values; rendered per request in a language."""

    key: str
    params: Mapping[str, str | int] = field(default_factory=dict)

    def render(self, lang: str) -> tuple[str, str]:
        """The sentence in ``lang`` (English if the catalogue lacks it), and that language."""
        templates = CATALOGUE[self.key]
        used = lang if lang in templates else FALLBACK
        return templates[used].format(**self.params), used


def percent(ratio: float) -> int:
    return round(100 * ratio)
