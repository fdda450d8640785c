"""Closed vocabularies of the domain; the database enforces them with CHECK constraints."""

from __future__ import annotations

from enum import StrEnum


class OrganisationKind(StrEnum):
    EDUCATION_PROVIDER = "education_provider"
    PUBLIC_EMPLOYMENT_SERVICE = "public_employment_service"
    EMPLOYER = "employer"
    VOLUNTEER_ORGANISATION = "volunteer_organisation"
    RECOGNITION_CENTRE = "recognition_centre"
    CAREER_GUIDANCE = "career_guidance"
    SECTOR_FUND = "sector_fund"
    GOVERNMENT_SERVICE = "government_service"


class OrganisationStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class ClientStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


class Scope(StrEnum):
    CLAIMS_WRITE = "claims:write"
    PASSPORTS_READ = "passports:read"
    CLAIMS_ENDORSE = "claims:endorse"  # endorse other organisations' claims
    ADMIN = "admin"


class AssessmentMethod(StrEnum):
    EXAM = "exam"
    PRACTICAL_ASSESSMENT = "practical_assessment"
    WORKPLACE_OBSERVATION = "workplace_observation"
    PORTFOLIO_REVIEW = "portfolio_review"
    PRIOR_LEARNING_RECOGNITION = "prior_learning_recognition"
    PEER_FEEDBACK = "peer_feedback"
    SELF_ASSESSMENT = "self_assessment"


class LearningContext(StrEnum):
    FORMAL = "formal"
    NON_FORMAL = "non_formal"
    INFORMAL = "informal"


class ProficiencyScale(StrEnum):
    EQF = "eqf"  # levels 1-8 of the European Qualifications Framework
    CEFR = "cefr"  # A1-C2, for language skills
    DESCRIPTIVE = "descriptive"  # basic, intermediate, advanced, expert


class EvidenceKind(StrEnum):
    CERTIFICATE = "certificate"
    DIPLOMA = "diploma"
    ASSESSMENT_REPORT = "assessment_report"
    WORK_SAMPLE = "work_sample"
    REFERENCE = "reference"
    OBSERVATION_NOTE = "observation_note"
    OTHER = "other"


class ClaimStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"


class EventType(StrEnum):
    CLAIM_ISSUED = "claim.issued"
    CLAIM_REVOKED = "claim.revoked"
    CLAIM_SUPERSEDED = "claim.superseded"
    CLAIM_SELF_DECLARED = "claim.self_declared"
    CLAIM_WITHDRAWN = "claim.withdrawn"  # a self-declaration the citizen took back
    GRANT_CREATED = "grant.created"
    GRANT_REVOKED = "grant.revoked"
    WANT_SET = "career.want_set"  # a stance on a competence set, changed or cleared
    GOAL_SET = "career.goal_set"  # a career goal named, changed or dropped
    WORK_RECORDED = "career.work_recorded"  # an occupation held, by the citizen or an employer
    WORK_WITHDRAWN = "career.work_withdrawn"  # taken back by whoever recorded it
    ENDORSEMENT_CREATED = "endorsement.created"
    ENDORSEMENT_REVOKED = "endorsement.revoked"
    ENDORSEMENT_HIDDEN = "endorsement.hidden"  # the citizen hid it from readers
    ENDORSEMENT_SHOWN = "endorsement.shown"  # ... and showed it again


class WebhookEventType(StrEnum):
    """What an organisation can hear of: its own claims and endorsements, and grants made to
    it (team-check consents among them)."""

    CLAIM_ISSUED = EventType.CLAIM_ISSUED.value
    CLAIM_REVOKED = EventType.CLAIM_REVOKED.value
    CLAIM_SUPERSEDED = EventType.CLAIM_SUPERSEDED.value
    GRANT_CREATED = EventType.GRANT_CREATED.value
    GRANT_REVOKED = EventType.GRANT_REVOKED.value
    ENDORSEMENT_CREATED = EventType.ENDORSEMENT_CREATED.value
    ENDORSEMENT_REVOKED = EventType.ENDORSEMENT_REVOKED.value


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last retry


class AccessBasis(StrEnum):
    SELF = "self"
    LEGAL_BASIS = "legal_basis"
    CONSENT = "consent"  # a grant to the reader's organisation
    LINK = "link"  # a share link's grant
    EXPORT = "export"  # the citizen exported it: whoever holds the export may check it


class SkillType(StrEnum):
    KNOWLEDGE = "knowledge"
    SKILL_COMPETENCE = "skill_competence"


class ReuseLevel(StrEnum):
    TRANSVERSAL = "transversal"
    CROSS_SECTOR = "cross_sector"
    SECTOR_SPECIFIC = "sector_specific"
    OCCUPATION_SPECIFIC = "occupation_specific"


