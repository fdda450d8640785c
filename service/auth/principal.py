"""Who is calling, as the rest of the service sees it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from service.models.enums import PrincipalKind, Scope

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    # For clients the OAuth client_id, for admins the token subject, for citizens "citizen":
    # the national number never leaves `insz` and is excluded from repr so it cannot be logged.
    subject: str
    scopes: frozenset[str] = frozenset()
    client_pk: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    organisation_kind: str | None = None
    insz: str | None = field(default=None, repr=False)
    # The citizen's name as the identity provider states it (OIDC ``name``), only to print on
    # their own exports: never stored, never logged.
    display_name: str | None = field(default=None, repr=False)
    # A share-link holder reads one citizen's passport under one grant, and nothing else.
    grant_id: uuid.UUID | None = None
    citizen_id: uuid.UUID | None = None

    def has(self, scope: Scope) -> bool:
        return scope.value in self.scopes

    @property
    def is_citizen(self) -> bool:
        return self.kind is PrincipalKind.CITIZEN and self.insz is not None

    @property
    def is_link(self) -> bool:
        return self.kind is PrincipalKind.LINK and self.grant_id is not None

    @property
    def is_admin(self) -> bool:
        return self.has(Scope.ADMIN)


# Who a verified token speaks for, once the database is asked (the client registry, a share link).
Lookup = Callable[["AsyncSession"], Awaitable[Principal]]
