"""Read model of endorsements: what a claim's endorsements look like, and who sees which.

A claim's endorsements are read with the claim, in the claims' own statement
(``endorsements_column``: one JSON array per claim), so a passport read costs no extra
statement. The rule of who sees which lives here, once: the citizen sees every endorsement
of their claims, hidden and revoked ones too; everyone else sees only those in force that
the citizen did not hide.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ScalarSelect, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import aliased

from service.models import ApiClient, ClaimEndorsement, Organisation
from service.models.enums import EndorsementStatus

if TYPE_CHECKING:  # claims' read model reads endorsements with the claims: no import cycle
    from service.claims.views import ClaimView


@dataclass(frozen=True)
class EndorserView:
    id: uuid.UUID
    name: str
    kind: str
    client_id: str  # the endorsing organisation's system that wrote it


@dataclass(frozen=True)
class EndorsementView:
    endorsement_id: uuid.UUID
    claim_id: uuid.UUID
    endorser: EndorserView
    endorser_role: str | None
    statement: str
    endorsed_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    hidden_at: datetime | None

    @property
    def status(self) -> EndorsementStatus:
        return EndorsementStatus.ACTIVE if self.revoked_at is None else EndorsementStatus.REVOKED

    @property
    def hidden(self) -> bool:
        return self.hidden_at is not None

    @property
    def shown_to_readers(self) -> bool:
        """In force and not hidden by the citizen: what anyone but the citizen may see."""
        return self.revoked_at is None and self.hidden_at is None


def visible(
    endorsements: Iterable[EndorsementView], *, to_citizen: bool
) -> tuple[EndorsementView, ...]:
    """What a viewer of a claim sees of its endorsements (the citizen: all of them)."""
    if to_citizen:
        return tuple(endorsements)
    return tuple(e for e in endorsements if e.shown_to_readers)


def for_readers(claim: ClaimView) -> ClaimView:
    """The claim as anyone but its citizen may see it (itself, when nothing is left out)."""
    shown = visible(claim.endorsements, to_citizen=False)
    return claim if len(shown) == len(claim.endorsements) else replace(claim, endorsements=shown)


def endorsements_column(citizen_id: Any, claim_id: Any) -> ScalarSelect[Any]:
    """A claim's endorsements as one JSON array (null when it has none), oldest first."""
    e = ClaimEndorsement
    org = aliased(Organisation, name="endorser")
    client = aliased(ApiClient, name="endorser_client")
    fields = {
        "id": e.endorsement_id,
        "organisationId": e.organisation_id,
        "name": org.name,
        "kind": org.kind,
        "clientId": client.client_id,
        "role": e.endorser_role,
        "statement": e.statement,
        "endorsedAt": e.endorsed_at,
        "revokedAt": e.revoked_at,
        "reason": e.revocation_reason,
        "hiddenAt": e.hidden_at,
    }
    # The keys as SQL literals, not parameters: the statement is compiled once and run as is.
    parts: list[Any] = []
    for key, value in fields.items():
        parts += [literal_column(f"'{key}'"), value]
    item = func.json_build_object(*parts)
    found: ScalarSelect[Any] = (
        select(func.json_agg(aggregate_order_by(item, e.endorsed_at, e.endorsement_id), type_=JSON))
        .select_from(e)
        .join(org, org.id == e.organisation_id)
        .join(client, client.id == e.client_id)
        .where(e.citizen_id == citizen_id, e.claim_id == claim_id)
        .scalar_subquery()
    )
    return found


def _instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def parse(
    claim_id: uuid.UUID, items: Iterable[Mapping[str, Any]] | None
) -> tuple[EndorsementView, ...]:
    """The JSON of ``endorsements_column`` as views."""
    return tuple(
        EndorsementView(
            endorsement_id=uuid.UUID(item["id"]),
            claim_id=claim_id,
            endorser=EndorserView(
                uuid.UUID(item["organisationId"]), item["name"], item["kind"], item["clientId"]
            ),
            endorser_role=item["role"],
            statement=item["statement"],
            endorsed_at=datetime.fromisoformat(item["endorsedAt"]),
            revoked_at=_instant(item["revokedAt"]),
            revocation_reason=item["reason"],
            hidden_at=_instant(item["hiddenAt"]),
        )
        for item in items or ()
    )
