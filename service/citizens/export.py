"""The right of access and to portability (GDPR art. 15 and 20): everything held about the
citizen, as one JSON document: claims with their provenance, the event chain, grants, the
whole access log, and their wants, career goals and work history. It is a read of the
passport, so it is itself recorded in that log.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service import clock
from service.auth.principal import Principal
from service.career.profile import export_career
from service.citizens.service import export_name, own_citizen_id, share_citizen_lock
from service.claims.views import ClaimView, load_claims
from service.consent.service import GrantView, citizen_grants
from service.credentials.exports import ExportSummary, exports_of
from service.endorsements.views import EndorsementView
from service.models import CitizenEvent, Claim, CredentialOffer
from service.models.enums import AccessBasis
from service.passports.access_log import AccessLogEntry, load_access_log
from service.passports.service import Passport, aggregate, record_access
from service.taxonomy.search import CompetenceRef, competences_by_id

EXPORT_FORMAT = "competence-passport-export/1"


def competence_document(ref: CompetenceRef) -> dict[str, Any]:
    return {"uri": ref.uri, "labels": ref.preferred_labels, "skillType": ref.skill_type}


def claim_document(claim: ClaimView) -> dict[str, Any]:
    """A claim with its whole provenance, in the API's own (camelCase) names."""
    issuer = claim.issuer
    return {
        "id": str(claim.claim_id),
        "competence": competence_document(claim.competence),
        "selfDeclared": claim.self_declared,
        "issuer": None
        if issuer is None
        else {
            "organisationId": str(issuer.id),
            "name": issuer.name,
            "kind": issuer.kind,
            "clientId": issuer.client_id,
            "role": claim.issuer_role,
        },
        "externalRef": None if claim.self_declared else claim.external_ref,
        "proficiency": None
        if claim.proficiency_scale is None
        else {"scale": claim.proficiency_scale, "level": claim.proficiency_level},
        "context": claim.context,
        "assessmentMethod": claim.assessment_method,
        "learningContext": claim.learning_context,
        "evidence": claim.evidence,
        "acquiredOn": claim.acquired_on.isoformat(),
        "lastUsedOn": claim.last_used_on.isoformat() if claim.last_used_on else None,
        "validUntil": claim.valid_until.isoformat() if claim.valid_until else None,
        "recordedAt": claim.recorded_at.isoformat(),
        "status": claim.status.value,
        "supersedes": str(claim.supersedes_claim_id) if claim.supersedes_claim_id else None,
        "supersededBy": str(claim.superseded_by_claim_id) if claim.superseded_by_claim_id else None,
        "revocation": None
        if claim.revoked_at is None
        else {"reason": claim.revocation_reason, "revokedAt": claim.revoked_at.isoformat()},
        "endorsements": [_endorsement_document(e) for e in claim.endorsements],
    }


def _endorsement_document(endorsement: EndorsementView) -> dict[str, Any]:
    """Every endorsement of the citizen's claims, hidden and revoked ones too."""
    endorser = endorsement.endorser
    return {
        "id": str(endorsement.endorsement_id),
        "endorser": {
            "organisationId": str(endorser.id),
            "name": endorser.name,
            "kind": endorser.kind,
            "clientId": endorser.client_id,
            "role": endorsement.endorser_role,
        },
        "statement": endorsement.statement,
        "endorsedAt": endorsement.endorsed_at.isoformat(),
        "status": endorsement.status.value,
        "revocation": None
        if endorsement.revoked_at is None
        else {
            "reason": endorsement.revocation_reason,
            "revokedAt": endorsement.revoked_at.isoformat(),
        },
        "hiddenAt": endorsement.hidden_at.isoformat() if endorsement.hidden_at else None,
    }


def _grant_document(grant: GrantView) -> dict[str, Any]:
    org = grant.organisation
    return {
        "id": str(grant.grant_id),
        "granteeKind": grant.grantee_kind.value,
        "organisation": None
        if org is None
        else {
            "id": str(org.id),
            "name": org.name,
            "kind": org.kind,
            "enterpriseNumber": org.enterprise_number,
        },
        "purpose": grant.purpose,
        "competences": None
        if grant.competences is None
        else [competence_document(ref) for ref in grant.competences],
        "createdAt": grant.created_at.isoformat(),
        "expiresAt": grant.expires_at.isoformat(),
        "revokedAt": grant.revoked_at.isoformat() if grant.revoked_at else None,
        "status": grant.status.value,
        "includeWants": grant.include_wants,
        "includeWorkHistory": grant.include_work_history,
        "teamCheck": None
        if grant.team_check is None
        else {"id": str(grant.team_check.id), "name": grant.team_check.name},
        "disclosure": grant.disclosure.value if grant.disclosure else None,
    }


