"""A prepared passport read (service/schema/prepared.py) answers exactly as Strawberry's
execution of the same document: every passport-shaped operation of the examples and of the
fuzz corpus (tests/test_compiled_reads.py's world and callers), run with the prepared path and
without it, gives byte-identical HTTP answers, identical access records, the same cost taken
once from the caller's budget and the same operation metric; so do refusals, variables that do
not fit, a rate limit and an unexpected error, which the prepared path hands to Strawberry."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import graphql
import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api import graphql as endpoint
from service.app import create_app
from service.auth import resolve
from service.auth.principal import Principal
from service.auth.ratelimit import RateLimiter
from service.errors import NotFound, RateLimited
from service.passports import service as passports
from service.schema import prepared
from service.schema.passports import compiled
from service.settings import Settings
from tests import factories
from tests.graphql_client import Api
from tests.test_compiled_reads import (
    EXAMPLES,
    _as_callers,
    _fuzzed,
    _records,
    _token,
    _variables,
    _without_ids,
    _world,
    still,
)

__all__ = ["still"]  # the clock fixture, shared with the compiled reads' tests

READ = """query Read($c: CitizenRef!, $basis: String) {
  mine: passport(citizen: $c, purpose: "checking the prepared read", legalBasis: $basis) {
    __typename ... on Passport { citizenId basis competences { competence { uri } claims { id } } }
    ... on Error { code message }
  }
}"""


class Taken:
    """Which requests the prepared path answered, and what each request took from budgets."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answered = 0
        self.spent: list[int] = []
        self.reads = 0  # of the domain's passport read: once a request, either way
        run, spend, read = prepared.run, RateLimiter.spend, passports.read_passport

        async def counted_run(*args: Any, **kwargs: Any) -> Any:
            result = await run(*args, **kwargs)
            self.answered += result is not None
            return result

        async def counted_spend(limiter: RateLimiter, principal: Principal, cost: int) -> None:
            await spend(limiter, principal, cost)
            self.spent.append(cost)

        async def counted_read(*args: Any, **kwargs: Any) -> Any:
            self.reads += 1
            return await read(*args, **kwargs)

        monkeypatch.setattr(endpoint, "prepared_read", counted_run)
        monkeypatch.setattr(RateLimiter, "spend", counted_spend)
        monkeypatch.setattr(passports, "read_passport", counted_read)


def _metric(what: str = "count") -> float:
    value = REGISTRY.get_sample_value(
        f"passport_graphql_operation_duration_seconds_{what}",
        {"operation": "passport", "type": "query"},
    )
    return value or 0.0


@dataclasses.dataclass
class Both:
    """Runs an operation both ways (``__call__``) in the suite's app, at the held clock."""

    api: Api
    settings: Settings
    engine: AsyncEngine
    still: list[datetime]
    taken: Taken

    async def __call__(
        self, token: str, query: str, variables: dict[str, Any] | None = None
    ) -> tuple[bytes, bool]:
        """The operation through Strawberry (which also prepares it) and then prepared, at one
        moment: the same status, bytes, access records, budget taken, metric and domain reads;
        returns the answer and whether the prepared path gave it."""
        taken, still = self.taken, self.still
        still[0] += timedelta(seconds=1)
        answers, records, spent, observed, reads = [], [], [], [], []
        answered = taken.answered
        try:
            for prepared_reads in (False, True):
                self.settings.prepared_reads = prepared_reads
                before = {r["id"] for r in await _records(self.engine, still[0])}
                taken.spent.clear()
                metric, read = _metric(), taken.reads
                response = await self.api.post(token, query, variables)
                answers.append((response.status_code, response.content))
                after = await _records(self.engine, still[0])
                records.append([r for r in after if r["id"] not in before])
                spent.append(list(taken.spent))
                observed.append(_metric() - metric)
                reads.append(taken.reads - read)
        finally:
            self.settings.prepared_reads = True
        assert answers[0] == answers[1], (query, answers[0][1][:2000], answers[1][1][:2000])
        assert _without_ids(records[0]) == _without_ids(records[1]), query
        assert spent[0] == spent[1], (query, spent)
        assert observed[0] == observed[1], (query, observed)
        assert reads[0] == reads[1], (query, reads)  # a refusal is not read again
        return answers[0][1], taken.answered > answered


