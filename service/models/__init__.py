"""All ORM models, imported here so ``Base.metadata`` knows every table."""

from service.models.access import AccessRecord
from service.models.base import Base
from service.models.career import (
    CareerGoal,
    CompetenceWant,
    LabourMarketSignal,
    SignalImport,
    WorkExperience,
    WorkExperienceRef,
)
from service.models.citizen import Citizen, CitizenIdentity, CitizenSettings
from service.models.claim import Claim, ClaimRef, ClaimRevocation
from service.models.consent import AccessGrant, ShareLink
from service.models.credential import (
    CredentialExport,
    CredentialExportEntry,
    CredentialExportRevocation,
    StatusList,
    StatusListEntry,
)
from service.models.endorsement import (
    ClaimEndorsement,
    CredentialExportEndorsement,
    EndorsementRef,
)
from service.models.erasure import Erasure, RetainedAccessRecord
from service.models.event import CitizenEvent
from service.models.learning import LearningOpportunity
from service.models.organisation import ApiClient, LegalBasis, Organisation
from service.models.taxonomy import (
    Competence,
    CompetenceBroader,
    CompetenceCollection,
    CompetenceLabel,
    IscoGroup,
    Occupation,
    OccupationCompetence,
    OccupationLabel,
    TaxonomyImport,
)
from service.models.team import CompetenceProfile, TeamCheck
from service.models.upload import BulkUpload
from service.models.wallet import (
    CredentialOffer,
    CredentialOfferCode,
    WalletAccessToken,
    WalletNonce,
)
from service.models.webhook import WebhookDelivery, WebhookSubscription

__all__ = [
    "AccessGrant",
    "AccessRecord",
    "ApiClient",
    "Base",
    "BulkUpload",
    "CareerGoal",
    "Citizen",
    "CitizenEvent",
    "CitizenIdentity",
    "CitizenSettings",
    "Claim",
    "ClaimEndorsement",
    "ClaimRef",
    "ClaimRevocation",
    "Competence",
    "CompetenceBroader",
    "CompetenceCollection",
    "CompetenceLabel",
    "CompetenceProfile",
    "CompetenceWant",
    "CredentialExport",
    "CredentialExportEndorsement",
    "CredentialExportEntry",
    "CredentialExportRevocation",
    "CredentialOffer",
    "CredentialOfferCode",
    "EndorsementRef",
    "Erasure",
    "IscoGroup",
    "LabourMarketSignal",
    "LearningOpportunity",
    "LegalBasis",
    "Occupation",
    "OccupationCompetence",
    "OccupationLabel",
    "Organisation",
    "RetainedAccessRecord",
    "ShareLink",
    "SignalImport",
    "StatusList",
    "StatusListEntry",
    "TaxonomyImport",
    "TeamCheck",
    "WalletAccessToken",
    "WalletNonce",
    "WebhookDelivery",
    "WebhookSubscription",
    "WorkExperience",
    "WorkExperienceRef",
]
