"""Schema-driven fuzzing of both contracts, as every kind of caller, against the real database.

REST: schemathesis generates requests (valid and schema-violating) from the committed
``openapi/openapi.json``; GraphQL: hypothesis-graphql generates queries and mutations (valid and
with one schema violation each) from the committed ``schema.graphql``, half of them with their
arguments sent as variables. Now and then a generated string or path parameter is swapped for a
real one (a claim, grant, organisation, citizen or export of this module's world), so that
operations also reach real rows, others' as well as the caller's own. Everything is sent
in-process to an app of this module's own (httpx over ASGI, so the app runs on the tests' event
loop with its asyncpg pool on the test database) as each principal: anonymous, citizen, partner
(a school issuing claims), reader (a public employment service with a legal basis and a
citizen's consent), admin and a share-link holder, each with a real signed token.

Every answer is checked:

- no 5xx, and no GraphQL error masked as ``INTERNAL`` (both mean an unexpected exception);
- no unmasked error: every GraphQL error and every problem document carries one of the typed,
  documented codes, and no answer shows a traceback, SQL, a driver, an exception class name or a
  national number quoted back in an error message;
- REST answers conform to the contract where schemathesis can tell (status code documented,
  content type, headers, body schema, schema-violating input refused);
- GraphQL answers have the shape the spec gives them: ``data`` and/or ``errors``, ``data`` keyed
  by the operation's root fields, each error a message with a code.

Hypothesis generates from a fixed seed per principal and API (``PASSPORT_FUZZ_SEED`` changes it);
failures are counted, not shrunk, so one run gives the whole table (the first examples of each
kind are in the assertion message). ``PASSPORT_FUZZ_OPERATIONS`` is the number of operations per
principal, half REST and half GraphQL: 80 in the quick run (CI). The long run, 10,000 per
principal, with the table printed and the counts written as JSON::

    PASSPORT_FUZZ_OPERATIONS=10000 PASSPORT_FUZZ_REPORT=/tmp/fuzz-report.json \\
        .venv/bin/pytest tests/test_schema_fuzz.py -s -q -p no:cacheprovider

The tests at the end check the checks: each kind of defect, as the service would show it, is
caught, and correct answers pass.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar

import graphql
import httpx
import hypothesis_graphql
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes
from hypothesis_graphql._strategies.negative_sites import enumerate_violation_sites
from schemathesis import Case, GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok

from service.app import create_app
from service.auth.keys import load_or_create_dev_key
from service.errors import ErrorCode
from service.models.enums import PrincipalKind
from service.settings import Settings
from tests import factories
from tests.citizen_api import grant
from tests.conftest import grant_basis, make_partner
from tests.graphql_client import Api
from tests.test_claims_api import issue

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
OPENAPI = ROOT / "openapi" / "openapi.json"
SDL = (ROOT / "schema.graphql").read_text()
BASE_URL = "http://testserver"
# In this order: the fuzzed admin may suspend the partner's or the reader's organisation or
# client (their ids are in the pool), so it comes after them; nothing it does reaches the link.
PRINCIPALS = ("anonymous", "citizen", "partner", "reader", "admin", "link")
QUICK_OPERATIONS = 80
# Per principal, half of them REST and half GraphQL.
OPERATIONS = int(os.environ.get("PASSPORT_FUZZ_OPERATIONS", QUICK_OPERATIONS))
PER_API = max(1, OPERATIONS // 2)
SEED = int(os.environ.get("PASSPORT_FUZZ_SEED", "20260601"))
REPORT = os.environ.get("PASSPORT_FUZZ_REPORT")
# A generous bound on one request: proves nothing hangs, times nothing.
REQUEST_TIMEOUT = 300.0

# Codes a GraphQL error may carry: the domain's, GraphQL's own validation, the mask of an
# unexpected error (counted apart), and the transport's refusals (service/api/graphql.py).
GRAPHQL_CODES = {code.value for code in ErrorCode} | {
    "GRAPHQL_VALIDATION",
    "INTERNAL",
    "BAD_REQUEST",
    "BATCHING_NOT_SUPPORTED",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "UNAVAILABLE",
}
GRAPHQL_STATUSES = {200, 400, 401, 413, 415, 429, 503}
# Codes a problem document may carry (service/api/problems.py and the routes' own refusals).
PROBLEM_CODES = {code.value for code in ErrorCode} | {
    "UNAVAILABLE",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "HTTP_ERROR",
    "INTERNAL",
}
PROBLEM = "application/problem+json"
JSON_MEDIA = re.compile(r"application/(?:[\w.-]+\+)?json")
# Internal detail that no answer may show; searched in the whole body.
LEAKS = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|sqlalchemy\.|asyncpg\.|"
    r"psycopg|\[SQL: |\(Background on this error|<class '|object at 0x[0-9a-f]+"
)
# Searched in error messages only: data may well speak of SQL (an ESCO skill does).
MESSAGE_LEAKS = re.compile(
    r"\b(?:[A-Z][A-Za-z]*(?:Error|Exception)|StopIteration)\b|"
    r"\b(?:SELECT|INSERT INTO|UPDATE|DELETE FROM)\b .* \b(?:FROM|WHERE|VALUES|SET)\b"
)
# GraphQL type names that end like exception classes are not leaks.
SCHEMA_NAMES = set(graphql.build_schema(SDL).type_map)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_: Any, value: Any) -> bytes:
    """The bulk routes take NDJSON; the contract types the body as a plain string."""
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


# --- Counting --------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one principal's operations against one API came to."""

    operations: int = 0
    server_errors: int = 0
    internal: int = 0
    unmasked: int = 0
    other: int = 0
    unsendable: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    # 401s of the wallet's credential endpoint, which wants the wallet's access token, not the
    # principal's: refusing any other token is its contract, whoever is fuzzing.
    wallet_token_refusals: int = 0
    # GraphQL: each error's code, or "data" for an answer without errors.
    codes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def fail(self, category: str, example: str) -> None:
        setattr(self, category, getattr(self, category) + 1)
        kept = self.examples.setdefault(category, [])
        if len(kept) < 5:
            kept.append(example[:2000])

    @property
    def failures(self) -> int:
        return self.server_errors + self.internal + self.unmasked + self.other

    def summary(self) -> dict[str, Any]:
        return {
            "operations": self.operations,
            "5xx": self.server_errors,
            "internal": self.internal,
            "unmasked": self.unmasked,
            "other_failures": self.other,
            "unsendable": self.unsendable,
            "seconds": round(self.seconds, 1),
            "statuses": dict(sorted(self.statuses.items())),
            "graphql_codes": dict(self.codes.most_common()),
        }


