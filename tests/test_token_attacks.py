"""Token attacks over HTTP: every forged, stale or malformed token is a 401 that changes nothing.

One corpus of named attacks, each sent as a mutation to both ``POST /graphql`` (``issueClaim``)
and ``POST /claims:bulk`` (one NDJSON row), in both ways the service can trust tokens:

* ``dev``: development tokens, EdDSA with the local development key (the suite's ``api``);
* ``idp``: an identity provider's RS256 tokens, keys from its JWKS (a ``FakeIdp`` answered
  in-process; every URL the service fetches is recorded, so a followed ``jku`` would show).

Each attack starts from the token an active partner would send and changes one thing. The row
counts and the newest ``xmin`` of every table in the public schema (access records, events, the
outbox and bulk uploads included; the ESCO reference data aside, see ``ESCO_TABLES``) are the
same before and after, so nothing was written or logged. ``test_the_unaltered_token_is_accepted``
proves the baseline token works and that the snapshot does see its write.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api.state import AppState
from service.app import create_app
from service.auth import tokens
from service.auth.tokens import TokenVerifier
from service.models import taxonomy as taxonomy_models
from service.settings import Settings
from tests import factories
from tests.conftest import make_partner
from tests.graphql_client import Api
from tests.test_tokens import ISSUER, JWKS_URL, Clock, FakeIdp

ISSUE = """mutation($input: IssueClaimInput!) {
  issueClaim(input: $input) { __typename ... on ClaimIssued { claim { id } } } }"""
NDJSON = "application/x-ndjson"
ATTACKER_URL = "https://attacker.example/keys.json"
DROP = object()  # a claim or header left out of the token

# Made once: RSA key generation is the slow part of this module.
ATTACKER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_ED25519 = Ed25519PrivateKey.generate()

Headers = list[tuple[str, str | bytes]]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(part: Mapping[str, Any]) -> str:
    return _b64(json.dumps(part, separators=(",", ":")).encode())


def _pem(public_key: Any) -> bytes:
    pem: bytes = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


@dataclass
class Mode:
    """How one deployment trusts tokens, and how to make the token its partner would send."""

    name: str
    http: httpx.AsyncClient
    issuer: str
    audience: str
    kid: str
    alg: str
    key: Any  # the private key the service trusts
    partner: str  # client_id of an active partner with claims:write
    state: AppState
    fetched: list[str] = field(default_factory=list)  # URLs the service requested (idp only)

    @property
    def attacker_key(self) -> Any:
        return ATTACKER_RSA if self.alg == "RS256" else ATTACKER_ED25519

    @property
    def attacker_jwk(self) -> dict[str, Any]:
        public = self.attacker_key.public_key()
        jwk = RSAAlgorithm.to_jwk(public) if self.alg == "RS256" else OKPAlgorithm.to_jwk(public)
        return {**json.loads(jwk), "kid": self.kid, "alg": self.alg}

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": self.partner,
            "client_id": self.partner,
            "scope": "claims:write",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": factories.ref(),
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not DROP}

    def header(self, **changes: Any) -> dict[str, Any]:
        header: dict[str, Any] = {"alg": self.alg, "typ": "at+jwt", "kid": self.kid}
        header.update(changes)
        return {k: v for k, v in header.items() if v is not DROP}

    def sign(self, claims: Mapping[str, Any], header: Mapping[str, Any], key: Any = None) -> str:
        """By hand rather than jwt.encode, which refuses to write some of the headers sent here."""
        signing_input = f"{_segment(header)}.{_segment(claims)}"
        algorithm = jwt.get_algorithm_by_name(header["alg"])
        return f"{signing_input}.{_b64(algorithm.sign(signing_input.encode(), key or self.key))}"

    def token(self, **changes: Any) -> str:
        return self.sign(self.claims(**changes), self.header())


def bearer(token: str | bytes) -> Headers:
    return [
        ("Authorization", b"Bearer " + token if isinstance(token, bytes) else f"Bearer {token}")
    ]


def unsigned(mode: Mode, alg: str) -> Headers:
    return bearer(f"{_segment(mode.header(alg=alg))}.{_segment(mode.claims())}.")


def hmac_with_public_key(mode: Mode) -> Headers:
    """Key confusion: HS256 keyed with the trusted public key, which anyone can have."""
    signing_input = f"{_segment(mode.header(alg='HS256'))}.{_segment(mode.claims())}"
    secret = _pem(mode.key.public_key())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return bearer(f"{signing_input}.{_b64(signature)}")


def tampered_payload(mode: Mode) -> Headers:
    """A genuine signature over another payload: the same token, but asking for admin."""
    head, _, signature = mode.token().split(".")
    return bearer(f"{head}.{_segment(mode.claims(scope='admin claims:write'))}.{signature}")


def by_attacker(mode: Mode, **header: Any) -> Headers:
    """Signed by the attacker's key, the header saying where (or what) that key is."""
    return bearer(mode.sign(mode.claims(), mode.header(**header), mode.attacker_key))


