"""A corpus of hostile GraphQL requests, each refused over HTTP before the database or a resolver
sees it.

Every request goes through the ASGI app with the GraphQL settings production has (development
tools off: no introspection, no field suggestions, no GraphiQL; the default limits). For each one
the test counts what the app sent to PostgreSQL (SQLAlchemy's ``before_cursor_execute`` on the
app's engine, which ``exec_driver_sql`` goes through too), the connections it took from the pool
(which any raw asyncpg use, COPY included, needs first) and the fields graphql-core began to
execute (every resolver starts there). Each must be answered with a 4xx or a GraphQL error with a
stable ``extensions.code``, within a generous bound, and:

* for a citizen, whose token needs no lookup: no statement, no connection, no field;
* for a registered API client: the client-registry lookup every request of theirs costs, after the
  document was parsed and validated, and nothing else.

``PASSPORT_ABUSE_REPORT=path`` writes what each case got (status, code, statements, connections,
fields, milliseconds) to that file as a table.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from graphql import parse
from graphql.execution.executor import Executor
from sqlalchemy import event

import service.schema
from service.schema.cost import selection_depth
from service.settings import Settings
from service.strict_json import InvalidJson, strict_json
from tests import factories
from tests.conftest import make_partner
from tests.graphql_client import Api

BOUND_SECONDS = 5.0
VALIDATION = "GRAPHQL_VALIDATION"
TOO_COSTLY = "QUERY_TOO_COSTLY"


@dataclass(frozen=True)
class Sent:
    """One HTTP request; ``body`` is sent as it is."""

    body: bytes = b""
    method: str = "POST"
    content_type: str = "application/json"
    params: dict[str, str] = field(default_factory=dict)


def gql(query: str, variables: Any = None, **extra: Any) -> Sent:
    payload: dict[str, Any] = {"query": query, **extra}
    if variables is not None:
        payload["variables"] = variables
    return Sent(orjson.dumps(payload))


@dataclass(frozen=True)
class Abuse:
    """A hostile request (built when its test runs: some are megabytes) and its refusal."""

    build: Callable[[], Sent]
    status: int
    code: str | None  # of the first error; None: answered with data, harmlessly
    message: str = ""  # a fragment of the first error's message
    fields: frozenset[str] = frozenset()  # the only fields it may execute
    # Refused after the token was read (so a client is looked up, for a 401 or the refusal's
    # charge): anything answered with 200, and a document with no operation to run.
    after_token: bool = False

    @property
    def looked_up(self) -> bool:
        return self.status == 200 or self.after_token


def nested(depth: int, opening: str, closing: str, leaf: str) -> str:
    return opening * depth + leaf + closing * depth


def fields_deep(depth: int) -> str:
    """``me`` and then unknown fields, ``depth`` selection sets deep (the schema has no cycle,
    its deepest real path is 6)."""
    return "{ me { " + nested(depth - 1, "x { ", " }", "y") + " } }"


def inline_deep(depth: int) -> str:
    return "{ " + nested(depth, "... on Query { ", " }", "__typename") + " }"


def aliases(count: int, field_: str = "__typename") -> str:
    return " ".join(f"a{i}: {field_}" for i in range(count))


def multiplying_fragments(levels: int, spreads: int) -> str:
    """Each fragment spreads the next ``spreads`` times; the last holds ``spreads`` aliases:
    spreads ** (levels + 1) aliased fields from a few hundred tokens."""
    parts = ["query { ...F0 }"]
    for i in range(levels):
        parts.append(f"fragment F{i} on Query {{ {f' ...F{i + 1}' * spreads} }}")
    parts.append(f"fragment F{levels} on Query {{ {aliases(spreads)} }}")
    return " ".join(parts)


def nested_variables(depth: int, opening: bytes, closing: bytes) -> Sent:
    """``FILTERED`` with its filter nested ``depth`` deep, written by hand (orjson writes at
    most 255 levels)."""
    value = opening * depth + b'"ACTIVE"' + closing * depth
    return Sent(b'{"query": ' + orjson.dumps(FILTERED) + b', "variables": {"f": ' + value + b"}}")


FILTERED = "query($f: PassportFilter) { me { passport(filter: $f) { citizenId } } }"
PAGE = "query($n: Int!) { issuedClaims(first: $n) { edges { cursor } } }"
READ = "query($c: CitizenRef!) { passport(citizen: $c) { __typename } }"
ISSUE_MANY = (
    "mutation($i: [IssueClaimInput!]!) { "
    + " ".join(f"b{i}: issueClaims(inputs: $i) {{ __typename }}" for i in range(6))
    + " }"
)


CORPUS: dict[str, Abuse] = {
    # --- Depth: unknown fields below `me`, and inline fragments that nest without a field.
    **{
        f"depth-{n}-fields": Abuse(partial(gql, fields_deep(n)), 200, VALIDATION)
        for n in (10, 20, 50)
    },
    "depth-10-inline-fragments": Abuse(
        lambda: gql(inline_deep(10)), 200, None, fields=frozenset({"__typename"})
    ),
    **{
        f"depth-{n}-inline-fragments": Abuse(partial(gql, inline_deep(n)), 200, VALIDATION, "depth")
        for n in (20, 50)
    },
    "depth-1000-parser-nesting": Abuse(lambda: gql(fields_deep(1000)), 200, VALIDATION),
    # --- Aliases, plain and multiplied by fragment spreads.
    "aliases-100": Abuse(lambda: gql("{ " + aliases(100) + " }"), 200, VALIDATION, "aliases"),
    "aliases-10000": Abuse(lambda: gql("{ " + aliases(10_000) + " }"), 200, VALIDATION, "token"),
    "aliases-10000-of-a-costly-field": Abuse(
        lambda: gql("{ " + aliases(10_000, "me { grants { id } }") + " }"), 200, VALIDATION
    ),
    "aliases-10^11-via-10-fragments-spread-10-times": Abuse(
        lambda: gql(multiplying_fragments(10, 10)), 200, TOO_COSTLY
    ),
    "aliases-1000-via-2-fragments-spread-10-times": Abuse(
        lambda: gql(multiplying_fragments(2, 10)), 200, VALIDATION, "aliases"
    ),
    # --- Fragments that spread themselves, or nothing.
    "fragment-cycle-direct": Abuse(
        lambda: gql("query { ...A } fragment A on Query { __typename ...A }"), 200, VALIDATION
    ),
    "fragment-cycle-indirect": Abuse(
        lambda: gql(
            "query { ...A } fragment A on Query { ...B } fragment B on Query { ...C } "
            "fragment C on Query { ... on Query { ...A } }"
        ),
        200,
        VALIDATION,
    ),
    "fragment-unknown": Abuse(lambda: gql("query { ...Missing }"), 200, VALIDATION),
    "fragment-unknown-nested": Abuse(lambda: gql("query { me { ...Missing } }"), 200, VALIDATION),
    "fragment-unused": Abuse(
        lambda: gql("query { __typename } fragment F on Query { __typename }"), 200, VALIDATION
    ),
    # --- Size: tokens, batches, operations.
    "tokens-100000": Abuse(lambda: gql("{ " + "a " * 100_000 + "}"), 200, VALIDATION, "token"),
    "json-batch-1000": Abuse(
        lambda: Sent(orjson.dumps([{"query": "{ __typename }"}] * 1000)),
        400,
        "BATCHING_NOT_SUPPORTED",
    ),
    "operations-1000": Abuse(
        lambda: gql(" ".join(f"query Q{i} {{ __typename }}" for i in range(1000))),
        200,
        VALIDATION,
        "token",
    ),
    "operations-300-unnamed": Abuse(
        lambda: gql(" ".join(f"query Q{i} {{ __typename }}" for i in range(300))),
        200,
        VALIDATION,
        "operation name",
    ),
    "operations-300-unknown-name": Abuse(
        lambda: gql(
            " ".join(f"query Q{i} {{ __typename }}" for i in range(300)), operationName="Nope"
        ),
        400,
        "BAD_REQUEST",
        after_token=True,
    ),
    "operation-name-huge": Abuse(
        lambda: gql(f"query {'N' * 200_000} {{ __typename }}", operationName="N" * 200_000),
        400,
        "BAD_REQUEST",
    ),
    "operation-name-huge-in-document": Abuse(
        lambda: gql(f"query {'N' * 200_000} {{ __typename }}"), 200, VALIDATION, "name"
    ),
    "directives-300": Abuse(
        lambda: gql("{ __typename " + "@skip(if: false) " * 300 + "}"), 200, VALIDATION
    ),
    "directives-10000": Abuse(
        lambda: gql("{ __typename " + "@skip(if: false) " * 10_000 + "}"), 200, VALIDATION
    ),
    "cost-over-the-limit": Abuse(lambda: gql(ISSUE_MANY, {"i": []}), 200, TOO_COSTLY),
    # --- Variables.
    "variables-10MB-string": Abuse(
        lambda: gql(READ, {"c": {"insz": "x" * 10_000_000}}), 413, "PAYLOAD_TOO_LARGE"
    ),
    "variables-list-1e6": Abuse(
        lambda: gql(FILTERED, {"f": {"statuses": ["ACTIVE"] * 1_000_000}}),
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    "variables-nested-objects-10000": Abuse(
        lambda: nested_variables(10_000, b'{"statuses": ', b"}"),
        400,
        "BAD_REQUEST",
    ),
    "variables-nested-lists-10000": Abuse(
        lambda: nested_variables(10_000, b"[", b"]"), 400, "BAD_REQUEST"
    ),
    "variables-nested-objects-1000": Abuse(
        lambda: nested_variables(1000, b'{"statuses": ', b"}"),
        200,
        VALIDATION,
    ),
    "variables-nested-lists-1000": Abuse(
        lambda: nested_variables(1000, b"[", b"]"), 200, VALIDATION
    ),
    "variables-wrong-type-int": Abuse(lambda: gql(PAGE, {"n": "ten"}), 200, VALIDATION),
    "variables-wrong-type-object": Abuse(lambda: gql(READ, {"c": 42}), 200, VALIDATION),
    "variables-wrong-type-enum": Abuse(
        lambda: gql(FILTERED, {"f": {"statuses": ["ACTIVEE"]}}), 200, VALIDATION
    ),
    "variables-missing": Abuse(lambda: gql(READ, {}), 200, VALIDATION),
    "variables-int-beyond-64-bits": Abuse(
        lambda: Sent(
            b'{"query": "' + PAGE.encode() + b'", "variables": {"n": 1' + b"0" * 30 + b"}}"
        ),
        200,
        VALIDATION,
    ),
    "variables-1e400": Abuse(
        lambda: Sent(b'{"query": "' + PAGE.encode() + b'", "variables": {"n": 1e400}}'),
        400,
        "BAD_REQUEST",
    ),
    "variables-not-an-object": Abuse(lambda: gql(PAGE, "n=1"), 400, "BAD_REQUEST"),
    "literal-nested-lists-100": Abuse(
        lambda: gql(
            "{ me { passport(filter: {statuses: " + nested(100, "[", "]", "ACTIVE") + "}) "
            "{ citizenId } } }"
        ),
        200,
        VALIDATION,
    ),
    "literal-nested-lists-10000": Abuse(
        lambda: gql(
            "{ me { passport(filter: {statuses: "
            + nested(10_000, "[", "]", "ACTIVE")
            + "}) { citizenId } } }"
        ),
        200,
        VALIDATION,
    ),
    "literal-nested-objects-200": Abuse(
        lambda: gql(
            "{ me { passport(filter: "
            + nested(200, "{statuses: ", "}", "ACTIVE")
            + ") { citizenId } } }"
        ),
        200,
        VALIDATION,
    ),
    # --- Introspection and suggestions.
    "introspection-schema": Abuse(
        lambda: gql("{ __schema { types { name } } }"), 200, VALIDATION, "introspection"
    ),
    "introspection-type": Abuse(
        lambda: gql('{ __type(name: "Query") { fields { name } } }'),
        200,
        VALIDATION,
        "introspection",
    ),
    "introspection-aliased-in-fragment": Abuse(
        lambda: gql("query { ...F } fragment F on Query { s: __schema { queryType { name } } }"),
        200,
        VALIDATION,
        "introspection",
    ),
    "typename-only": Abuse(
        lambda: gql("{ __typename }"), 200, None, fields=frozenset({"__typename"})
    ),
    "suggest-field": Abuse(lambda: gql("{ me { passprt { citizenId } } }"), 200, VALIDATION),
    "suggest-root-field": Abuse(lambda: gql("{ pasport { __typename } }"), 200, VALIDATION),
    "suggest-argument": Abuse(
        lambda: gql('{ competences(serch: "x") { edges { cursor } } }'), 200, VALIDATION
    ),
    "suggest-type": Abuse(lambda: gql("query($f: PasportFilter) { __typename }"), 200, VALIDATION),
    "suggest-enum-literal": Abuse(
        lambda: gql('{ competences(search: "x", lang: NLL) { edges { cursor } } }'),
        200,
        VALIDATION,
    ),
    "suggest-input-field-literal": Abuse(
        lambda: gql("{ me { passport(filter: {statuse: [ACTIVE]}) { citizenId } } }"),
        200,
        VALIDATION,
    ),
    "suggest-input-field-variable": Abuse(
        lambda: gql(FILTERED, {"f": {"statuse": ["ACTIVE"]}}), 200, VALIDATION
    ),
    # --- The transport.
    "body-invalid-utf8": Abuse(
        lambda: Sent(b'{"query": "{ __typename \xff\xfe }"}'), 400, "BAD_REQUEST"
    ),
    "body-lone-surrogate": Abuse(
        lambda: Sent(b'{"query": "{ __typename }", "operationName": "\\ud800"}'),
        400,
        "BAD_REQUEST",
    ),
    "body-duplicate-keys": Abuse(
        lambda: Sent(b'{"query": "{ me { grants { id } } }", "query": "{ __typename }"}'),
        400,
        "BAD_REQUEST",
    ),
    "body-duplicate-variable-keys": Abuse(
        lambda: Sent(
            b'{"query": "' + READ.encode() + b'", '
            b'"variables": {"c": {"insz": "85073003328", "insz": "85073003328"}}}'
        ),
        400,
        "BAD_REQUEST",
    ),
    "body-not-json": Abuse(lambda: Sent(b"{ __typename }"), 400, "BAD_REQUEST"),
    "body-empty-document": Abuse(lambda: gql(""), 400, "BAD_REQUEST", after_token=True),
    "body-text-plain": Abuse(
        lambda: Sent(b"{ __typename }", content_type="text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE"
    ),
    "subscription": Abuse(lambda: gql("subscription { __typename }"), 200, VALIDATION),
    "get-with-query-string": Abuse(
        lambda: Sent(method="GET", params={"query": "{ __typename }"}),
        405,
        "METHOD_NOT_ALLOWED",
    ),
}


def chained_fragments(count: int, inline: int = 0) -> str:
    """Each fragment spreads the next, inside ``inline`` inline fragments."""
    opening, closing = "... on Query { " * inline, " }" * inline
    parts = ["query { ...F0 }"]
    for i in range(count):
        parts.append(f"fragment F{i} on Query {{ {opening}...F{i + 1}{closing} }}")
    parts.append(f"fragment F{count} on Query {{ __typename }}")
    return " ".join(parts)


CORPUS.update(
    {
        # graphql-core stops following spreads 200 deep; below that, harmless.
        "fragment-chain-150": Abuse(
            lambda: gql(chained_fragments(150)), 200, None, fields=frozenset({"__typename"})
        ),
        "fragment-chain-240": Abuse(lambda: gql(chained_fragments(240)), 200, VALIDATION),
        "fragment-chain-nesting-inline-fragments": Abuse(
            lambda: gql(chained_fragments(40, inline=2)), 200, VALIDATION, "depth"
        ),
        "comment-of-900KB": Abuse(lambda: gql("#" + "x" * 900_000 + "\n{ nope }"), 200, VALIDATION),
    }
)


@dataclass
class Probe:
    """What the app did during one request, in order: statements sent, connections taken,
    documents validated; and the fields graphql-core began to execute."""

    events: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)

    @property
    def statements(self) -> list[str]:
        return [e for e in self.events if e.startswith("sql:")]

    @property
    def connections(self) -> int:
        return self.events.count("connection")

    def clear(self) -> None:
        self.events.clear()
        self.fields.clear()


REGISTRY_LOOKUP = "sql:registry"  # resolve_principal's one statement: SELECT .. FROM api_clients


@pytest.fixture
def probe(app: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Probe]:
    engine = app.state.passport.engine.sync_engine  # type: ignore[attr-defined]
    seen = Probe()

    def statement(conn: object, cursor: object, sql: str, *args: object) -> None:
        seen.events.append(REGISTRY_LOOKUP if "FROM api_clients" in sql else f"sql:{sql}")

    # What goes straight to asyncpg (service/db/raw.py), seen as it is sent, like the rest:
    # statements, not the transactions' BEGIN and ROLLBACK (the cursor events never saw
    # those), and on checked-out connections only (a new one's setup is not the request's).
    checked_out: set[int] = set()
    control = ("BEGIN", "COMMIT", "ROLLBACK")
    for method in ("execute", "fetch", "fetchrow", "fetchval"):
        sent = getattr(asyncpg.Connection, method)

        def sending(self: Any, sql: str, *args: Any, _sent: Any = sent, **kwargs: Any) -> Any:
            if id(self) in checked_out and not sql.lstrip().upper().startswith(control):
                statement(self, None, sql)
            return _sent(self, sql, *args, **kwargs)

        monkeypatch.setattr(asyncpg.Connection, method, sending)

    def checkout(dbapi: Any, *args: object) -> None:
        checked_out.add(id(dbapi.driver_connection))
        seen.events.append("connection")

    def checkin(dbapi: Any, *args: object) -> None:
        checked_out.discard(id(dbapi.driver_connection))

    validate = service.schema.validate

    def validating(*args: Any, **kwargs: Any) -> Any:
        errors = validate(*args, **kwargs)
        seen.events.append("validated")
        return errors

    execute_field = Executor.execute_field

    def executing(self: Executor, parent: Any, source: Any, nodes: Any, *rest: Any) -> Any:
        seen.fields.append(nodes[0].node.name.value)
        return execute_field(self, parent, source, nodes, *rest)

    monkeypatch.setattr(service.schema, "validate", validating)
    monkeypatch.setattr(Executor, "execute_field", executing)
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)


@pytest.fixture(scope="module")
async def callers(api: Api) -> dict[str, str]:
    """A citizen (the token is the whole check) and a registered client (looked up in the
    client registry on every request): the least and the most the database must do."""
    partner = await make_partner(api, scopes=("CLAIMS_WRITE", "PASSPORTS_READ"))
    return {"citizen": api.citizen(factories.insz()), "client": partner.token}


@dataclass
class Record:
    case: str
    caller: str
    status: int
    code: str | None
    statements: int
    connections: int
    fields: list[str]
    milliseconds: float


RECORDS: list[Record] = []


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    target = os.environ.get("PASSPORT_ABUSE_REPORT")
    if target and RECORDS:
        lines = [
            "| case | caller | status | code | statements | connections | fields | ms |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {r.case} | {r.caller} | {r.status} | {r.code or '-'} | {r.statements} "
            f"| {r.connections} | {','.join(r.fields) or '-'} | {r.milliseconds:.1f} |"
            for r in RECORDS
        ]
        Path(target).write_text("\n".join(lines) + "\n")


async def send(api: Api, token: str | None, sent: Sent) -> tuple[httpx.Response, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if sent.method == "POST":
        headers["content-type"] = sent.content_type
    started = time.perf_counter()
    response = await api.http.request(
        sent.method, "/graphql", content=sent.body or None, params=sent.params, headers=headers
    )
    return response, time.perf_counter() - started


def test_the_app_has_production_graphql_settings(api: Api) -> None:
    """What production has for GraphQL, the tested app has too: no development tools (which
    production refuses) and the default limits."""
    defaults = Settings.model_fields
    assert api.settings.graphql_dev_tools is False
    for name in (
        "graphql_max_depth",
        "graphql_max_aliases",
        "graphql_max_tokens",
        "graphql_max_body_bytes",
        "graphql_max_cost",
        "graphql_max_fields",
        "max_page_size",
    ):
        assert getattr(api.settings, name) == defaults[name].default, name


@pytest.mark.parametrize("caller", ["citizen", "client"])
@pytest.mark.parametrize("name", list(CORPUS))
async def test_hostile_request_is_refused_before_the_database(
    name: str, caller: str, api: Api, callers: dict[str, str], probe: Probe
) -> None:
    abuse = CORPUS[name]
    sent = abuse.build()
    probe.clear()
    response, elapsed = await send(api, callers[caller], sent)
    body = response.json()
    errors = body.get("errors") or []
    code = errors[0]["extensions"]["code"] if errors else None
    RECORDS.append(
        Record(
            name,
            caller,
            response.status_code,
            code,
            len(probe.statements),
            probe.connections,
            list(probe.fields),
            elapsed * 1000,
        )
    )
    assert (response.status_code, code) == (abuse.status, abuse.code), body
    if abuse.message:
        assert abuse.message in errors[0]["message"].lower(), errors[0]
    assert "did you mean" not in response.text.lower()
    assert "unexpected" not in response.text.lower()
    if abuse.code is None:
        assert body["data"] == {"__typename": "Query"}
    assert set(probe.fields) <= abuse.fields, probe.fields
    if caller == "citizen" or not abuse.looked_up:
        assert probe.statements == [] and probe.connections == 0, probe.events
    else:  # the lookup, on a connection taken only once the document was checked
        assert probe.statements == [REGISTRY_LOOKUP], probe.events
        assert probe.connections == 1, probe.events
        if "validated" in probe.events:
            assert probe.events.index("validated") < probe.events.index("connection")
    assert elapsed < BOUND_SECONDS


async def test_a_valid_document_is_looked_up_after_validation_then_runs(
    api: Api, callers: dict[str, str], probe: Probe
) -> None:
    """The order holds for the documents that run as well: validate, look up, execute."""
    query = f"query Q{uuid.uuid4().hex} {{ issuedClaims(first: 1) {{ edges {{ cursor }} }} }}"
    response, _ = await send(api, callers["client"], gql(query))
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    assert probe.events[:3] == ["validated", "connection", REGISTRY_LOOKUP], probe.events
    assert probe.fields[0] == "issuedClaims"


async def test_unsigned_callers_are_refused_before_their_document_is_parsed(
    api: Api, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    parse = service.schema._parse_cached

    def parsing(query: str, **options: Any) -> Any:
        parsed.append(query)
        return parse(query, **options)

    monkeypatch.setattr(service.schema, "_parse_cached", parsing)
    hostile = gql(inline_deep(50))
    for token in ("not-a-jwt", api.token(subject="x", client_id="x")[:-4] + "AAAA"):
        response, elapsed = await send(api, token, hostile)
        assert response.status_code == 401, response.text
        assert elapsed < BOUND_SECONDS
    assert parsed == [] and probe.events == [] and probe.fields == []


async def test_callers_nobody_registered_get_401_for_any_document(api: Api, probe: Probe) -> None:
    """Signed, but naming no registered client, or an unknown share link: the document is checked
    first (no database), the lookup then finds nobody, and the answer is a 401 whatever the
    document was, so no one unauthenticated learns anything from validation."""
    unknown = api.token(subject="ghost", client_id="ghost-" + factories.ref())
    for token, lookups in ((unknown, [REGISTRY_LOOKUP]), ("psl_" + "x" * 40, None)):
        for document in (inline_deep(50), "{ issuedClaims(first: 1) { edges { cursor } } }"):
            probe.clear()
            response, _ = await send(api, token, gql(document))
            assert response.status_code == 401, response.text
            assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert len(probe.statements) == 1 and probe.fields == [], probe.events
            if lookups is not None:
                assert probe.statements == lookups


async def test_only_documents_of_ordinary_size_are_cached(
    api: Api, callers: dict[str, str]
) -> None:
    """A long comment or string is one token or none: without the size bound, 512 such
    documents of a megabyte each would stay in the parse and validation caches."""
    parse, validate = service.schema._parse_cached, service.schema._validate_cached
    before = parse.cache_info().currsize, validate.cache_info().currsize
    large = "# " + "x" * 100_000 + "\n{ __typename }"
    for _ in range(2):
        response, _ = await send(api, callers["citizen"], gql(large))
        assert response.json() == {"data": {"__typename": "Query"}}
    assert (parse.cache_info().currsize, validate.cache_info().currsize) == before
    small = f"query Q{uuid.uuid4().hex} {{ __typename }}"
    await send(api, callers["citizen"], gql(small))
    hits, misses = parse.cache_info().hits, parse.cache_info().misses
    await send(api, callers["citizen"], gql(small))
    # Parsed once: the second request took it from the cache (the transport's look at it
    # for a prepared read, then execution, service/api/graphql.py).
    assert parse.cache_info().misses == misses and parse.cache_info().hits > hits


@pytest.mark.parametrize(
    ("body", "duplicate"),
    [
        (b'{"a": 1, "b": {"a": 2}}', False),
        (b'{"a": 1, "a": 2}', True),
        (b'{"a": 1, "\\u0061": 2}', True),  # the same key, spelt another way
        (b'{"a": {"b": [{"c": 1}, {"c": 2, "c": 3}]}}', True),
        (b'{"a": "x\\": 1, \\"a\\": 2", "b": ":"}', False),  # colons and quotes in strings
        (b'{ "a" : [ "b" , { "c" :\n"d" } ] }', False),
        (b'{"q": "\\\\", "r": "\\\\\\""}', False),  # escaped backslashes end strings
    ],
)
def test_repeated_keys_are_found_wherever_they_are(body: bytes, duplicate: bool) -> None:
    if duplicate:
        with pytest.raises(InvalidJson, match="twice"):
            strict_json(body)
    else:
        assert strict_json(body) == orjson.loads(body)


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        ("{ a }", 0),
        ("{ a { b { c } } }", 2),
        ("{ ... on Q { a { b } } }", 2),  # an inline fragment is a level
        ("query { a { ...F } } fragment F on X { b { c { d } } }", 3),
        ("query { a { ...F ...F } b { c { d { e } } } } fragment F on X { x }", 3),
        ("query { ...A } fragment A on Q { ...B } fragment B on Q { a { ...A } }", 1),  # cycle
        ("query { a { ...Missing } }", 1),
        (inline_deep(12), 12),
        (inline_deep(13), 13),
        (inline_deep(50), 13),  # counted no further than the limit and one
    ],
)
def test_selection_depth(document: str, depth: int) -> None:
    assert selection_depth(parse(document), limit=12) == depth