RESULTS: dict[str, dict[str, Tally]] = {}


def _table() -> str:
    header = f"{'principal':<10} {'api':<8} {'ops':>7} {'s':>6} {'5xx':>5} {'INTERNAL':>8} "
    header += f"{'unmasked':>8} {'other':>6}  statuses"
    lines = [header]
    for principal, apis in RESULTS.items():
        for api_name, tally in apis.items():
            statuses = " ".join(f"{s}:{n}" for s, n in sorted(tally.statuses.items()))
            if tally.codes:
                statuses += " | " + " ".join(f"{c}:{n}" for c, n in tally.codes.most_common(5))
            lines.append(
                f"{principal:<10} {api_name:<8} {tally.operations:>7} {tally.seconds:>6.0f} "
                f"{tally.server_errors:>5} "
                f"{tally.internal:>8} {tally.unmasked:>8} {tally.other:>6}  {statuses}"
            )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def report() -> Iterator[dict[str, dict[str, Tally]]]:
    """The table of every principal's counts, printed (see it with -s) and, with
    PASSPORT_FUZZ_REPORT, written as JSON for the README."""
    yield RESULTS
    if not RESULTS:
        return
    print("\n\nSchema fuzzing, operations per principal and API:\n" + _table())
    if REPORT:
        document = {
            "operations_per_principal": OPERATIONS,
            "seed": SEED,
            "results": {
                principal: {
                    **{api_name: t.summary() for api_name, t in apis.items()},
                    "total": {
                        key: sum(t.summary()[key] for t in apis.values())
                        for key in ("operations", "5xx", "internal", "unmasked", "other_failures")
                    },
                }
                for principal, apis in RESULTS.items()
            },
        }
        Path(REPORT).write_text(json.dumps(document, indent=2) + "\n")


# --- The app and its principals --------------------------------------------------------------


@dataclass
class Fuzzed:
    api: Api
    tokens: dict[str, str | None]
    # Real values to slip into generated operations in place of random ones, so that some
    # reach real rows: other callers' claims, grants, organisations, citizens, exports.
    strings: list[str]
    path_values: dict[str, list[str]]
    national_numbers: list[str]


