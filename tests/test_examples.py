"""The examples/ folder works as its README says: every operation is valid against the committed
schema, and the whole walk-through runs against the demo data (service/demo.py, seeded as
`passport serve --demo` seeds it), each step with the demo token its kind of caller uses. The
GraphQL operations go through the app with examples/run.py's own request building; the curl
scripts and run.py itself run for real against the service served on a local port."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import uvicorn
from graphql import build_schema, parse, validate

from service.app import create_app
from service.auth.keys import load_or_create_dev_key
from service.demo import demo_tokens
from service.settings import Settings
from tests.graphql_client import Api
from tests.test_resilience import _free_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
OPERATIONS = sorted(EXAMPLES.rglob("*.graphql"))
SCRIPTS = sorted(EXAMPLES.rglob("*.sh"))


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("examples_run", EXAMPLES / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_py = _runner()


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_is_valid_against_the_committed_schema(path: Path) -> None:
    schema = build_schema((ROOT / "schema.graphql").read_text())
    document = parse(path.read_text())
    assert validate(schema, document) == []
    assert path.read_text().startswith("# "), "each example says what it does and as whom"
    assert path.parent.name in {*run_py.CALLERS, "share-link"}


def test_the_readme_lists_every_example() -> None:
    listed = (EXAMPLES / "README.md").read_text()
    for path in [*OPERATIONS, *SCRIPTS]:
        assert str(path.relative_to(EXAMPLES)) in listed, path
    assert "examples/" in (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def tokens(settings: Settings, demo: None) -> dict[str, str]:
    """What `passport token demo` prints, for the key the suite's app trusts."""
    key = load_or_create_dev_key(settings.data_dir)
    return demo_tokens(key, settings, timedelta(hours=1))