def other_mode_key(mode: Mode, api: Api, idp: FakeIdp) -> Headers:
    """A well-formed token from the key the *other* deployment trusts."""
    if mode.name == "dev":
        return bearer(
            mode.sign(mode.claims(), {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}, idp.key)
        )
    return bearer(api.token(subject=mode.partner, client_id=mode.partner, scopes=["claims:write"]))


READ = "{ issuedClaims(first: 1) { edges { cursor } } }"


async def _works(mode: Mode, client_id: str) -> None:
    """The client's token is let in before its status changes: the refusal is the change."""
    token = mode.token(sub=client_id, client_id=client_id)
    response = await mode.http.post(
        "/graphql", json={"query": READ}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()


async def _client_with_status(api: Api, mode: Mode, status: str) -> str:
    partner = await make_partner(api)
    await _works(mode, partner.client_id)
    body = await api.gql(
        api.admin(),
        "mutation($c: String!, $s: ClientStatus!) { setClientStatus(clientId: $c, status: $s)"
        " { __typename } }",
        {"c": partner.client_id, "s": status},
    )
    assert body["data"]["setClientStatus"]["__typename"] == "ApiClient", body
    return partner.client_id


async def suspended_organisation(api: Api, mode: Mode) -> Headers:
    partner = await make_partner(api)
    await _works(mode, partner.client_id)
    body = await api.gql(
        api.admin(),
        "mutation($id: ID!) { setOrganisationStatus(id: $id, status: SUSPENDED) { __typename } }",
        {"id": str(partner.organisation_id)},
    )
    assert body["data"]["setOrganisationStatus"]["__typename"] == "Organisation", body
    return bearer(mode.token(sub=partner.client_id, client_id=partner.client_id))


Build = Callable[["Mode", Api, FakeIdp], Awaitable[Headers]]


@dataclass(frozen=True)
class Attack:
    name: str
    build: Build
    reason: str  # what the 401 says is wrong (a few differ by mode: REASONS_BY_MODE)


def attack(name: str, make: Callable[[Mode], Headers], reason: str) -> Attack:
    async def build(mode: Mode, api: Api, idp: FakeIdp) -> Headers:
        return make(mode)

    return Attack(name, build, reason)


def _now() -> int:
    return int(time.time())


async def _deleted(mode: Mode, api: Api, idp: FakeIdp) -> Headers:
    client = await _client_with_status(api, mode, "DELETED")
    return bearer(mode.token(sub=client, client_id=client))


async def _suspended(mode: Mode, api: Api, idp: FakeIdp) -> Headers:
    client = await _client_with_status(api, mode, "SUSPENDED")
    return bearer(mode.token(sub=client, client_id=client))


async def _suspended_org(mode: Mode, api: Api, idp: FakeIdp) -> Headers:
    return await suspended_organisation(api, mode)


async def _other_key(mode: Mode, api: Api, idp: FakeIdp) -> Headers:
    return other_mode_key(mode, api, idp)


HUGE = 1024 * 1024

ATTACKS: list[Attack] = [
    # Signature and algorithm
    attack("alg-none", lambda m: unsigned(m, "none"), "algorithm"),
    attack("alg-None", lambda m: unsigned(m, "None"), "algorithm"),
    attack("alg-NONE", lambda m: unsigned(m, "NONE"), "algorithm"),
    attack("hs256-keyed-with-public-key", hmac_with_public_key, "algorithm"),
    attack(
        "rs256-foreign-key",
        lambda m: bearer(m.sign(m.claims(), m.header(alg="RS256"), ATTACKER_RSA)),
        "algorithm",
    ),
    attack(
        "own-alg-foreign-key",
        lambda m: bearer(m.sign(m.claims(), m.header(), m.attacker_key)),
        "bad_signature",
    ),
    attack(
        "signature-stripped", lambda m: bearer(m.token().rsplit(".", 1)[0] + "."), "bad_signature"
    ),
    attack("payload-tampered", tampered_payload, "bad_signature"),
    Attack("key-of-the-other-deployment", _other_key, "unknown_key"),
    # Claims
    attack("wrong-iss", lambda m: bearer(m.token(iss="https://evil.example/")), "wrong_issuer"),
    attack("missing-iss", lambda m: bearer(m.token(iss=DROP)), "missing_claim"),
    attack("wrong-aud", lambda m: bearer(m.token(aud="another-service")), "wrong_audience"),
    attack("missing-aud", lambda m: bearer(m.token(aud=DROP)), "missing_claim"),
    attack(
        "expired",
        lambda m: bearer(m.token(iat=_now() - 600, nbf=_now() - 600, exp=_now() - 300)),
        "expired",
    ),
    attack(
        "nbf-in-the-future",
        lambda m: bearer(m.token(nbf=_now() + 300, exp=_now() + 600)),
        "not_yet_valid",
    ),
    attack(
        "iat-in-the-future-beyond-leeway",
        lambda m: bearer(m.token(iat=_now() + 300, nbf=DROP, exp=_now() + 600)),
        "not_yet_valid",
    ),
    attack("missing-exp", lambda m: bearer(m.token(exp=DROP)), "missing_claim"),
    attack("missing-iat", lambda m: bearer(m.token(iat=DROP)), "missing_claim"),
    attack(
        "lifetime-over-the-maximum",
        lambda m: bearer(m.token(iat=_now() - 7200, nbf=_now() - 7200, exp=_now() + 60)),
        "too_long_lived",
    ),
    attack("exp-not-a-number", lambda m: bearer(m.token(exp="tomorrow")), "malformed"),
    # Header
    attack("typ-JWT", lambda m: bearer(m.sign(m.claims(), m.header(typ="JWT"))), "wrong_type"),
    attack("typ-missing", lambda m: bearer(m.sign(m.claims(), m.header(typ=DROP))), "wrong_type"),
    attack(
        "typ-id-token",
        lambda m: bearer(m.sign(m.claims(), m.header(typ="id_token+jwt"))),
        "wrong_type",
    ),
    attack(
        "kid-unknown",
        lambda m: bearer(m.sign(m.claims(), m.header(kid="no-such-key"))),
        "unknown_key",
    ),
    attack("kid-missing", lambda m: bearer(m.sign(m.claims(), m.header(kid=DROP))), "no_key_id"),
    attack(
        "kid-not-a-string", lambda m: bearer(m.sign(m.claims(), m.header(kid=["k1"]))), "malformed"
    ),
    attack("jku-attacker-keys", lambda m: by_attacker(m, jku=ATTACKER_URL), "bad_signature"),
    attack("x5u-attacker-certificate", lambda m: by_attacker(m, x5u=ATTACKER_URL), "bad_signature"),
    attack(
        "jwk-embedded-attacker-key", lambda m: by_attacker(m, jwk=m.attacker_jwk), "bad_signature"
    ),
    attack(
        "crit-unknown-extension",
        lambda m: bearer(
            m.sign(m.claims(), m.header(crit=["urn:example:ext"], **{"urn:example:ext": 1}))
        ),
        "malformed",
    ),
    # Who the token names
    Attack("deleted-client", _deleted, "unknown_client"),
    Attack("suspended-client", _suspended, "unknown_client"),
    Attack("suspended-organisation", _suspended_org, "unknown_client"),
    attack(
        "unregistered-client",
        lambda m: bearer(m.token(sub="nobody", client_id="nobody")),
        "unknown_client",
    ),
    attack(
        "client-id-with-nul",
        lambda m: bearer(m.token(client_id=m.partner + "\x00")),
        "unknown_client",
    ),
    attack("client-id-oversized", lambda m: bearer(m.token(client_id="c" * 300)), "unknown_client"),
    attack(
        "citizen-with-bad-check-digits",
        lambda m: bearer(m.token(sub="85073003329", client_id=DROP, scope="passport:citizen")),
        "invalid_citizen",
    ),
    attack(
        "citizen-asking-for-admin",
        lambda m: bearer(
            m.token(sub="85073003328", client_id=DROP, scope="passport:citizen admin")
        ),
        "citizen_with_admin",
    ),
    # Garbage
    attack("not-base64", lambda m: bearer("%%%.***.$$$"), "malformed"),
    attack("three-dots", lambda m: bearer("..."), "malformed"),
    attack("segments-not-json", lambda m: bearer("a.b.c"), "malformed"),
    attack("four-segments", lambda m: bearer(m.token() + ".AAAA"), "malformed"),
    attack(
        "header-a-json-list",
        lambda m: bearer(f"{_b64(b'[1]')}.{_segment(m.claims())}."),
        "malformed",
    ),
    attack("huge-1MB", lambda m: bearer(f"{_segment(m.header())}.{'A' * HUGE}.AAAA"), "malformed"),
    attack(
        "non-ascii-latin-1",
        lambda m: bearer("ëyJhbGciOiJub25lIn0.é.ß".encode("latin-1")),
        "malformed",
    ),
    attack("non-ascii-utf-8", lambda m: bearer((m.token() + "\u2603").encode()), "malformed"),
    attack(
        "control-characters", lambda m: bearer(m.token().replace(".", ".\x01\x7f", 1)), "malformed"
    ),
    # Transport
    attack("no-authorization", lambda m: [], "missing"),
    attack("bearer-without-token", lambda m: [("Authorization", "Bearer")], "missing"),
    attack("bearer-and-blanks", lambda m: [("Authorization", "Bearer    ")], "missing"),
    attack(
        "other-scheme-valid-token",
        lambda m: [("Authorization", f"Token {m.token()}")],
        "not_bearer",
    ),
    attack("basic-credentials", lambda m: [("Authorization", "Basic dXNlcjpwYXNz")], "not_bearer"),
    attack("token-without-scheme", lambda m: [("Authorization", m.token())], "not_bearer"),
    attack(
        "two-headers-valid-first", lambda m: bearer(m.token()) + bearer("forged"), "several_headers"
    ),
    attack(
        "two-headers-valid-second",
        lambda m: bearer("forged") + bearer(m.token()),
        "several_headers",
    ),
    attack(
        "two-headers-both-valid", lambda m: bearer(m.token()) + bearer(m.token()), "several_headers"
    ),
]

ENDPOINTS = ("graphql", "rest")
CASES = [
    pytest.param(mode, case, endpoint, id=f"{mode}-{case.name}-{endpoint}")
    for mode in ("dev", "idp")
    for case in ATTACKS
    for endpoint in ENDPOINTS
]


# --- The two deployments -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_idp() -> FakeIdp:
    return FakeIdp()


@pytest.fixture(scope="module")
async def modes(
    app: Any, api: Api, settings: Settings, fake_idp: FakeIdp
) -> AsyncIterator[dict[str, Mode]]:
    """The suite's development app, and one configured for the identity provider (same database)."""
    partner = await make_partner(api)
    fetched: list[str] = []

    def jwks(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return fake_idp.handler(request) if str(request.url) == JWKS_URL else httpx.Response(404)

    idp_settings = settings.model_copy(update={"oidc_issuer": ISSUER, "oidc_jwks_url": JWKS_URL})
    assert not idp_settings.dev_tokens_allowed
    application = create_app(idp_settings)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.MockTransport(jwks)) as idp_http,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        ) as http,
    ):
        state = application.state.passport
        # As the app builds it, development key included: it must be ignored once an IdP is set.
        state.verifier = TokenVerifier(idp_settings, dev_key=api.key, http=idp_http)
        yield {
            "dev": Mode(
                "dev",
                api.http,
                settings.dev_token_issuer,
                settings.oidc_audience,
                api.key.kid,
                "EdDSA",
                api.key.private_key,
                partner.client_id,
                app.state.passport,
            ),
            "idp": Mode(
                "idp",
                http,
                ISSUER,
                idp_settings.oidc_audience,
                "k1",
                "RS256",
                fake_idp.key,
                partner.client_id,
                state,
                fetched,
            ),
        }