@pytest.fixture(scope="module")
async def fuzzed(settings: Settings) -> AsyncIterator[Fuzzed]:
    """An app of its own, so the fuzzing spends no other test's rate limit (verifiers are
    limited per client address, and every ASGI request comes from the same one)."""
    unlimited = dict.fromkeys((kind.value for kind in PrincipalKind), "1000000/minute")
    application = create_app(settings.model_copy(update={"rate_limits": unlimited}))
    # Thousands of requests: their access lines would drown what matters (errors still log).
    quiet = {name: logging.getLogger(name) for name in ("passport.access", "httpx")}
    levels = {name: logger.level for name, logger in quiet.items()}
    for logger in quiet.values():
        logger.setLevel(logging.ERROR)
    try:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
                key = load_or_create_dev_key(settings.data_dir)
                yield await _world(Api(http=http, key=key, settings=settings))
    finally:
        for name, logger in quiet.items():
            logger.setLevel(levels[name])


async def _world(api: Api) -> Fuzzed:
    """Real tokens, with something behind each: the citizen holds claims, the reader has a
    legal basis and a consent, the link holder a live share link (another citizen's, so the
    fuzzed citizen erasing themselves leaves them standing)."""
    school = await make_partner(api)
    reader = await make_partner(api, kind="PUBLIC_EMPLOYMENT_SERVICE", scopes=("PASSPORTS_READ",))
    await grant_basis(api, reader)
    fuzzed_citizen, sharing_citizen = factories.insz(), factories.insz()
    claims = [
        (await issue(api, school, factories.claim_input(citizen, skill)))["claim"]["id"]
        for citizen in (fuzzed_citizen, sharing_citizen)
        for skill in (factories.PYTHON, factories.ENGLISH)
    ]
    sharing = api.citizen(sharing_citizen)
    consent = await grant(
        api, sharing, granteeKind="ORGANISATION", organisationId=str(reader.organisation_id)
    )
    link = await grant(api, sharing)
    citizen_ids = [
        (await api.gql(api.citizen(insz), "{ me { passport { citizenId } } }"))["data"]["me"][
            "passport"
        ]["citizenId"]
        for insz in (fuzzed_citizen, sharing_citizen)
    ]
    exported = await api.http.get(
        "/passports/me/credential", headers={"Authorization": f"Bearer {sharing}"}
    )
    assert exported.status_code == 200, exported.text
    export_code = exported.headers["location"].rsplit("/", 1)[-1]
    status_lists = sorted(set(re.findall(r"/credentials/status/(\d+)", exported.text)))
    organisations = [str(school.organisation_id), str(reader.organisation_id)]
    return Fuzzed(
        api=api,
        tokens={
            "anonymous": None,
            "citizen": api.citizen(fuzzed_citizen),
            "partner": school.token,
            "reader": reader.token,
            "admin": api.admin(),
            "link": link["shareLink"]["token"],
        },
        strings=[
            fuzzed_citizen,
            sharing_citizen,
            *claims,
            *citizen_ids,
            consent["grant"]["id"],
            link["grant"]["id"],
            *organisations,
            school.client_id,
            reader.client_id,
            *factories.SKILLS,
            factories.SKILL_GROUP,
            "http://data.europa.eu/esco/occupation/040fcfa5-24be-43eb-afd5-828297175b16",
            "GUIDANCE",
            export_code,
        ],
        path_values={
            "organisation_id": organisations,
            "code": [export_code],
            "list_id": status_lists,
        },
        national_numbers=[fuzzed_citizen, sharing_citizen],
    )


# --- Driving Hypothesis from a worker thread ---------------------------------------------------


async def drive(
    strategy: st.SearchStrategy[T],
    send: Callable[[T], Coroutine[Any, Any, None]],
    examples: int,
    key: str,
) -> None:
    """Hypothesis runs synchronously, so it runs in a thread and hands each example to the
    event loop the app and its connection pool live on."""
    loop = asyncio.get_running_loop()

    @seed(SEED ^ zlib.crc32(key.encode()))
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(strategy)
    def run(value: T) -> None:
        asyncio.run_coroutine_threadsafe(send(value), loop).result(timeout=REQUEST_TIMEOUT)

    await asyncio.to_thread(run)


# --- Checks shared by both APIs --------------------------------------------------------------


# Where answers put error messages: GraphQL errors and the typed error results (no other type
# has a `message`), problem documents and the bulk reports' rejected rows.
MESSAGE_KEYS = frozenset({"message", "title", "detail"})


def _messages(value: Any, keys: frozenset[str]) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in keys and isinstance(item, str):
                yield item
            else:
                yield from _messages(item, keys)
    elif isinstance(value, list):
        for item in value:
            yield from _messages(item, keys)


