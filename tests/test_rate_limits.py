"""Per-client rate limits, weighted by what operations cost, and the per-operation cost cap."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from graphql import DocumentNode, parse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

import service.schema as schema_module
from service.app import create_app
from service.auth.keys import load_or_create_dev_key
from service.models import AccessRecord
from service.schema import build_schema, cost
from service.settings import Settings
from tests import factories
from tests.citizen_api import MY_GRANTS, MY_PASSPORT
from tests.graphql_client import Api, Partner
from tests.test_claims_api import issue

CHEAP = "query { me { grants { id } } }"
ACCESS_LOG_PAGE = "query($n: Int) { me { accessLog(first: $n) { edges { node { id } } } } }"
COSTLY = 'query($n: Int) { competences(search: "data", first: $n) { edges { node { uri } } } }'


def _limited(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(update=overrides)


@asynccontextmanager
async def limited_api(settings: Settings, **overrides: Any) -> AsyncIterator[Api]:
    """An app of its own, with its own limits and counters, on the suite's database."""
    configured = _limited(settings, **overrides)
    application = create_app(configured)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://limited") as http:
            yield Api(http=http, key=load_or_create_dev_key(settings.data_dir), settings=configured)


async def _spend_until_refused(api: Api, token: str, query: str, cap: int = 200) -> int:
    for served in range(cap):
        response = await api.post(token, query)
        if response.status_code == 429:
            return served
        assert response.status_code == 200, response.text
    raise AssertionError("never limited")


async def test_a_spent_budget_is_a_429_with_retry_after(
    settings: Settings, api: Api, school: Partner, engine: AsyncEngine
) -> None:
    citizen = factories.insz()
    await issue(api, school, factories.claim_input(citizen))
    async with limited_api(settings, rate_limits={"citizen": "60/minute"}) as limited:
        me = limited.citizen(citizen)
        body = await limited.gql(me, CHEAP)
        cheap = body["extensions"]["cost"]
        body = await limited.gql(me, MY_PASSPORT)
        costly = body["extensions"]["cost"]
        assert costly > cheap > 0
        served = await _spend_until_refused(limited, me, MY_PASSPORT)
        assert served == (60 - cheap - costly) // costly
        refused = await limited.post(me, MY_PASSPORT)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert refused.json()["data"] is None
        # Nothing ran: the refused reads are not in the log.
        async with engine.connect() as conn:
            reads = await conn.scalar(
                select(func.count())
                .select_from(AccessRecord)
                .where(
                    AccessRecord.citizen_id
                    == uuid.UUID(body["data"]["me"]["passport"]["citizenId"])
                )
            )
        assert reads == 1 + served
        # Another citizen has a budget of its own.
        assert (await limited.post(limited.citizen(factories.insz()), CHEAP)).status_code == 200


async def test_cheap_operations_go_further_than_costly_ones(settings: Settings) -> None:
    async with limited_api(settings, rate_limits={"citizen": "100/minute"}) as api:
        cheap = await _spend_until_refused(api, api.citizen(factories.insz()), MY_GRANTS)
        costly = await _spend_until_refused(api, api.citizen(factories.insz()), MY_PASSPORT)
        assert cheap > 2 * costly > 0


async def test_an_operation_over_the_cost_cap_runs_nothing(settings: Settings) -> None:
    async with limited_api(settings, graphql_max_cost=60) as api:
        me = api.citizen(factories.insz())
        ok = await api.gql(me, COSTLY, {"n": 5})
        assert "errors" not in ok, ok
        body = await api.gql(me, COSTLY, {"n": 100})
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"