@pytest.fixture(scope="module")
def live(settings: Settings) -> Iterator[str]:
    """The service on a local port (an app of its own on the suite's database), for curl."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def error_results(value: Any) -> list[dict[str, Any]]:
    """Typed errors anywhere in an answer (the `... on Error { code message }` of a union)."""
    if isinstance(value, dict):
        found = [value] if {"code", "message"} <= value.keys() else []
        return found + [e for item in value.values() for e in error_results(item)]
    if isinstance(value, list):
        return [e for item in value for e in error_results(item)]
    return []


class Walk:
    """Runs examples in order, as the README's walk-through does."""

    def __init__(self, api: Api, tokens: dict[str, str], live: str, folder: Path) -> None:
        self.api, self.tokens, self.live, self.folder = api, tokens, live, folder

    async def graphql(self, example: str, token: str | None = None, **values: str) -> Any:
        """The example's data, once it answered without any error."""
        caller = run_py.CALLERS.get(example.split("/")[0])
        body = run_py.request_body(EXAMPLES / example, values)
        bearer = token or self.tokens[caller]
        response = await self.api.http.post(
            "/graphql", json=body, headers={"Authorization": f"Bearer {bearer}"}
        )
        assert response.status_code == 200, (example, response.text)
        answer = response.json()
        assert "errors" not in answer, (example, answer)
        assert error_results(answer["data"]) == [], (example, answer)
        return answer["data"]

    def script(self, example: str, caller: str | None, *args: str) -> str:
        env = {**os.environ, "BASE_URL": self.live}
        if caller is not None:
            env["TOKEN"] = self.tokens[caller]
        done = subprocess.run(
            ["sh", str(EXAMPLES / example), *args],
            env=env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (example, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout


async def test_the_walk_through_runs_against_the_demo_data(
    api: Api, tokens: dict[str, str], live: str, tmp_path: Path
) -> None:
    walk = Walk(api, tokens, live, tmp_path)

    # Admin: a new organisation, its system, its legal basis.
    known = await walk.graphql("admin/organisations")
    assert {"Demo Hogeschool Gent", "Demo Arbeidsbemiddeling"} <= {
        o["name"] for o in known["organisations"]
    }
    organisation = (await walk.graphql("admin/register-organisation"))["registerOrganisation"]
    client = await walk.graphql("admin/register-client", organisationId=organisation["id"])
    assert client["registerClient"]["scopes"] == ["PASSPORTS_READ"]
    basis = await walk.graphql("admin/grant-legal-basis", organisationId=organisation["id"])
    assert basis["grantLegalBasis"]["basis"] == "GUIDANCE"

    # Partner: one claim, many, the list, a revocation, a supersession, a bulk upload.
    issued = (await walk.graphql("partner/issue-claim"))["issueClaim"]
    assert (issued["created"], issued["claim"]["issuer"]["name"]) == (True, "Demo Hogeschool Gent")
    again = (await walk.graphql("partner/issue-claim"))["issueClaim"]
    assert (again["created"], again["claim"]["id"]) == (False, issued["claim"]["id"])  # a retry
    many = (await walk.graphql("partner/issue-claims"))["issueClaims"]
    assert (many["accepted"], many["rejected"]) == (2, 0)
    listed = (await walk.graphql("partner/issued-claims"))["issuedClaims"]
    assert issued["claim"]["id"] in {edge["node"]["id"] for edge in listed["edges"]}
    revoked = await walk.graphql("partner/revoke-claim", claimId=issued["claim"]["id"])
    assert revoked["revokeClaim"]["claim"]["status"] == "REVOKED"
    first = many["results"][0]["claim"]["id"]
    newer = (await walk.graphql("partner/supersede-claim", claimId=first))["supersedeClaim"]
    assert newer["claim"]["supersedes"] == first
    uploaded = walk.script("partner/bulk-upload.sh", "demo-school")
    report = [json.loads(line) for line in uploaded.splitlines()]
    rows = [line for line in report if "summary" not in line]
    ndjson, csv = ["accepted", "accepted", "rejected"], ["accepted", "accepted"]
    assert [row["status"] for row in rows] == [*ndjson, *csv]
    assert "check digits" in json.dumps(rows[2]) and "85073003329" not in json.dumps(report)

    # Citizen: the passport, a declaration of their own, a grant to the demo reader.
    mine = (await walk.graphql("citizen/my-passport"))["me"]["passport"]
    statuses = {c["competence"]["uri"].rsplit("/", 1)[1]: c["status"] for c in mine["competences"]}
    assert statuses["1973c966-f236-40c9-b2d4-5d71a89019be"] == "REVOKED"  # spreadsheets
    assert statuses["28cb374e-6261-4133-8371-f9a5470145da"] == "ACTIVE"  # from the upload
    declared = (await walk.graphql("citizen/self-declare"))["selfDeclare"]
    assert declared["created"] is True
    shared = (await walk.graphql("citizen/share-with-organisation"))["grantAccess"]
    assert shared["grant"]["organisation"]["name"] == "Demo Arbeidsbemiddeling"

    # Reader: the grant, a read under it, a read under the legal basis, a competence check.
    received = (await walk.graphql("reader/grants-received"))["grantsReceived"]["edges"]
    assert shared["grant"]["id"] in {edge["node"]["id"] for edge in received}
    consent = (await walk.graphql("reader/read-under-consent"))["passport"]
    assert consent["basis"] == "CONSENT" and consent["competences"]
    legal = (await walk.graphql("reader/read-under-legal-basis"))["passport"]
    assert legal["basis"] == "LEGAL_BASIS"
    assert {c["competence"]["label"]["text"] for c in legal["competences"]} >= {"SQL", "English"}
    check = (await walk.graphql("reader/competence-check"))["competenceCheck"]
    assert check["occupation"]["label"] == {"text": "software developer", "language": "en"}

    # A share link, and what its holder sees: the two competences it names.
    link = (await walk.graphql("citizen/share-link"))["grantAccess"]["shareLink"]
    assert link["token"].startswith("psl_")
    seen = await walk.graphql("share-link/shared-passport", token=link["token"])
    assert seen["sharedPassport"]["basis"] == "LINK"
    assert len(seen["sharedPassport"]["competences"]) == 2

    # Citizen: who looked, the export (and files), revoking the grant, erasure.
    log = (await walk.graphql("citizen/access-log"))["me"]["accessLog"]["edges"]
    assert {"CONSENT", "LEGAL_BASIS", "LINK"} <= {edge["node"]["basis"] for edge in log}
    exported = (await walk.graphql("citizen/export"))["me"]["exportData"]
    assert exported["claims"]
    walk.script("citizen/export.sh", "citizen")
    assert (tmp_path / "passport-cv.pdf").read_bytes().startswith(b"%PDF")
    assert json.loads((tmp_path / "passport-data.json").read_text())["claims"]
    verified = json.loads(walk.script("verifier/verify.sh", None, "passport-credential.json"))
    assert verified["verified"] is True and verified["claims"]
    withdrawn = await walk.graphql("citizen/revoke-access", grantId=shared["grant"]["id"])
    assert withdrawn["revokeAccess"]["grant"]["status"] == "REVOKED"
    body = run_py.request_body(EXAMPLES / "reader/read-under-consent", {})
    refused = await api.gql(tokens["demo-employment-service"], body["query"], body["variables"])
    assert refused["data"]["passport"]["__typename"] == "NotFound"  # the next request already
    erased = (await walk.graphql("citizen/erase"))["requestErasure"]
    assert {count["kind"] for count in erased["counts"]} >= {"claims", "grants"}
    empty = (await walk.graphql("citizen/my-passport"))["me"]["passport"]
    assert empty["competences"] == [] and empty["selfDeclared"] == []


def test_run_py_runs_an_example_with_the_demo_token(
    live: str, settings: Settings, database_url: str, demo: None
) -> None:
    """examples/run.py as the README has it: it gets the token from `passport token demo`."""
    env = {
        **os.environ,
        "PASSPORT_DATA_DIR": str(settings.data_dir),
        "PASSPORT_DATABASE_URL": database_url,
        "BASE_URL": live,
    }
    env.pop("TOKEN", None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "run.py"), "admin/organisations"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    names = {o["name"] for o in json.loads(done.stdout)["data"]["organisations"]}
    assert "Demo Arbeidsbemiddeling" in names
    missing = subprocess.run(
        [sys.executable, str(EXAMPLES / "run.py"), "partner/revoke-claim", "--token", "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0 and "--set claimId=" in missing.stderr