def leak(
    text: str, body: Any, hidden: Sequence[str], keys: frozenset[str] = frozenset({"message"})
) -> str | None:
    """The internal detail an answer shows, if any: also a national number quoted back in an
    error message (GraphQL's own messages quote the value sent; safe_message drops it)."""
    found = LEAKS.search(text)
    if found:
        return found.group(0)
    for message in _messages(body, keys):
        for number in hidden:
            if number in message:
                return f"a national number in {message!r}"
        for match in MESSAGE_LEAKS.finditer(message):
            if match.group(0) not in SCHEMA_NAMES:
                return f"{match.group(0)!r} in {message!r}"
    return None


def response_keys(query: str) -> set[str] | None:
    """The keys ``data`` must have for this document, when it names one plain operation."""
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    if len(operations) != 1:
        return None
    keys: set[str] = set()
    for selection in operations[0].selection_set.selections:
        if not isinstance(selection, graphql.FieldNode) or selection.directives:
            return None
        keys.add((selection.alias or selection.name).value)
    return keys


def check_graphql(
    tally: Tally, response: httpx.Response, query: str | None, label: str, hidden: Sequence[str]
) -> None:
    """The answer of POST /graphql: a typed transport error, or a spec-shaped result."""
    example = f"{label}\n-> {response.status_code} {response.text[:800]}"
    if response.status_code not in GRAPHQL_STATUSES:
        tally.fail("other", "undocumented status: " + example)
        return
    if not response.headers.get("content-type", "").startswith("application/json"):
        tally.fail("other", "not JSON: " + example)
        return
    body = response.json()
    if not isinstance(body, dict) or not set(body) <= {"data", "errors", "extensions"}:
        tally.fail("other", "not a GraphQL response: " + example)
        return
    errors = body.get("errors")
    if response.status_code == 200 and "data" not in body:
        tally.fail("other", "no data: " + example)
    if response.status_code != 200 and (not errors or body.get("data") is not None):
        tally.fail("other", "a refusal without its error: " + example)
    if errors is not None and not (isinstance(errors, list) and errors):
        tally.fail("other", "errors not a non-empty list: " + example)
        return
    codes = []
    for error in errors or []:
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            tally.fail("other", "an error without a message: " + example)
            return
        codes.append((error.get("extensions") or {}).get("code"))
    tally.codes.update([str(code) for code in codes] or ["data"])
    if "INTERNAL" in codes:
        tally.fail("internal", example)
    if any(code not in GRAPHQL_CODES for code in codes):
        tally.fail("unmasked", f"undocumented code {codes}: " + example)
        return
    found = leak(response.text, body, hidden)
    if found:
        tally.fail("unmasked", f"leaks {found}: " + example)
        return
    data = body.get("data")
    expected = response_keys(query) if query is not None else None
    if isinstance(data, dict) and expected is not None and set(data) != expected:
        tally.fail("other", f"data keys {sorted(data)} for {sorted(expected)}: " + example)
    elif data is not None and not isinstance(data, dict):
        tally.fail("other", "data neither null nor an object: " + example)


# The wallet's OAuth endpoints (service/api/wallet.py) and the codes they may answer.
OAUTH_ROUTES = ("/oid4vci/token", "/oid4vci/credential")
OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "unsupported_grant_type",
        "invalid_grant",
        "invalid_token",
        "invalid_credential_request",
        "unknown_credential_configuration",
        "unsupported_credential_format",
        "invalid_proof",
        "invalid_nonce",
        "credential_request_denied",
    }
)


def _oauth_route(label: str) -> bool:
    return any(f" {route} " in label or label.endswith(route) for route in OAUTH_ROUTES)


def check_problem(
    tally: Tally, response: httpx.Response, label: str, hidden: Sequence[str]
) -> None:
    """A REST answer: any problem document typed and consistent, nothing internal shown."""
    example = f"{label}\n-> {response.status_code} {response.text[:800]}"
    media_type = response.headers.get("content-type", "").partition(";")[0]
    body: Any = None
    if media_type in (PROBLEM, "application/json"):
        try:
            body = response.json()
        except ValueError:
            tally.fail("other", "JSON that does not parse: " + example)
            return
    if media_type == PROBLEM:
        if not isinstance(body, dict) or body.get("code") not in PROBLEM_CODES:
            tally.fail("unmasked", "undocumented problem: " + example)
            return
        if body.get("status") != response.status_code:
            tally.fail("other", "problem status differs from the response's: " + example)
    elif _oauth_route(label):
        # OAuth endpoints answer as RFC 6749 and OpenID4VCI say: {"error", "error_description"}
        if (
            response.status_code >= 400
            and response.status_code != 429
            and not (isinstance(body, dict) and body.get("error") in OAUTH_ERRORS)
        ):
            tally.fail("other", "an OAuth error that is not an OAuth error response: " + example)
    elif response.status_code >= 400 and media_type != "text/html":
        tally.fail("other", "an error that is not a problem document: " + example)
    if media_type != "application/pdf":
        # A problem's title and detail are messages too; in data, titles are content.
        keys = MESSAGE_KEYS if media_type == PROBLEM else frozenset({"message"})
        found = leak(response.text, body, hidden, keys)
        if found:
            tally.fail("unmasked", f"leaks {found}: " + example)