async def test_rest_calls_are_limited_too(settings: Settings) -> None:
    async with limited_api(settings, rate_limits={"citizen": "100/minute"}) as api:
        me = api.citizen(factories.insz())
        headers = {"Authorization": f"Bearer {me}"}
        statuses = [
            (await api.http.get("/me/export", headers=headers)).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        refused = await api.http.get("/me/export", headers=headers)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "RATE_LIMITED"
        assert int(refused.headers["Retry-After"]) >= 1


def test_limits_are_checked_when_configured() -> None:
    partial = Settings(rate_limits={"citizen": "5/second"})
    assert partial.rate_limits["citizen"] == "5/second"
    assert partial.rate_limits["partner"] == "6000/minute"  # the others keep their default
    with pytest.raises(ValueError, match="not a rate limit"):
        Settings(rate_limits={"citizen": "lots"})
    with pytest.raises(ValueError, match="unknown principal kinds"):
        Settings(rate_limits={"robot": "1/second"})


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379 (optional backend)")
async def test_replicas_share_one_budget_through_redis(settings: Settings) -> None:
    """Two app instances, as two replicas would be, spend from the same budget."""
    shared: Callable[[], AbstractAsyncContextManager[Api]] = lambda: limited_api(  # noqa: E731
        settings,
        rate_limits={"citizen": "40/minute"},
        rate_limit_storage_uri="async+redis://127.0.0.1:6379/15",
    )
    citizen = factories.insz()
    async with shared() as first, shared() as second:
        me = first.citizen(citizen)
        spent = 0
        for api in (first, second) * 20:
            response = await api.post(me, CHEAP)
            if response.status_code == 429:
                break
            spent += response.json()["extensions"]["cost"]
        assert 0 < spent <= 40
        assert (await second.post(me, CHEAP)).status_code == 429


def _doubling_fragments(levels: int) -> str:
    """Each fragment spreads the next twice: 2**levels fields from a few hundred tokens."""
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ __typename }}")
    return "query { ...F0 } " + " ".join(fragments)


async def test_fragments_that_double_are_refused_at_once(api: Api) -> None:
    me = api.citizen(factories.insz())
    started = time.perf_counter()
    body = await api.gql(me, _doubling_fragments(24))
    elapsed = time.perf_counter() - started
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert elapsed < 1.0, f"took {elapsed:.2f}s"
    cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
    body = await api.gql(me, cycle)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION"


async def test_a_request_over_the_whole_budget_says_so(settings: Settings) -> None:
    """Waiting would never let it through: QUERY_TOO_COSTLY, not a 429 to retry."""
    async with limited_api(settings, rate_limits={"citizen": "20/minute"}) as api:
        body = await api.gql(api.citizen(factories.insz()), ACCESS_LOG_PAGE, {"n": 100})
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"


async def test_refused_requests_still_cost_something(settings: Settings) -> None:
    async with limited_api(settings, rate_limits={"citizen": "5/minute"}) as api:
        me = api.citizen(factories.insz())
        statuses = [(await api.post(me, "{ nonsense }")).status_code for _ in range(7)]
        assert statuses[:5] == [200] * 5  # GraphQL validation errors, each costing 1
        assert (await api.post(me, CHEAP)).status_code == 429


async def test_a_shared_store_out_of_reach_lets_requests_through_quickly(
    settings: Settings,
) -> None:
    """An outage of Redis must not become an outage of the register: served, within the
    store's timeout, and logged."""
    async with limited_api(
        settings,
        rate_limits={"citizen": "5/minute"},
        rate_limit_storage_uri="async+redis://127.0.0.1:1/0",  # nothing listens there
    ) as api:
        me = api.citizen(factories.insz())
        started = time.perf_counter()
        statuses = [(await api.post(me, CHEAP)).status_code for _ in range(8)]
        assert statuses == [200] * 8  # no budget can be kept, so none is enforced
        assert time.perf_counter() - started < 8 * 1.0


async def test_wrong_variables_cost_what_a_refused_request_costs(settings: Settings) -> None:
    """Nothing ran, so the operation's cost (here a page of 100) is not charged: 1, as any
    refusal. Five refused requests fit a budget of five; the next request has none left."""
    async with limited_api(settings, rate_limits={"citizen": "5/minute"}) as api:
        me = api.citizen(factories.insz())
        for _ in range(5):
            response = await api.post(me, ACCESS_LOG_PAGE, {"n": "a hundred"})
            assert response.status_code == 200
            body = response.json()
            assert body["errors"][0]["message"] == (
                "Variable $n: must be a whole number (32 bits)."
            )
            assert "cost" not in body.get("extensions", {})
        assert (await api.post(me, CHEAP)).status_code == 429