# --- Sending, and proving nothing changed ----------------------------------------------------


async def send(mode: Mode, endpoint: str, headers: Headers) -> httpx.Response:
    """A mutation that writes a claim if the caller is let in."""
    row = factories.claim_input(factories.insz())
    if endpoint == "graphql":
        path, content_type = "/graphql", "application/json"
        body = orjson.dumps({"query": ISSUE, "variables": {"input": row}})
    else:
        path, content_type, body = "/claims:bulk", NDJSON, orjson.dumps(row) + b"\n"
    sent: list[tuple[bytes, bytes]] = [(b"Content-Type", content_type.encode())]
    sent += [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in headers]
    return await mode.http.post(path, content=body, headers=sent)


# The ESCO reference data (some 330,000 rows) changes only by an import, which also writes a
# taxonomy_imports row; scanning it twice per attack would be most of this module's run time.
ESCO_TABLES = frozenset(
    model.__table__.name
    for model in vars(taxonomy_models).values()
    if isinstance(model, type) and hasattr(model, "__table__")
) - {"taxonomy_imports"}


async def snapshot(engine: AsyncEngine) -> dict[str, tuple[int, int]]:
    """Rows and newest writing transaction of every table in the public schema (but the ESCO
    data, see above): an insert, update or delete shows."""
    async with engine.connect() as conn:
        names = (
            await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            )
        ).scalars()
        query = " UNION ALL ".join(
            f"SELECT '{name}', count(*), coalesce(max(xmin::text::bigint), 0) FROM \"{name}\""
            for name in names
            if name not in ESCO_TABLES
        )
        rows = (await conn.execute(text(query))).all()
    return {name: (count, xmin) for name, count, xmin in rows}