def count(tally: Tally, response: httpx.Response) -> bool:
    """Records the status; False for a server error, which is all there is to say about it."""
    tally.operations += 1
    tally.statuses[response.status_code] += 1
    return response.status_code < 500


# --- REST --------------------------------------------------------------------------------------

REST_CHECKS = [
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]
NEGATIVE_DATA_REJECTION = REST_CHECKS[-1]
_REQUEST_KEYS = ("method", "url", "headers", "params", "data", "json", "files")


# Typesetting a PDF takes the better part of a second here: drawn as often as the rest, it
# would take most of a long run's time for the same few code paths.
WEIGHTS = {"GET /passports/me/cv.pdf": 1, "GET /passports/me/credential": 2}


def rest_checks(case: Case) -> list[Any]:
    """All of them, but a raw text body (NDJSON, CSV) cannot violate its ``type: string`` on
    the wire: a "negative" one is text like any other, which the bulk routes answer row by row."""
    meta = case.meta
    body = meta.components.get(ParameterLocation.BODY) if meta is not None else None
    raw = case.media_type is not None and not JSON_MEDIA.fullmatch(case.media_type)
    if raw and body is not None and body.mode is GenerationMode.NEGATIVE:
        return [check for check in REST_CHECKS if check is not NEGATIVE_DATA_REJECTION]
    return REST_CHECKS


def rest_cases(world: Fuzzed) -> st.SearchStrategy[Case]:
    """Any operation of the contract, valid or not; now and then a valid one aimed at a real
    organisation, export or status list instead of a random one."""
    schema = schemathesis.openapi.from_path(OPENAPI)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the committed contract must load whole
        operations += [result.ok()] * WEIGHTS.get(result.ok().label, 4)
    modes = st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    generated = st.tuples(st.sampled_from(operations), modes).flatmap(
        lambda pair: pair[0].as_strategy(generation_mode=pair[1])
    )

    @st.composite
    def aimed(draw: st.DrawFn) -> Case:
        case = draw(generated)
        meta = case.meta
        if meta is None or meta.generation.mode is not GenerationMode.POSITIVE:
            return case  # a violation must stay one
        for name in list(case.path_parameters or {}):
            values = world.path_values.get(name)
            if values and draw(st.booleans()):
                case.path_parameters[name] = draw(st.sampled_from(values))
        if case.operation.path == "/verify" and draw(st.booleans()):
            case.body = {"exportId": draw(st.sampled_from(world.path_values["code"]))}
        rows = BULK_ROWS.get(case.operation.path)
        if rows and case.media_type == NDJSON and draw(st.booleans()):
            lines = draw(st.lists(rows(world), min_size=1, max_size=4))
            case.body = "".join(json.dumps(line) + "\n" for line in lines)
        return case

    return aimed()


