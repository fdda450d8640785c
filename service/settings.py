"""All configuration in one pydantic-settings class (environment prefix ``PASSPORT_``)."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PASSPORT_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    # Empty means "start an embedded PostgreSQL in data_dir" (development only).
    database_url: str | None = None
    data_dir: Path = Path(".passport")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_base_url: str | None = None

    # Keyed hash of national numbers. In development a random key is kept in data_dir.
    insz_hmac_key: SecretStr | None = None

    # Production identity provider: issuer, audience and algorithms are pinned.
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_audience: str = "competence-passport"
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    oidc_jwks_min_refresh_seconds: float = Field(default=60.0, ge=1.0)
    # RFC 9068 access tokens; widen only if the identity provider cannot set ``typ``.
    oidc_token_types: list[str] = Field(default_factory=lambda: ["at+jwt", "application/at+jwt"])
    citizen_id_claim: str = "sub"
    # Development tokens minted by `passport token`, accepted only outside production.
    dev_token_issuer: str = "urn:competence-passport:dev"  # noqa: S105 - an issuer, no secret

    # GraphQL defence in depth.
    graphql_max_depth: int = Field(default=12, ge=2, le=50)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_tokens: int = Field(default=2000, ge=50)
    graphql_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    graphql_dev_tools: bool = False  # GraphiQL, GET queries, introspection
    max_page_size: int = Field(default=100, ge=1, le=1000)

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            missing = [
                name
                for name, value in (
                    ("PASSPORT_DATABASE_URL", self.database_url),
                    ("PASSPORT_INSZ_HMAC_KEY", self.insz_hmac_key),
                    ("PASSPORT_OIDC_ISSUER", self.oidc_issuer),
                    ("PASSPORT_OIDC_JWKS_URL", self.oidc_jwks_url),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"production needs {', '.join(missing)}")
            key = self.insz_hmac_key
            if key is not None and len(key.get_secret_value()) < 32:
                raise ValueError("PASSPORT_INSZ_HMAC_KEY must be at least 32 characters")
            if self.graphql_dev_tools:
                raise ValueError("PASSPORT_GRAPHQL_DEV_TOOLS must be off in production")
        return self

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    def hmac_key(self) -> bytes:
        """The INSZ hashing key; in development one is generated once and kept in data_dir."""
        if self.insz_hmac_key is not None:
            return self.insz_hmac_key.get_secret_value().encode()
        path = self.data_dir / "insz-hmac.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip().encode()


@lru_cache
def get_settings() -> Settings:
    return Settings()
