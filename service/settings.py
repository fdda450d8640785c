"""All configuration in one pydantic-settings class (environment prefix ``PASSPORT_``)."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.models.enums import OrganisationKind, PrincipalKind

# What PASSPORT_OIDC_ALGORITHMS may list: never HS* or "none".
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


# Per client and minute, in cost units (service/schema/cost.py): a partner's system writes in
# bulk, a citizen's app reads a passport (about 20 units) now and then.
DEFAULT_RATE_LIMITS = {
    "partner": "6000/minute",
    "reader": "3000/minute",
    "citizen": "600/minute",
    "link": "120/minute",
    "admin": "1200/minute",
    # Per client address: recruiters checking exports (the verification page, POST /verify)
    # and fetching status lists, without an account.
    "verifier": "600/minute",
}


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PASSPORT_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    # Empty means "start an embedded PostgreSQL in data_dir" (development only).
    database_url: str | None = None
    data_dir: Path = Path(".passport")
    # The schema owner, for `passport migrate` and `passport import-esco`; defaults to
    # database_url. In production the application logs in as a role that is a member of
    # database_role only (docs/deployment.md), so it cannot change what the migrations fixed.
    migration_database_url: str | None = None
    # Every application connection runs as this role (created and granted by the migrations):
    # it may not UPDATE or DELETE claims, events or access records. Empty: use the login role.
    database_role: str = Field(default="passport_app", pattern=r"^([a-z_][a-z0-9_]{0,62})?$")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    # A pooled connection the server closed is always replaced before a request uses it, at
    # no cost (service/db/engine.py), and so is one older than db_pool_recycle_seconds. The
    # server sends TCP keepalives on idle connections every minute, so load balancers and NAT
    # (idle timeouts of 4 minutes and up) keep them; the recycle age is the backstop.
    # db_pool_pre_ping also tests each connection with a round trip first (SQLAlchemy's
    # pool_pre_ping: BEGIN, ";" and ROLLBACK on asyncpg); -1 keeps connections however old.
    db_pool_pre_ping: bool = False
    db_pool_recycle_seconds: int = Field(default=1800, ge=-1, le=86_400)
    # Verified bearer tokens kept until they expire (service/auth/tokens.py); 0: none kept.
    verified_token_cache: int = Field(default=10_000, ge=0, le=1_000_000)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # Every library's loggers (WeasyPrint, fontTools, SQLAlchemy, ...): their INFO lines are
    # chatter unless you are looking into one of them.
    library_log_level: str = Field(default="WARNING", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # On SIGTERM, in-flight requests get this long to finish (keep it below the pod's
    # terminationGracePeriodSeconds).
    shutdown_grace_seconds: int = Field(default=20, ge=1, le=600)

    # OpenTelemetry traces over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT and the other standard
    # OTEL_* variables configure the exporter).
    otel_enabled: bool = False
    otel_service_name: str = "competence-passport"

    # Keyed hash of national numbers. In development a random key is kept in data_dir.
    insz_hmac_key: SecretStr | None = None
    # Seals the webhook signing secrets at rest (service/webhooks/secrets.py), at least 32
    # characters; changing it makes every subscription's secret unreadable (create them anew).
    webhook_secrets_key: SecretStr | None = None

    # Production identity provider: issuer, audience and algorithms are pinned.
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_audience: str = "competence-passport"
    # Asymmetric only: an HMAC algorithm would let anyone holding a public key forge tokens.
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    oidc_jwks_min_refresh_seconds: float = Field(default=60.0, ge=1.0)
    # Keys are re-read after this age (or a smaller Cache-Control max-age), so a withdrawn key
    # stops working; if the identity provider cannot be reached, the old keys stay usable for at
    # most the grace period more, then every token is refused.
    oidc_jwks_max_age_seconds: float = Field(default=600.0, ge=1.0)
    oidc_jwks_stale_grace_seconds: float = Field(default=900.0, ge=0.0)
    # exp - iat of any accepted token, development tokens included.
    # Two hours admits the common providers' defaults (Entra ID issues 60-90 minute tokens).
    oidc_max_token_lifetime_seconds: int = Field(default=7200, ge=60, le=24 * 3600)
    # RFC 9068 access tokens; widen only if the identity provider cannot set ``typ``.
    oidc_token_types: list[str] = Field(default_factory=lambda: ["at+jwt", "application/at+jwt"])
    # Tokens from the citizen-facing clients or carrying the citizen scope are citizens'; this
    # claim must then hold their national number (service/auth/resolve.py).
    citizen_id_claim: str = "sub"
    citizen_client_ids: list[str] = Field(default_factory=list)
    citizen_scope: str = "passport:citizen"
    # Token subjects that are administrators (their tokens must also carry scope ``admin``).
    admin_subjects: list[str] = Field(default_factory=list)
    # Development tokens minted by `passport token`: accepted only in development and only while
    # no identity provider is configured, so a deployment that sets PASSPORT_OIDC_* but forgets
    # PASSPORT_ENVIRONMENT=production still refuses them.
    dev_token_issuer: str = "urn:competence-passport:dev"  # noqa: S105 - an issuer, no secret

    # GraphQL defence in depth.
    graphql_max_depth: int = Field(default=12, ge=2, le=50)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_tokens: int = Field(default=2000, ge=50)
    # issueClaims with 1,000 inputs in its variables is about 500 KiB.
    graphql_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # GraphiQL at GET /graphql and introspection (without a token), so a newcomer can explore
    # the API at the URL `passport serve` prints. Unset: on in development, off in production,
    # which refuses true. GET queries are never run.
    graphql_dev_tools: bool | None = None
    max_page_size: int = Field(default=100, ge=1, le=1000)
    # The most one GraphQL operation may cost (service/schema/cost.py), whoever asks, and the
    # most fields a document may have once its fragments are expanded.
    graphql_max_cost: int = Field(default=1000, ge=10)
    graphql_max_fields: int = Field(default=2000, ge=50)
    # Passport reads answered by one statement that builds their JSON in PostgreSQL
    # (service/schema/passports/compiled.py); off: every field resolved in Python. Both give
    # the same bytes; the switch is there for the tests that hold them to it.
    compiled_reads: bool = True
    # A known document of one compiled `passport` read runs past Strawberry's execution
    # (service/schema/prepared.py); off: through it, as every other operation. The same bytes
    # either way; the switch is there for the tests that hold them to it.
    prepared_reads: bool = True

    # Per-client budgets in cost units (a GraphQL operation costs what cost.py says, a REST call
    # its route's cost), per principal kind, in the `limits` notation ("600/minute").
    # Kinds left out keep their default: naming one kind never leaves the others unlimited.
    rate_limits: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    # memory:// counts per process; with several workers or replicas use a shared store, e.g.
    # async+redis://redis:6379/0, so a client's budget is one budget.
    rate_limit_storage_uri: str = "memory://"
    rate_limit_store_timeout_seconds: float = Field(default=0.5, gt=0, le=10)

    # The competence check calls a verified competence stale when it was last used longer ago.
    stale_after_years: int = Field(default=5, ge=1, le=50)

    # Legal-basis reads of erased passports, and erasure receipts, are kept this long and then
    # removed by `passport purge-retained` (run it daily); set it to what the law asks of you.
    retained_access_years: int = Field(default=10, ge=1, le=100)

    # Legal bases (reading without consent) may be granted only to organisations of these kinds.
    legal_basis_organisation_kinds: list[OrganisationKind] = Field(
        default_factory=lambda: [OrganisationKind.PUBLIC_EMPLOYMENT_SERVICE]
    )
    # Where the citizen-facing app opens a share link; the secret goes after it (put it in the
    # URL fragment, "...#", so browsers never send it to a server). Empty: no URL, token only.
    share_link_base_url: str = ""

    # Signed exports (CV attachment). Where this service is reachable from outside: the
    # credentials' issuer (did:web of its host), their status lists and the verification page
    # live under it. Empty in development: http://{host}:{port}.
    public_base_url: str = Field(default="", pattern=r"^(https?://[^/?#\s]+)?$")
    # A JWK Set of Ed25519 keys (service/credentials/keys.py); the first with a private part
    # signs, all are published. Development without it: a key kept in data_dir.
    signing_keys_file: Path | None = None
    credential_issuer_name: str = Field(default="Competence Passport", min_length=1, max_length=200)
    export_valid_days: int = Field(default=365, ge=1, le=3650)
    # The operator's legal identifier (e.g. its enterprise or VAT number), the issuer's eIDAS
    # identifier in Europass exports; unset, they carry the service's did:web instead.
    europass_issuer_id: str = Field(default="", max_length=100)

    # OpenID4VCI (service/wallet/): how long a credential offer can be redeemed, how long the
    # wallet's access token and a nonce live, how many copies one request may ask for, and how
    # many wrong transaction codes spend an offer.
    wallet_offer_minutes: int = Field(default=10, ge=1, le=60)
    wallet_token_seconds: int = Field(default=300, ge=30, le=3600)
    wallet_nonce_seconds: int = Field(default=300, ge=30, le=3600)
    wallet_batch_size: int = Field(default=5, ge=1, le=20)
    wallet_tx_code_attempts: int = Field(default=3, ge=1, le=10)

    # Webhooks (service/webhooks/). Every process runs a dispatcher unless told not to; several
    # share the queue safely. A failed delivery is retried after base * 2^(attempt-1) seconds
    # (at most max), with jitter, and given up after max_attempts (about two days by default).
    webhook_dispatcher: bool = True
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    webhook_batch_size: int = Field(default=100, ge=1, le=1000)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=6 * 3600.0, gt=0)
    webhook_max_attempts: int = Field(default=16, ge=1, le=100)
    # Subscribers must be https and on public addresses in production unless this is set
    # (development allows any, for receivers on this machine).
    webhook_allow_private: bool = False
    # Finished deliveries (delivered or given up) stay visible in webhookDeliveries this long;
    # `passport purge-retained` then removes them. Pending ones are never purged.
    webhook_history_days: int = Field(default=30, ge=1, le=3650)

    # Bulk claim uploads (POST /claims:bulk).
    bulk_max_rows: int = Field(default=100_000, ge=1)
    bulk_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    bulk_chunk_rows: int = Field(default=2000, ge=1, le=10_000)
    # A retry under the same Idempotency-Key gets the stored report back for this long; later,
    # `passport purge-retained` has removed it and a retry is processed again (its rows are then
    # reported as duplicates: the claims' own externalRef keys are never purged).
    bulk_replay_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_algorithms_only(cls, value: list[str]) -> list[str]:
        if not value or not set(value) <= ASYMMETRIC_ALGORITHMS:
            raise ValueError(
                "PASSPORT_OIDC_ALGORITHMS must list only asymmetric algorithms: "
                + ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
            )
        return value

    @field_validator("rate_limits")
    @classmethod
    def _known_limits(cls, value: dict[str, str]) -> dict[str, str]:
        from limits import parse_many

        kinds = {kind.value for kind in PrincipalKind}
        unknown = set(value) - kinds
        if unknown:
            raise ValueError(f"unknown principal kinds {sorted(unknown)}; use {sorted(kinds)}")
        for kind, limit in value.items():
            try:
                parse_many(limit)
            except ValueError as exc:
                raise ValueError(f"{kind}: {limit!r} is not a rate limit") from exc
        return {**DEFAULT_RATE_LIMITS, **value}

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            missing = [
                name
                for name, value in (
                    ("PASSPORT_DATABASE_URL", self.database_url),
                    ("PASSPORT_INSZ_HMAC_KEY", self.insz_hmac_key),
                    ("PASSPORT_WEBHOOK_SECRETS_KEY", self.webhook_secrets_key),
                    ("PASSPORT_OIDC_ISSUER", self.oidc_issuer),
                    ("PASSPORT_OIDC_JWKS_URL", self.oidc_jwks_url),
                    ("PASSPORT_PUBLIC_BASE_URL", self.public_base_url),
                    ("PASSPORT_SIGNING_KEYS_FILE", self.signing_keys_file),
                    (
                        "PASSPORT_OIDC_AUDIENCE",
                        "oidc_audience" in self.model_fields_set and self.oidc_audience,
                    ),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"production needs {', '.join(missing)}")
            for name, key in (
                ("PASSPORT_INSZ_HMAC_KEY", self.insz_hmac_key),
                ("PASSPORT_WEBHOOK_SECRETS_KEY", self.webhook_secrets_key),
            ):
                if key is not None and len(key.get_secret_value()) < 32:
                    raise ValueError(f"{name} must be at least 32 characters")
            if not str(self.oidc_jwks_url).lower().startswith("https://"):
                raise ValueError("PASSPORT_OIDC_JWKS_URL must be an https URL in production")
            if not self.public_base_url.startswith("https://"):
                raise ValueError("PASSPORT_PUBLIC_BASE_URL must be an https URL in production")
            if self.graphql_dev_tools:
                raise ValueError("PASSPORT_GRAPHQL_DEV_TOOLS must be off in production")
        return self

    @property
    def dev_tools(self) -> bool:
        """GraphiQL and introspection: as PASSPORT_GRAPHQL_DEV_TOOLS says, else development."""
        if self.graphql_dev_tools is None:
            return not self.is_production
        return self.graphql_dev_tools

    @property
    def webhooks_may_reach_private(self) -> bool:
        return self.webhook_allow_private or not self.is_production

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def owner_database_url(self) -> str | None:
        return self.migration_database_url or self.database_url

    @property
    def base_url(self) -> str:
        """The one public base URL: every did:web, status list, QR code, PDF and Location
        header derives from it. In development it follows where `passport serve` really
        listens (serve passes its --host and --port on as PASSPORT_HOST and PASSPORT_PORT)."""
        if self.public_base_url:
            return self.public_base_url
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def dev_tokens_allowed(self) -> bool:
        return (
            self.environment is Environment.DEVELOPMENT
            and not self.oidc_issuer
            and not self.oidc_jwks_url
        )

    def hmac_key(self) -> bytes:
        """The INSZ hashing key; in development one is generated once and kept in data_dir."""
        return self._key(self.insz_hmac_key, "insz-hmac.key")

    def webhook_key(self) -> bytes:
        """What seals webhook secrets; in development generated once and kept in data_dir."""
        return self._key(self.webhook_secrets_key, "webhook-secrets.key")

    def _key(self, configured: SecretStr | None, filename: str) -> bytes:
        if configured is not None:
            return configured.get_secret_value().encode()
        path = self.data_dir / filename
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip().encode()


@lru_cache
def get_settings() -> Settings:
    return Settings()