# JSON values of every kind, to put where a bulk row's field should be.
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _damaged(row: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A well-formed row, or one with a field or two gone, replaced by any JSON, or added."""

    @st.composite
    def damage(draw: st.DrawFn) -> dict[str, Any]:
        damaged = dict(row)
        for _ in range(draw(st.integers(0, 2))):
            name = draw(st.sampled_from([*row, "extra"]))
            if draw(st.booleans()):
                damaged[name] = draw(_json)
            else:
                damaged.pop(name, None)
        return damaged

    return damage()


def _claim_rows(world: Fuzzed) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(
        st.sampled_from(world.national_numbers), st.sampled_from(factories.SKILLS), st.uuids()
    ).flatmap(
        lambda drawn: _damaged(
            factories.claim_input(drawn[0], drawn[1], externalRef=f"fuzz-{drawn[2]}")
        )
    )


def _opportunity_rows(world: Fuzzed) -> st.SearchStrategy[dict[str, Any]]:
    return st.uuids().flatmap(
        lambda ref: _damaged(
            {
                "externalRef": f"fuzz-{ref}",
                "title": "Fuzzed course",
                "mode": "ONLINE",
                "language": "nl",
                "url": "https://example.org/fuzzed",
                "competenceUris": [factories.PYTHON],
            }
        )
    )


NDJSON = "application/x-ndjson"
# The bulk routes' bodies are typed as plain strings: left to schemathesis, hardly a row would
# parse. Half the valid cases get rows like a partner's instead, some of them damaged.
BULK_ROWS: dict[str, Callable[[Fuzzed], st.SearchStrategy[dict[str, Any]]]] = {
    "/claims:bulk": _claim_rows,
    "/learning-opportunities:bulk": _opportunity_rows,
}


def wire_request(case: Case, token: str | None) -> requests.PreparedRequest:
    """The request exactly as schemathesis would put it on the wire (requests prepares it,
    no network involved): query strings and bodies encoded the same way."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    return requests.Request(**{k: v for k, v in kwargs.items() if k in _REQUEST_KEYS}).prepare()


async def send_rest(world: Fuzzed, tally: Tally, case: Case, token: str | None) -> None:
    api = world.api
    try:
        prepared = wire_request(case, token)
        headers = {
            name: value if isinstance(value, str) else value.decode("latin-1")
            for name, value in prepared.headers.items()
            if name.lower() != "content-length"  # httpx counts the body itself
        }
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        if body is not None and not isinstance(body, bytes):
            raise TypeError("a streamed body")
        request = api.http.build_request(
            prepared.method or "GET", prepared.url or "", headers=headers, content=body
        )
    except (ValueError, TypeError, UnicodeError):  # no HTTP client could send it
        tally.unsendable += 1
        return
    response = await api.http.send(request)
    label = f"{case.operation.label} {request.url} body={(body or b'')[:300]!r}"
    if not count(tally, response):
        tally.fail("server_errors", f"{label}\n-> {response.status_code} {response.text[:800]}")
        return
    if case.operation.path in OAUTH_ROUTES and response.status_code == 401:
        tally.wallet_token_refusals += 1
    if case.operation.path == "/graphql":
        check_graphql(tally, response, None, label, world.national_numbers)
    else:
        check_problem(tally, response, label, world.national_numbers)
    try:
        case.validate_response(response, checks=rest_checks(case))
    except FailureGroup as group:
        for failure in group.exceptions:
            tally.fail(
                "other",
                f"{failure.title}: {label}\n-> {response.status_code} {response.text[:300]}",
            )


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_rest_fuzz(
    fuzzed: Fuzzed, report: dict[str, dict[str, Tally]], principal: str
) -> None:
    tally = report.setdefault(principal, {}).setdefault("rest", Tally())
    token = fuzzed.tokens[principal]
    started = time.monotonic()

    async def send(case: Case) -> None:
        await send_rest(fuzzed, tally, case, token)

    await drive(rest_cases(fuzzed), send, PER_API, "rest:" + principal)
    tally.seconds = time.monotonic() - started
    print(f"\nREST as {principal}: {tally.operations} in {tally.seconds:.1f} s")
    assert tally.operations > 0
    assert tally.failures == 0, json.dumps(tally.examples, indent=1)
    if principal != "anonymous":  # fuzzed as who it says, not as nobody
        assert tally.statuses[401] == tally.wallet_token_refusals, tally.statuses


# --- GraphQL -----------------------------------------------------------------------------------

SCHEMA = graphql.build_schema(SDL)
ROOTS = [root for root in (SCHEMA.query_type, SCHEMA.mutation_type) if root is not None]
ROOT_FIELDS = sorted(name for root in ROOTS for name in root.fields)
# Root fields below which NEGATIVE mode finds something to violate, by hypothesis-graphql's
# own reckoning (it refuses to draw for any other).
NEGATABLE = {
    site.path[0].field_name for root in ROOTS for site in enumerate_violation_sites(SCHEMA, root)
}
_dates = st.dates().map(lambda d: d.isoformat())
_datetimes = st.datetimes(timezones=st.sampled_from([UTC, None])).map(lambda d: d.isoformat())
SCALARS: dict[str, st.SearchStrategy[graphql.ValueNode]] = {
    # Mostly well-formed, sometimes anything: the scalars' own parsing is fuzzed too.
    "Date": st.one_of(_dates, _dates, _dates, st.text(max_size=12)).map(nodes.String),
    "DateTime": st.one_of(_datetimes, _datetimes, _datetimes, st.text(max_size=30)).map(
        nodes.String
    ),
    "JSON": st.one_of(
        st.integers().map(nodes.Int), st.text(max_size=20).map(nodes.String), st.just(nodes.Null)
    ),
}


def graphql_documents() -> st.SearchStrategy[graphql.DocumentNode]:
    """Mostly one root field per document (so most operations get past the cost and depth
    limits and reach a resolver), sometimes any selection of them; valid or with one
    schema violation."""
    modes = st.sampled_from([hypothesis_graphql.Mode.POSITIVE, hypothesis_graphql.Mode.NEGATIVE])
    fields = st.sampled_from(ROOT_FIELDS)
    single = st.tuples(fields, modes).flatmap(
        lambda pair: hypothesis_graphql.from_schema(
            SCHEMA,
            fields=[pair[0]],
            custom_scalars=SCALARS,
            print_ast=_document,
            mode=pair[1] if pair[0] in NEGATABLE else hypothesis_graphql.Mode.POSITIVE,
        )
    )
    whole = modes.flatmap(
        lambda mode: hypothesis_graphql.from_schema(
            SCHEMA, custom_scalars=SCALARS, print_ast=_document, mode=mode
        )
    )
    return st.one_of(single, single, single, single, whole)


def _document(document: graphql.DocumentNode) -> graphql.DocumentNode:
    return document


class _Rewrite(graphql.Visitor):
    """Puts real values in place of some generated strings, and moves every argument into a
    variable when asked (variables are coerced by other code, with other error messages)."""

    def __init__(self, type_info: graphql.TypeInfo, draw: st.DrawFn, strings: list[str]):
        super().__init__()
        self.type_info, self.draw, self.strings = type_info, draw, strings
        self.variables: dict[str, Any] = {}
        self.definitions: list[graphql.VariableDefinitionNode] = []
        self.lift = draw(st.booleans())

    def enter_string_value(self, node: graphql.StringValueNode, *_: Any) -> Any:
        expected = graphql.get_named_type(self.type_info.get_input_type())
        if expected is None or expected.name not in ("String", "ID"):
            return None  # an enum's or a custom scalar's: the pool has none of those
        if self.strings and self.draw(st.integers(0, 2)) == 0:
            return graphql.StringValueNode(value=self.draw(st.sampled_from(self.strings)))
        return None

    def leave_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
        argument = self.type_info.get_argument()
        if not self.lift or argument is None or isinstance(node.value, graphql.VariableNode):
            return None
        name = graphql.NameNode(value=f"v{len(self.variables)}")
        self.variables[name.value] = graphql.value_from_ast_untyped(node.value)
        variable = graphql.VariableNode(name=name)
        self.definitions.append(
            graphql.VariableDefinitionNode(
                variable=variable, type=graphql.parse_type(str(argument.type))
            )
        )
        return graphql.ArgumentNode(name=node.name, value=variable)


def graphql_operations(world: Fuzzed) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    documents = graphql_documents()

    @st.composite
    def operation(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
        document = draw(documents)
        type_info = graphql.TypeInfo(SCHEMA)
        rewrite = _Rewrite(type_info, draw, world.strings)
        document = graphql.visit(document, graphql.TypeInfoVisitor(type_info, rewrite))
        if rewrite.definitions:
            definitions = []
            for definition in document.definitions:
                if isinstance(definition, graphql.OperationDefinitionNode):
                    definition = graphql.OperationDefinitionNode(
                        operation=definition.operation,
                        name=definition.name,
                        variable_definitions=tuple(rewrite.definitions),
                        directives=definition.directives,
                        selection_set=definition.selection_set,
                    )
                definitions.append(definition)
            document = graphql.DocumentNode(definitions=tuple(definitions))
        return graphql.print_ast(document), rewrite.variables

    return operation()


async def send_graphql(
    world: Fuzzed, tally: Tally, operation: tuple[str, dict[str, Any]], token: str | None
) -> None:
    query, variables = operation
    response = await world.api.post(token, query, variables)
    label = f"{query[:1500]}\nvariables: {json.dumps(variables)[:500]}"
    if not count(tally, response):
        tally.fail("server_errors", f"{label}\n-> {response.status_code} {response.text[:800]}")
        return
    check_graphql(tally, response, query, label, world.national_numbers)


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_graphql_fuzz(
    fuzzed: Fuzzed, report: dict[str, dict[str, Tally]], principal: str
) -> None:
    tally = report.setdefault(principal, {}).setdefault("graphql", Tally())
    token = fuzzed.tokens[principal]
    started = time.monotonic()

    async def send(operation: tuple[str, dict[str, Any]]) -> None:
        await send_graphql(fuzzed, tally, operation, token)

    await drive(graphql_operations(fuzzed), send, PER_API, "graphql:" + principal)
    tally.seconds = time.monotonic() - started
    print(f"\nGraphQL as {principal}: {tally.operations} in {tally.seconds:.1f} s")
    assert tally.operations > 0
    assert tally.failures == 0, json.dumps(tally.examples, indent=1)
    if principal != "anonymous":  # fuzzed as who it says, not as nobody
        assert tally.statuses[401] == 0, tally.statuses


# --- The oracle itself ---------------------------------------------------------------------------
# A check that can never fail proves nothing: each kind of defect the fuzzing looks for, as the
# service would show it, must be caught, and a correct answer must pass.

NUMBER = "85073003328"


def _answer(status: int, body: Any, media_type: str = "application/json") -> httpx.Response:
    return httpx.Response(status, json=body, headers={"content-type": media_type})


def _error(message: str, code: str = "GRAPHQL_VALIDATION") -> dict[str, Any]:
    return {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}


@pytest.mark.parametrize(
    ("status", "body", "category"),
    [
        (200, _error("Unexpected error.", "INTERNAL"), "internal"),
        (200, _error("boom", "KeyError"), "unmasked"),
        (200, _error('Traceback (most recent call last):\n  File "x.py", line 3'), "unmasked"),
        (200, _error("(sqlalchemy.exc.DataError) invalid input [SQL: SELECT 1]"), "unmasked"),
        (200, _error("ValueError: day is out of range for month"), "unmasked"),
        (200, _error(f"Variable '$c' got invalid value {NUMBER}"), "unmasked"),
        (200, {"data": {"me": None}}, "other"),  # not the field that was asked for
        (200, {"errors": [{"message": "x", "extensions": {"code": "NOT_FOUND"}}]}, "other"),
        (200, {"result": 1}, "other"),
        (200, {"data": None, "errors": []}, "other"),
        (401, {"data": {"claim": None}}, "other"),  # a refusal without its error
        (418, _error("teapot", "BAD_REQUEST"), "other"),
    ],
)
def test_graphql_oracle_catches(status: int, body: Any, category: str) -> None:
    tally = Tally()
    response = _answer(status, body)
    check_graphql(tally, response, '{ claim(id: "x") { id } }', "example", [NUMBER])
    assert getattr(tally, category) == 1, tally
    assert tally.failures == 1, tally


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"claim": None}},
        {"data": {"claim": {"__typename": "NotFound", "code": "NOT_FOUND", "message": "no"}}},
        # GraphQL's own messages name schema types, some of which end in "Error"-like words.
        _error("Cannot query field 'x' on type 'ValidationFailed'."),
        _error("this operation costs 900, more than 500", "QUERY_TOO_COSTLY"),
    ],
)
def test_graphql_oracle_passes_answers(body: Any) -> None:
    tally = Tally()
    check_graphql(tally, _answer(200, body), '{ claim(id: "x") { id } }', "example", [NUMBER])
    assert tally.failures == 0, tally.examples


