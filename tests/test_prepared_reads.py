"""A prepared passport read (service/schema/prepared.py) answers exactly as Strawberry's
execution of the same document: every passport-shaped operation of the examples and of the
fuzz corpus (tests/test_compiled_reads.py's world and callers), run with the prepared path and
without it, gives byte-identical HTTP answers, identical access records, the same cost taken
once from the caller's budget and the same operation metric; so do refusals, variables that do
not fit, a rate limit and an unexpected error, which the prepared path hands to Strawberry."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import graphql
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api import graphql as endpoint
from service.auth.principal import Principal
from service.auth.ratelimit import RateLimiter
from service.errors import RateLimited
from service.schema import prepared
from service.schema.passports import compiled, queries
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
        run, spend = prepared.run, RateLimiter.spend

        async def counted_run(*args: Any, **kwargs: Any) -> Any:
            result = await run(*args, **kwargs)
            self.answered += result is not None
            return result

        async def counted_spend(limiter: RateLimiter, principal: Principal, cost: int) -> None:
            await spend(limiter, principal, cost)
            self.spent.append(cost)

        monkeypatch.setattr(endpoint, "prepared_read", counted_run)
        monkeypatch.setattr(RateLimiter, "spend", counted_spend)


def _metric() -> float:
    value = REGISTRY.get_sample_value(
        "passport_graphql_operation_duration_seconds_count",
        {"operation": "passport", "type": "query"},
    )
    return value or 0.0


async def both_ways(
    api: Api,
    app_settings: Settings,
    engine: AsyncEngine,
    still: list[datetime],
    taken: Taken,
    token: str,
    query: str,
    variables: dict[str, Any] | None = None,
) -> tuple[bytes, bool]:
    """The operation through Strawberry (which also prepares it) and then prepared, at one
    moment: the same status, bytes, access records, budget taken and metric; returns the answer
    and whether the prepared path gave it."""
    still[0] += timedelta(seconds=1)
    answers, records, spent, observed = [], [], [], []
    answered = taken.answered
    try:
        for prepared_reads in (False, True):
            app_settings.prepared_reads = prepared_reads
            before = {r["id"] for r in await _records(engine, still[0])}
            taken.spent.clear()
            metric = _metric()
            response = await api.post(token, query, variables)
            answers.append((response.status_code, response.content))
            records.append([r for r in await _records(engine, still[0]) if r["id"] not in before])
            spent.append(list(taken.spent))
            observed.append(_metric() - metric)
    finally:
        app_settings.prepared_reads = True
    assert answers[0] == answers[1], (query, answers[0][1][:2000], answers[1][1][:2000])
    assert _without_ids(records[0]) == _without_ids(records[1]), query
    assert spent[0] == spent[1], (query, spent)
    assert observed[0] == observed[1], (query, observed)
    return answers[0][1], taken.answered > answered


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
    api: Api,
    settings: Settings,
    engine: AsyncEngine,
    still: list[datetime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = Taken(monkeypatch)
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
        _, answered = await both_ways(api, settings, engine, still, taken, token, query, variables)
        eligible += _one_passport(query)
        fast += answered
    # Each answer the prepared path gave was the same; and it gave every one it may give
    # (none of these selections reads a variable).
    assert eligible >= 10 and fast == eligible, (eligible, fast)


async def test_refusals_and_errors_answer_alike_and_cost_once(
    api: Api,
    settings: Settings,
    engine: AsyncEngine,
    still: list[datetime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = Taken(monkeypatch)
    world = await _world(api)
    reader = world.reader.token
    legal = {"c": {"insz": world.citizen}, "basis": "GUIDANCE"}
    answer, answered = await both_ways(api, settings, engine, still, taken, reader, READ, legal)
    assert answered and b'"competences":[{' in answer, answer[:300]
    # Refused in the domain (no such legal basis, a stranger, a grant that shows nothing):
    # the prepared path hands them to Strawberry, which charges nothing more.
    for variables in (
        {"c": {"insz": world.citizen}, "basis": "NO-SUCH-BASIS"},
        {"c": {"insz": factories.insz()}, "basis": "GUIDANCE"},
        {"c": {"insz": factories.insz()}, "basis": None},
        {"c": {"insz": world.empty}, "basis": None},
    ):
        answer, answered = await both_ways(
            api, settings, engine, still, taken, reader, READ, variables
        )
        assert not answered or b'"competences"' in answer, answer[:300]
    # Variables that do not fit: refused before anything is charged or run.
    unfit: list[dict[str, Any]] = [{"c": {"insz": 7}}, {"c": {"nope": "x"}}, {}]
    for variables in unfit:
        answer, answered = await both_ways(
            api, settings, engine, still, taken, reader, READ, variables
        )
        assert not answered and b'"errors"' in answer, answer[:300]
    # A citizen reading someone else's passport, and a token that names nobody.
    await both_ways(api, settings, engine, still, taken, api.citizen(world.citizen), READ, legal)
    await both_ways(api, settings, engine, still, taken, "not-a-token", READ, legal)

    # The caller's budget spent: 429 either way, and nothing run.
    async def refuse(limiter: RateLimiter, principal: Principal, cost: int) -> None:
        raise RateLimited("slow down", retry_after=3)

    monkeypatch.setattr(RateLimiter, "spend", refuse)
    answer, answered = await both_ways(api, settings, engine, still, taken, reader, READ, legal)
    assert not answered and b"RATE_LIMITED" in answer, answer[:300]
    monkeypatch.undo()
    taken = Taken(monkeypatch)

    # An unexpected error in the read: Strawberry's masked answer, nothing recorded.
    read = queries.read_passport

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(queries, "read_passport", failing)
    monkeypatch.setattr(prepared, "read_passport", failing)
    answer, answered = await both_ways(api, settings, engine, still, taken, reader, READ, legal)
    assert not answered and b'"INTERNAL"' in answer, answer[:300]
    monkeypatch.setattr(queries, "read_passport", read)
    monkeypatch.setattr(prepared, "read_passport", read)
    _, answered = await both_ways(api, settings, engine, still, taken, reader, READ, legal)
    assert answered


async def test_a_failed_prepared_read_keeps_nothing(
    api: Api,
    settings: Settings,
    engine: AsyncEngine,
    still: list[datetime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The compiled statement recorded the read, then the prepared path failed: that record is
    rolled back, and Strawberry's run of the request records the read once."""
    taken = Taken(monkeypatch)
    world = await _world(api)
    legal = {"c": {"insz": world.citizen}, "basis": "GUIDANCE"}
    await both_ways(api, settings, engine, still, taken, world.reader.token, READ, legal)
    statement, calls = compiled.Selection.__call__, []

    async def fails_once(self: compiled.Selection, *args: Any, **kwargs: Any) -> Any:
        built = await statement(self, *args, **kwargs)
        calls.append(len(built))
        if len(calls) == 1:
            raise RuntimeError("lost after the statement")
        return built

    monkeypatch.setattr(compiled.Selection, "__call__", fails_once)
    still[0] += timedelta(seconds=1)
    answered = taken.answered
    before = {r["id"] for r in await _records(engine, still[0])}
    body = await api.gql(world.reader.token, READ, legal)
    assert body["data"]["mine"]["competences"], body
    assert calls == [1, 1] and taken.answered == answered  # Strawberry gave the answer
    assert len([r for r in await _records(engine, still[0]) if r["id"] not in before]) == 1