# RFC 6750: without bearer credentials no error is named; a malformed request is
# invalid_request; anything wrong with the token is invalid_token, with a short description.
NO_CREDENTIALS = frozenset({"missing", "not_bearer"})
REASONS_BY_MODE = {
    # RS256 is no algorithm of development tokens; the identity provider's, it is.
    "rs256-foreign-key": {"idp": "bad_signature"},
}


def assert_refused(endpoint: str, response: httpx.Response, reason: str) -> None:
    """401, with RFC 6750's challenge and the reason in the body, as each transport says it."""
    assert response.status_code == 401, response.text[:500]
    challenge = response.headers["www-authenticate"]
    if reason in NO_CREDENTIALS:
        assert challenge == "Bearer"
    else:
        error = "invalid_request" if reason == "several_headers" else "invalid_token"
        assert challenge.startswith(f'Bearer error="{error}", error_description="'), challenge
        description = challenge.split('error_description="', 1)[1].rstrip('"')
        assert 3 < len(description) < 120 and '"' not in description, challenge
    body = response.json()
    if endpoint == "graphql":
        assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "reason": reason}
    else:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert (body["code"], body["reason"]) == ("UNAUTHENTICATED", reason), body


@pytest.mark.parametrize(("mode_name", "case", "endpoint"), CASES)
async def test_attack_is_refused_and_changes_nothing(
    modes: dict[str, Mode],
    api: Api,
    fake_idp: FakeIdp,
    engine: AsyncEngine,
    mode_name: str,
    case: Attack,
    endpoint: str,
) -> None:
    mode = modes[mode_name]
    headers = await case.build(mode, api, fake_idp)
    fetched = len(mode.fetched)
    before = await snapshot(engine)
    response = await send(mode, endpoint, headers)
    reason = REASONS_BY_MODE.get(case.name, {}).get(mode.name, case.reason)
    assert_refused(endpoint, response, reason)
    assert await snapshot(engine) == before
    assert all(url == JWKS_URL for url in mode.fetched[fetched:])  # no jku, x5u, ... followed


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("mode_name", ["dev", "idp"])
async def test_the_unaltered_token_is_accepted(
    modes: dict[str, Mode], engine: AsyncEngine, mode_name: str, endpoint: str
) -> None:
    """The baseline every attack alters is let in, and its write shows in the snapshot."""
    mode = modes[mode_name]
    before = await snapshot(engine)
    response = await send(mode, endpoint, bearer(mode.token()))
    assert response.status_code == 200, response.text
    if endpoint == "graphql":
        assert response.json()["data"]["issueClaim"]["__typename"] == "ClaimIssued", response.text
    else:
        assert orjson.loads(response.content.splitlines()[0])["status"] == "accepted", response.text
    after = await snapshot(engine)
    changed = {name for name in after if after[name] != before.get(name)}
    assert after["claims"][0] == before["claims"][0] + 1, changed
    assert "citizen_events" in changed