@pytest.fixture
def both(
    api: Api,
    settings: Settings,
    engine: AsyncEngine,
    still: list[datetime],
    monkeypatch: pytest.MonkeyPatch,
) -> Both:
    return Both(api, settings, engine, still, Taken(monkeypatch))


def _one_passport(query: str) -> bool:
    """One ``passport`` root field without directives: what the prepared path may take."""
    [operation] = [
        d
        for d in graphql.parse(query).definitions
        if isinstance(d, graphql.OperationDefinitionNode)
    ]
    roots = operation.selection_set.selections
    return (
        len(roots) == 1
        and isinstance(roots[0], graphql.FieldNode)
        and roots[0].name.value == "passport"
        and not roots[0].directives
    )


async def test_examples_and_fuzzed_selections_answer_alike(
    api: Api, both: Both, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await _world(api)
    runs: list[tuple[str, str, dict[str, Any] | None]] = [
        (_token(api, world, name), query, _variables(operation, world))
        for name, query in EXAMPLES
        for operation in graphql.parse(query).definitions
        if isinstance(operation, graphql.OperationDefinitionNode)
    ]
    for document in _fuzzed():
        runs.extend(_as_callers(api, world, document))
    eligible = fast = 0
    for token, query, variables in runs:
        _, answered = await both(token, query, variables)
        eligible += _one_passport(query)
        fast += answered
    # Each answer the prepared path gave was the same; and it gave every one it may give
    # (none of these selections reads a variable).
    assert eligible >= 10 and fast == eligible, (eligible, fast)


async def test_refusals_and_errors_answer_alike_and_cost_once(
    api: Api, both: Both, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await _world(api)
    reader = world.reader.token
    legal = {"c": {"insz": world.citizen}, "basis": "GUIDANCE"}
    answer, answered = await both(reader, READ, legal)
    assert answered and b'"competences":[{' in answer, answer[:300]
    # Refused in the domain (no such legal basis, a stranger, a grant that shows nothing):
    # the prepared path hands them to Strawberry, which charges nothing more.
    for variables in (
        {"c": {"insz": world.citizen}, "basis": "NO-SUCH-BASIS"},
        {"c": {"insz": factories.insz()}, "basis": "GUIDANCE"},
        {"c": {"insz": factories.insz()}, "basis": None},
        {"c": {"insz": world.empty}, "basis": None},
    ):
        answer, answered = await both(reader, READ, variables)
        assert not answered or b'"competences"' in answer, answer[:300]
    # Variables that do not fit: refused before anything is charged or run.
    unfit: list[dict[str, Any]] = [{"c": {"insz": 7}}, {"c": {"nope": "x"}}, {}]
    for variables in unfit:
        answer, answered = await both(reader, READ, variables)
        assert not answered and b'"errors"' in answer, answer[:300]
    # A citizen with nothing recorded yet reads their own: a view completed field by field.
    newcomer = factories.insz()
    answer, answered = await both(api.citizen(newcomer), READ, {"c": {"insz": newcomer}})
    assert not answered and b'"competences":[]' in answer, answer[:300]
    # A citizen reading someone else's passport, and a token that names nobody.
    await both(api.citizen(world.citizen), READ, legal)
    await both("not-a-token", READ, legal)

    # The caller's budget spent: 429 either way, and nothing run.
    async def refuse(limiter: RateLimiter, principal: Principal, cost: int) -> None:
        raise RateLimited("slow down", retry_after=3)

    counting = RateLimiter.spend
    monkeypatch.setattr(RateLimiter, "spend", refuse)
    answer, answered = await both(reader, READ, legal)
    assert not answered and b"RATE_LIMITED" in answer, answer[:300]
    monkeypatch.setattr(RateLimiter, "spend", counting)

    # An unexpected error in the read: Strawberry's masked answer, nothing recorded.
    read = passports.read_passport

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(passports, "read_passport", failing)
    answer, answered = await both(reader, READ, legal)
    assert not answered and b'"INTERNAL"' in answer, answer[:300]
    monkeypatch.setattr(passports, "read_passport", read)
    _, answered = await both(reader, READ, legal)
    assert answered


async def test_a_read_that_fails_after_recording_keeps_nothing(
    api: Api, both: Both, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled statement recorded the read, then the read failed: either way the
    resolver answers the error and the record is rolled back; the statement ran once."""
    world = await _world(api)
    legal = {"c": {"insz": world.citizen}, "basis": "GUIDANCE"}
    await both(world.reader.token, READ, legal)
    statement, calls = compiled.Selection.__call__, []

    async def fails(self: compiled.Selection, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(await statement(self, *args, **kwargs)))
        raise RuntimeError("lost after the statement")

    monkeypatch.setattr(compiled.Selection, "__call__", fails)
    before = {r["id"] for r in await _records(both.engine, both.still[0] + timedelta(seconds=1))}
    answer, _ = await both(world.reader.token, READ, legal)
    assert b'"INTERNAL"' in answer and calls == [1, 1], (answer[:300], calls)
    assert not [r for r in await _records(both.engine, both.still[0]) if r["id"] not in before]


async def test_an_error_looking_up_the_caller_is_answered_alike(
    api: Api, both: Both, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client registry failed: Strawberry's answer (200, masked), not a transport error."""
    world = await _world(api)
    legal = {"c": {"insz": world.citizen}, "basis": "GUIDANCE"}
    await both(world.reader.token, READ, legal)

    async def timeout(*args: Any, **kwargs: Any) -> Any:
        raise asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout")

    monkeypatch.setattr(resolve, "_registered_client", timeout)
    answer, answered = await both(world.reader.token, READ, legal)
    assert not answered and b'"INTERNAL"' in answer, answer[:300]


async def test_a_document_is_prepared_for_the_schema_that_accepted_it(
    api: Api, settings: Settings
) -> None:
    """Another app's schema, with a lower depth limit, refuses what the suite's accepted."""
    world = await _world(api)
    legal = {"c": {"insz": world.citizen}, "basis": "GUIDANCE"}
    assert "errors" not in await api.gql(world.reader.token, READ, legal)  # prepared here
    strict = settings.model_copy(update={"graphql_max_depth": 2, "prepared_reads": True})
    app = create_app(strict)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        for _ in range(2):  # the second time the document is known to this schema too
            response = await http.post(
                "/graphql",
                json={"query": READ, "variables": legal},
                headers={"Authorization": f"Bearer {world.reader.token}"},
            )
            assert b"maximum depth of 2" in response.content, response.content[:300]


async def test_a_handed_over_read_is_timed_from_its_start(
    api: Api, both: Both, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read the prepared path began and Strawberry answered counts in the operation's
    duration as a read Strawberry ran throughout."""
    world = await _world(api)
    legal = {"c": {"insz": world.citizen}, "basis": "GUIDANCE"}
    await both(world.reader.token, READ, legal)

    async def slow_refusal(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.2)
        raise NotFound("no passport to show")

    monkeypatch.setattr(passports, "read_passport", slow_refusal)
    spent = []
    for prepared_reads in (False, True):
        both.settings.prepared_reads = prepared_reads
        before = _metric("sum")
        assert "errors" not in await api.gql(world.reader.token, READ, legal)
        spent.append(_metric("sum") - before)
    both.settings.prepared_reads = True
    assert all(seconds >= 0.2 for seconds in spent), spent