def _access_document(entry: AccessLogEntry) -> dict[str, Any]:
    org = entry.organisation
    return {
        "id": str(entry.id),
        "accessedAt": entry.accessed_at.isoformat(),
        "principalKind": entry.principal_kind.value,
        "clientId": entry.client_id,
        "organisation": None
        if org is None
        else {"id": str(org.id), "name": org.name, "kind": org.kind},
        "basis": entry.basis.value,
        "legalBasis": None
        if entry.legal_basis is None
        else {"code": entry.legal_basis.code, "reference": entry.legal_basis.reference},
        "grants": [{"id": str(g.grant_id), "purpose": g.purpose} for g in entry.grants],
        "purpose": entry.purpose,
        "operation": entry.operation,
        "competences": [competence_document(ref) for ref in entry.competences],
    }


def _export_document(export: ExportSummary) -> dict[str, Any]:
    return {
        "id": str(export.export_id),
        "createdAt": export.created_at.isoformat(),
        "validUntil": export.valid_until.isoformat(),
        "basis": export.basis.value,
        "language": export.language.value,
        "credentials": export.credentials,
        "revokedAt": export.revoked_at.isoformat() if export.revoked_at else None,
        "format": export.format.value,
        "offerId": str(export.offer_id) if export.offer_id else None,
    }


def _offer_document(offer: CredentialOffer, refs: dict[int, CompetenceRef]) -> dict[str, Any]:
    """An offer to the citizen's wallet: when, for what, and whether a wallet took it (its
    secrets exist only as hashes, and are not part of it)."""
    return {
        "id": str(offer.offer_id),
        "createdAt": offer.created_at.isoformat(),
        "expiresAt": offer.expires_at.isoformat(),
        "language": offer.language,
        "competences": None
        if offer.competence_ids is None
        else [competence_document(refs[i]) for i in offer.competence_ids if i in refs],
        "wrongTxCodes": offer.tx_code_failures,
        "redeemedAt": offer.redeemed_at.isoformat() if offer.redeemed_at else None,
    }


async def export_data(
    session: AsyncSession, principal: Principal, hmac_key: bytes
) -> dict[str, Any]:
    citizen_id = await own_citizen_id(session, principal, hmac_key)
    exported_at = clock.now()
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exportedAt": exported_at.isoformat(),
        "citizenId": str(citizen_id) if citizen_id else None,
        "claims": [],
        "events": [],
        "grants": [],
        "accessLog": [],
        "exportName": None,
        "credentialExports": [],
        "credentialOffers": [],
        "wants": [],
        "careerGoals": [],
        "workHistory": [],
    }
    if citizen_id is None:
        return document
    # No write to this citizen can commit while the export reads, so its parts agree.
    await share_citizen_lock(session, citizen_id)
    claims = await load_claims(session, Claim.citizen_id == citizen_id)
    events = await session.scalars(
        select(CitizenEvent).where(CitizenEvent.citizen_id == citizen_id).order_by(CitizenEvent.seq)
    )
    document["claims"] = [claim_document(claim) for claim in claims]
    document["events"] = [
        {
            "seq": event.seq,
            "id": str(event.event_id),
            "type": event.event_type,
            "occurredAt": event.occurred_at.isoformat(),
            "payload": event.payload,
            "prevHash": event.prev_hash.hex(),
            "hash": event.hash.hex(),
        }
        for event in events
    ]
    document["grants"] = [
        _grant_document(grant) for grant in await citizen_grants(session, principal, hmac_key)
    ]
    document["exportName"] = await export_name(session, citizen_id)
    document["credentialExports"] = [
        _export_document(summary) for summary in await exports_of(session, citizen_id)
    ]
    offers = list(
        await session.scalars(
            select(CredentialOffer)
            .where(CredentialOffer.citizen_id == citizen_id)
            .order_by(CredentialOffer.created_at)
        )
    )
    wanted = sorted({i for offer in offers for i in offer.competence_ids or ()})
    refs = await competences_by_id(session, wanted) if wanted else {}
    document["credentialOffers"] = [_offer_document(offer, refs) for offer in offers]
    document.update(await export_career(session, citizen_id))
    log = await load_access_log(session, citizen_id, first=None, after=None)
    document["accessLog"] = [_access_document(entry) for entry in log.items]
    verified = [claim for claim in claims if not claim.self_declared]
    declared = [claim for claim in claims if claim.self_declared]
    read = Passport(citizen_id, aggregate(verified), declared, exported_at, AccessBasis.SELF)
    await record_access(session, principal, read, operation="export")
    return document