async def test_unknown_kid_storm_fetches_the_jwks_at_most_once_per_interval(
    modes: dict[str, Mode],
    engine: AsyncEngine,
    fake_idp: FakeIdp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Made-up kids over HTTP cannot make the service hammer the identity provider."""
    mode = modes["idp"]
    clock = Clock()
    monkeypatch.setattr(tokens, "monotonic", clock)
    fetches: list[str] = []

    def jwks(request: httpx.Request) -> httpx.Response:
        fetches.append(str(request.url))
        return fake_idp.handler(request)

    interval = mode.state.settings.oidc_jwks_min_refresh_seconds
    async with httpx.AsyncClient(transport=httpx.MockTransport(jwks)) as idp_http:
        fresh = TokenVerifier(mode.state.settings, dev_key=None, http=idp_http)
        monkeypatch.setattr(mode.state, "verifier", fresh)  # its cache has read no keys yet
        before = await snapshot(engine)
        statuses = []
        for i in range(100):
            header = mode.header(kid=f"unknown-{i}")
            token = mode.sign(mode.claims(), header)
            statuses.append((await send(mode, ENDPOINTS[i % 2], bearer(token))).status_code)
        assert fetches == [JWKS_URL]
        clock.now += interval
        for i in range(10):
            token = mode.sign(mode.claims(), mode.header(kid=f"later-{i}"))
            statuses.append((await send(mode, ENDPOINTS[i % 2], bearer(token))).status_code)
        assert fetches == [JWKS_URL] * 2
        assert statuses == [401] * 110
        assert await snapshot(engine) == before