class SkillCollection(StrEnum):
    TRANSVERSAL = "transversal"
    DIGITAL = "digital"
    GREEN = "green"
    LANGUAGE = "language"
    RESEARCH = "research"
    DIGCOMP = "digcomp"


class PrincipalKind(StrEnum):
    PARTNER = "partner"
    READER = "reader"
    CITIZEN = "citizen"
    ADMIN = "admin"
    LINK = "link"  # whoever holds a citizen's share link
    VERIFIER = "verifier"  # anyone checking an exported credential; no account needed


class LearningMode(StrEnum):
    IN_PERSON = "in_person"
    ONLINE = "online"
    BLENDED = "blended"


class OpportunityStatus(StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class RequirementStatus(StrEnum):
    """How a citizen stands against one competence an occupation asks for."""

    HELD = "held"  # verified, and used recently
    STALE = "stale"  # verified, but not used for longer than the stale threshold
    PARTIAL = "partial"  # a narrower competence in the ESCO hierarchy is verified
    SELF_DECLARED = "self_declared"  # only the citizen says so
    NOT_SHARED = "not_shared"  # outside what the reader's grants show: unknown, not missing
    MISSING = "missing"


class Want(StrEnum):
    """What the citizen wants of a competence ("kunnen en willen")."""

    USE_MORE = "use_more"
    DEVELOP = "develop"
    RATHER_NOT = "rather_not"  # would rather not use it any more


class SignalKind(StrEnum):
    """What a labour-market signal says of an occupation or a competence."""

    SHORTAGE = "shortage"  # a shortage occupation (knelpuntberoep) or scarce competence
    RISING_DEMAND = "rising_demand"
    FALLING_DEMAND = "falling_demand"


class SignalImportStatus(StrEnum):
    COMPLETE = "complete"  # its signals are the current ones of its sources
    REPLACED = "replaced"  # a later import of the same sources took its place


class LightKind(StrEnum):
    """A warning light (or a good sign) on an occupation or a held competence."""

    OCCUPATION_SHORTAGE = "occupation_shortage"
    OCCUPATION_RISING = "occupation_rising"
    OCCUPATION_FALLING = "occupation_falling"
    COMPETENCE_SHORTAGE = "competence_shortage"
    COMPETENCE_RISING = "competence_rising"
    COMPETENCE_FALLING = "competence_falling"
    DIGITAL_GAP = "digital_gap"
    GREEN_GAP = "green_gap"
    STALE_FOR_GOAL = "stale_for_goal"


class LightColor(StrEnum):
    GREEN = "green"  # a good sign
    AMBER = "amber"  # worth attention
    RED = "red"  # a risk


class LightSourceKind(StrEnum):
    SIGNAL = "signal"  # an imported labour-market signal
    ESCO = "esco"  # one of ESCO's skill collections (twin transition)
    PASSPORT = "passport"  # the passport's own dates


class RankFactorKind(StrEnum):
    """Why an occupation stands where it does: its fit, and what the citizen wants."""

    FIT = "fit"
    USE_MORE = "use_more"
    DEVELOP = "develop"
    RATHER_NOT = "rather_not"
    GOAL = "goal"


class HolderKind(StrEnum):
    """Who said the citizen held an occupation."""

    CITIZEN = "citizen"
    ORGANISATION = "organisation"


class PlanStepKind(StrEnum):
    RECONSIDER = "reconsider"  # the goal relies on a competence the citizen would rather not use
    MARKET = "market"  # what the labour market says of the goal
    REFRESH = "refresh"  # a required competence not used for long
    VERIFY = "verify"  # held by the citizen's own word only: have it assessed
    LEARN = "learn"  # a learning offer that closes gaps
    FIND_LEARNING = "find_learning"  # gaps no published offer closes


class GranteeKind(StrEnum):
    ORGANISATION = "organisation"
    LINK = "link"


class GrantStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class TeamDisclosure(StrEnum):
    """What a citizen lets their employer see in a team competence check."""

    NAMED = "named"  # their own result, under their passport id
    COUNTED = "counted"  # only their part in the team's numbers


class TeamCheckStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # takes no new consents and is left out of checks


class TeamRequirementStatus(StrEnum):
    """How one person stands against one competence of a team check."""

    HELD = "held"  # verified, used recently, at the minimum level if one is asked
    STALE = "stale"  # verified at the level, but not used for longer than the threshold
    BELOW_LEVEL = "below_level"  # verified, below the profile's minimum (or no level stated)
    SELF_DECLARED = "self_declared"  # only the person says so
    NOT_SHARED = "not_shared"  # outside the competences they chose to share
    MISSING = "missing"


class EndorsementStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"  # by the endorser


def check_in(column: str, enum: type[StrEnum]) -> str:
    """SQL for a CHECK constraint that pins a text column to an enum's values."""
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"
