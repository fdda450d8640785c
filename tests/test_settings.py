"""Unsafe production configuration is refused at start; development tokens stay in development."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner, Result

from service.auth.keys import load_or_create_dev_key
from service.auth.resolve import resolve_principal
from service.auth.tokens import TokenVerifier
from service.cli import app
from service.models.enums import PrincipalKind
from service.settings import Settings, get_settings
from tests.test_tokens import ISSUER, JWKS_URL, production_settings

PRODUCTION_ENV = {
    "PASSPORT_ENVIRONMENT": "production",
    "PASSPORT_DATABASE_URL": "postgresql://unused/unused",
    "PASSPORT_INSZ_HMAC_KEY": "k" * 40,
    "PASSPORT_WEBHOOK_SECRETS_KEY": "w" * 40,
    "PASSPORT_OIDC_ISSUER": ISSUER,
    "PASSPORT_OIDC_JWKS_URL": JWKS_URL,
    "PASSPORT_OIDC_AUDIENCE": "competence-passport",
    "PASSPORT_PUBLIC_BASE_URL": "https://passport.example.org",
    "PASSPORT_SIGNING_KEYS_FILE": "/var/run/secrets/passport/signing/signing-keys.json",
}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"oidc_jwks_url": "http://idp.example.test/certs"}, "https"),
        ({"oidc_algorithms": ["RS256", "HS256"]}, "asymmetric"),
        ({"oidc_algorithms": ["none"]}, "asymmetric"),
        ({"oidc_algorithms": []}, "asymmetric"),
        ({"oidc_audience": ""}, "PASSPORT_OIDC_AUDIENCE"),
        ({"public_base_url": ""}, "PASSPORT_PUBLIC_BASE_URL"),
        ({"public_base_url": "http://passport.example.org"}, "https"),
        ({"signing_keys_file": None}, "PASSPORT_SIGNING_KEYS_FILE"),
        ({"webhook_secrets_key": None}, "PASSPORT_WEBHOOK_SECRETS_KEY"),
        ({"webhook_secrets_key": "short"}, "PASSPORT_WEBHOOK_SECRETS_KEY must be at least 32"),
    ],
)
def test_production_refuses_unsafe_identity_provider_settings(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        production_settings(str(tmp_path), **overrides)


def test_production_needs_an_explicit_audience(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values: dict[str, Any] = {
        "environment": "production",
        "database_url": "postgresql://unused/unused",
        "insz_hmac_key": "k" * 40,
        "webhook_secrets_key": "w" * 40,
        "oidc_issuer": ISSUER,
        "oidc_jwks_url": JWKS_URL,
        "data_dir": tmp_path,
        "public_base_url": "https://passport.example.org",
        "signing_keys_file": tmp_path / "keys.json",
    }
    monkeypatch.delenv("PASSPORT_OIDC_AUDIENCE", raising=False)
    with pytest.raises(ValueError, match="PASSPORT_OIDC_AUDIENCE"):
        Settings(**values)
    monkeypatch.setenv("PASSPORT_OIDC_AUDIENCE", "competence-passport")
    assert Settings(**values).oidc_audience == "competence-passport"


def test_symmetric_algorithms_are_refused_in_development_too() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        Settings(oidc_algorithms=["HS256"])


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliRunner]:
    """The `passport` command with settings read afresh from the environment."""
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "1000")  # typer's error box wraps long paths otherwise
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_serve_demo_is_refused_in_production(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)
    result = cli.invoke(app, ["serve", "--demo"])
    assert result.exit_code == 2
    assert "demo data is refused in production" in result.output


def test_token_command_is_refused_once_an_idp_is_configured(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASSPORT_OIDC_ISSUER", ISSUER)
    result = cli.invoke(app, ["token", "admin"])
    assert result.exit_code == 2
    assert "development tokens are accepted only in development" in result.output


async def test_token_command_mints_what_the_readme_uses(
    cli: CliRunner,
    tmp_path: Path,
    session: AsyncSession,
    database_url: str,
    demo: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PASSPORT_DATABASE_URL", database_url)
    settings = Settings(data_dir=tmp_path)
    verifier = TokenVerifier(settings, dev_key=load_or_create_dev_key(tmp_path), http=None)

    async def run(*args: str) -> Result:
        # In a thread: the command runs its own event loop for the client look-up.
        return await asyncio.to_thread(lambda: cli.invoke(app, list(args)))

    admin = await run("token", "admin")
    assert admin.exit_code == 0, admin.output
    claims = await verifier.verify(admin.output.strip())
    assert claims["exp"] - claims["iat"] == settings.oidc_max_token_lifetime_seconds
    assert (await resolve_principal(session, claims, settings)).kind is PrincipalKind.ADMIN
    demo_run = await run("token", "demo")
    assert demo_run.exit_code == 0, demo_run.output
    lines = demo_run.output.splitlines()
    tokens = dict(line.split(": ", 1) for line in lines if not line.startswith("#"))
    assert set(tokens) == {
        "admin",
        "citizen",
        "demo-school",
        "demo-employer",
        "demo-employment-service",
    }
    citizen = await resolve_principal(session, await verifier.verify(tokens["citizen"]), settings)
    assert citizen.kind is PrincipalKind.CITIZEN
    reader = await resolve_principal(
        session, await verifier.verify(tokens["demo-employment-service"]), settings
    )
    assert "passports:read" in reader.scopes
    guide = "\n".join(line for line in lines if line.startswith("#"))
    assert 'legalBasis: "GUIDANCE"' in guide  # what the demo reader must name to read
    short = await run("token", "citizen", "--insz", "85073003328", "--minutes", "5")
    claims = jwt.decode(short.output.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 300
    limit = settings.oidc_max_token_lifetime_seconds // 60
    too_long = await run("token", "admin", "--minutes", str(limit + 1))
    assert too_long.exit_code == 2
    partner = await run("token", "partner", "--client-id", "demo-school")
    assert partner.exit_code == 0, partner.output
    assert (await verifier.verify(partner.output.strip()))["client_id"] == "demo-school"


async def test_token_command_refuses_what_the_server_would_refuse(
    cli: CliRunner, tmp_path: Path, database_url: str, demo: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token the server would answer with a 401 is refused when it is asked for, saying why."""
    monkeypatch.setenv("PASSPORT_DATABASE_URL", database_url)
    load_or_create_dev_key(tmp_path)

    async def refused(*args: str) -> str:
        result = await asyncio.to_thread(lambda: cli.invoke(app, list(args)))
        assert result.exit_code == 2, result.output
        return " ".join(result.output.split())  # typer frames and wraps its message

    # 29 February 2000 with the pre-2000 check digits: no such date in 1900.
    birth = await refused("token", "citizen", "--insz", "00022912388")
    assert "birth date does not exist" in birth and "00022912388" not in birth
    digits = await refused("token", "citizen", "--insz", "85073003329")
    assert "check digits do not match" in digits
    unknown = await refused("token", "partner", "--client-id", "no-such-client")
    assert "no active client 'no-such-client' is registered" in unknown
    wrong_scope = await refused("token", "reader", "--client-id", "demo-school")
    assert "registered without passports:read" in wrong_scope


def test_token_command_finds_the_key_from_any_folder_below(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from a subfolder, it signs with the project's key, and says which; it never makes
    a key of its own, which no server would know."""
    monkeypatch.delenv("PASSPORT_DATA_DIR")
    get_settings.cache_clear()
    project = tmp_path / "project"
    key = load_or_create_dev_key(project / ".passport")
    deep = project / "src" / "deeper"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    result = cli.invoke(app, ["token", "admin"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert jwt.get_unverified_header(token)["kid"] == key.kid
    assert f"development key of {project / '.passport'}" in result.stderr
    assert not (deep / ".passport").exists()


def test_token_command_says_where_it_looked_when_there_is_no_key(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PASSPORT_DATA_DIR")
    get_settings.cache_clear()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = cli.invoke(app, ["token", "admin"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert f"{elsewhere / '.passport'}, {tmp_path / '.passport'}" in said
    assert "PASSPORT_DATA_DIR" in said
    assert not (elsewhere / ".passport").exists()
