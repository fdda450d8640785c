"""OAuth 2.0 error responses (RFC 6749 section 5.2, RFC 6750, OpenID4VCI 1.0 sections 6.3
and 8.3.1): what the token, nonce and credential endpoints answer when they refuse."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OAuthError(Exception):
    """``error`` is the registered code a wallet acts on; ``description`` says why, in words
    that name no secret and no person."""

    error: str
    description: str
    status: int = 400

    def __post_init__(self) -> None:
        super().__init__(f"{self.error}: {self.description}")

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_token(description: str) -> OAuthError:
    """RFC 6750: a missing, unknown or expired access token at the credential endpoint."""
    return OAuthError("invalid_token", description, 401)