def test_a_cost_is_kept_per_document_only_while_it_reads_no_argument(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk runs once for a document whose cost no argument changes; a page size, from a
    variable or a literal, is read on every call."""
    schema = build_schema(settings)._schema
    walks: list[int] = []
    start = cost._Walk.__init__

    def counted(walk: Any, *args: Any) -> None:
        walks.append(1)
        start(walk, *args)

    monkeypatch.setattr(cost._Walk, "__init__", counted)
    fixed = parse("{ me { passport { citizenId } } }")
    paged = parse("query($n: Int!) { me { accessLog(first: $n) { edges { node { id } } } } }")
    literal = parse("{ me { accessLog(first: 3) { edges { node { id } } } } }")

    def of(document: Any, variables: dict[str, Any] | None = None) -> int:
        return cost.operation_cost(
            schema, document, operation_name=None, variables=variables, max_page=100, keep=True
        )

    assert of(fixed) == of(fixed) > 0
    assert len(walks) == 1
    assert of(paged, {"n": 5}) < of(paged, {"n": 50}) == of(paged, {"n": 50})
    assert of(literal) == of(literal)
    assert len(walks) == 1 + 3 + 2  # every call with an argument walked again
    unkept = parse("{ me { passport { citizenId } } }")  # a document not from the parse cache
    cost.operation_cost(schema, unkept, operation_name=None, variables=None, max_page=100)
    cost.operation_cost(schema, unkept, operation_name=None, variables=None, max_page=100)
    assert len(walks) == 1 + 3 + 2 + 2


async def test_a_known_document_is_neither_hashed_nor_walked_again(
    api: Api, school: Partner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing, validation and the size check are kept per document text; their caches know
    a document by identity, since graphql-core's nodes hash their whole tree."""
    query = "query($c: String!) { competences(search: $c, first: 1) { edges { node { uri } } } }"
    first = await api.gql(school.token, query, {"c": "python"})
    assert "errors" not in first, first

    def refused(*_: Any) -> int:
        raise AssertionError("a known document was hashed or walked again")

    monkeypatch.setattr(DocumentNode, "__hash__", refused)
    monkeypatch.setattr(schema_module, "validate", refused)
    monkeypatch.setattr(schema_module, "expanded_fields", refused)
    again = await api.gql(school.token, query, {"c": "python"})
    assert again == first


@pytest.mark.parametrize("limits", ["3/minute", "3/minute;1000/hour"])
async def test_a_refused_spend_takes_nothing_from_any_limit(
    settings: Settings, limits: str
) -> None:
    """One limit is spent by one atomic call to the store, several by testing all before
    taking from each; either way a refusal leaves every budget as it was."""
    from limits import parse_many

    from service.auth.principal import Principal
    from service.auth.ratelimit import RateLimiter
    from service.errors import RateLimited
    from service.models.enums import PrincipalKind

    limiter = RateLimiter(_limited(settings, rate_limits={"partner": limits}))
    caller = Principal(kind=PrincipalKind.PARTNER, subject="p", client_pk=uuid.uuid4())
    for _ in range(3):
        await limiter.spend(caller, 1)
    with pytest.raises(RateLimited) as refused:
        await limiter.spend(caller, 1)
    assert 1 <= refused.value.retry_after <= 60
    who = limiter.identity(caller)
    remaining = [
        (await limiter._strategy.get_window_stats(item, who)).remaining
        for item in parse_many(limits)
    ]
    assert remaining == [0, 997][: len(remaining)]


async def test_a_limit_filled_between_its_test_and_its_hit_refuses(settings: Settings) -> None:
    """Several limits are tested before any is taken; one that a concurrent request filled in
    between refuses when it is taken, rather than letting the request through uncounted."""
    from limits import parse_many

    from service.auth.principal import Principal
    from service.auth.ratelimit import RateLimiter
    from service.errors import RateLimited
    from service.models.enums import PrincipalKind

    limits = "100/minute;2/minute"
    limiter = RateLimiter(_limited(settings, rate_limits={"partner": limits}))
    caller = Principal(kind=PrincipalKind.PARTNER, subject="p", client_pk=uuid.uuid4())
    for _ in range(2):
        await limiter.spend(caller, 1)

    async def passed(*_: Any, **__: Any) -> bool:  # as if tested before the second filled up
        return True

    limiter._strategy.test = passed  # type: ignore[method-assign]
    with pytest.raises(RateLimited):
        await limiter.spend(caller, 1)
    who = limiter.identity(caller)
    remaining = [
        (await limiter._strategy.get_window_stats(item, who)).remaining
        for item in parse_many(limits)
    ]
    assert remaining == [97, 0]  # the first kept what it took; the second never overshot