@pytest.mark.parametrize(
    ("status", "body", "media_type", "category"),
    [
        (404, {"status": 404, "code": "NoResultFound", "title": "x"}, PROBLEM, "unmasked"),
        (422, {"status": 400, "code": "VALIDATION_FAILED", "title": "x"}, PROBLEM, "other"),
        (400, {"detail": "bad"}, "application/json", "other"),  # an error, not a problem
        (
            200,
            {"rows": [{"message": "IntegrityError: duplicate key"}]},
            "application/json",
            "unmasked",
        ),
        (
            422,
            {"status": 422, "code": "VALIDATION_FAILED", "title": f"bad {NUMBER}"},
            PROBLEM,
            "unmasked",
        ),
        (
            422,
            {"status": 422, "code": "VALIDATION_FAILED", "title": "invalid request"},
            PROBLEM,
            None,
        ),
        (200, {"title": f"course for {NUMBER}"}, "application/json", None),  # data, not a message
        (404, "<html>Not found</html>", "text/html", None),
    ],
)
def test_problem_oracle(status: int, body: Any, media_type: str, category: str | None) -> None:
    tally = Tally()
    check_problem(tally, _answer(status, body, media_type), "example", [NUMBER])
    if category is None:
        assert tally.failures == 0, tally.examples
    else:
        assert getattr(tally, category) == 1, tally.examples
        assert tally.failures == 1, tally.examples
