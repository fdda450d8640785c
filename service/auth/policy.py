"""The authorization rules, in one place; domain functions call these before touching data."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from service.auth.principal import Principal
from service.errors import NotAuthorized
from service.models.enums import Scope


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise NotAuthorized("this operation needs the admin scope")


def require_issuer(principal: Principal) -> uuid.UUID:
    """A partner client writing claims; returns its organisation (never taken from input)."""
    if not principal.has(Scope.CLAIMS_WRITE) or principal.organisation_id is None:
        raise NotAuthorized("this operation needs the claims:write scope")
    return principal.organisation_id


def require_reader(principal: Principal) -> uuid.UUID:
    if not principal.has(Scope.PASSPORTS_READ) or principal.organisation_id is None:
        raise NotAuthorized("this operation needs the passports:read scope")
    return principal.organisation_id


def require_endorser(principal: Principal) -> uuid.UUID:
    """A client endorsing other organisations' claims, as its own organisation only."""
    if not principal.has(Scope.CLAIMS_ENDORSE) or principal.organisation_id is None:
        raise NotAuthorized("this operation needs the claims:endorse scope")
    return principal.organisation_id


ORGANISATION_SCOPES = (Scope.CLAIMS_WRITE, Scope.PASSPORTS_READ, Scope.CLAIMS_ENDORSE)


def require_organisation(principal: Principal) -> uuid.UUID:
    """Any organisation's client, writer, reader or endorser: e.g. to hear of its claims,
    endorsements or grants, or to manage its team checks and profiles."""
    if principal.organisation_id is None or not any(map(principal.has, ORGANISATION_SCOPES)):
        raise NotAuthorized("this operation needs an organisation's client")
    return principal.organisation_id


def require_citizen(principal: Principal) -> str:
    """The signed-in citizen acting for themselves; returns their national number."""
    if not principal.is_citizen or principal.insz is None:
        raise NotAuthorized("only a citizen can do this, for themselves")
    return principal.insz


def may_hold_legal_basis(organisation_kind: str | None, allowed: Iterable[str]) -> bool:
    """Reading without consent is for the organisations the law names (settings)."""
    return organisation_kind is not None and organisation_kind in set(allowed)
