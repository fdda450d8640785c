"""Input objects are built by ``service.schema.inputs.compile_inputs``'s builders exactly as
Strawberry builds them: generated values of every input type of the schema, both ways."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    Undefined,
    coerce_input_value,
    is_required_input_field,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strawberry import relay
from strawberry.schema.config import StrawberryConfig
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryObjectDefinition

from service.schema import build_schema
from service.schema.inputs import compile_inputs
from service.settings import Settings

SCHEMA = build_schema(Settings())
INPUTS = {
    concrete.definition.name: concrete.definition
    for concrete in SCHEMA.schema_converter.type_map.values()
    if isinstance(concrete.definition, StrawberryObjectDefinition) and concrete.definition.is_input
}
SCALAR_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "String": st.text(max_size=8),
    "ID": st.text(max_size=8)
    | st.integers(0, 99)
    | st.builds(lambda n: str(relay.GlobalID("Node", str(n))), st.integers(0, 99)),
    "Int": st.integers(-(2**31), 2**31 - 1),
    "Float": st.floats(allow_nan=False, allow_infinity=False),
    "Boolean": st.booleans(),
    "Date": st.dates().map(lambda d: d.isoformat()),
    "DateTime": st.datetimes().map(lambda d: d.isoformat()),
    "JSON": st.recursive(
        st.none() | st.booleans() | st.integers(-99, 99) | st.text(max_size=4),
        lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=4,
    ),
}


def values(type_: GraphQLInputType, depth: int = 0) -> st.SearchStrategy[Any]:
    """JSON values for ``type_``, some of them null where it may be null."""
    if isinstance(type_, GraphQLNonNull):
        return _present(type_.of_type, depth)
    return st.none() | _present(type_, depth)


def _present(type_: Any, depth: int) -> st.SearchStrategy[Any]:
    if isinstance(type_, GraphQLList):
        return st.lists(values(type_.of_type, depth + 1), max_size=0 if depth > 3 else 3)
    if isinstance(type_, GraphQLEnumType):
        return st.sampled_from(sorted(type_.values))
    if isinstance(type_, GraphQLScalarType):
        return SCALAR_VALUES[type_.name]
    assert isinstance(type_, GraphQLInputObjectType)
    required, optional = {}, {}
    for name, field in type_.fields.items():
        if is_required_input_field(field):
            required[name] = values(field.type, depth + 1)
        elif depth <= 3:
            optional[name] = values(field.type, depth + 1)
    return st.fixed_dictionaries(required, optional=optional)


def inputs_of(schema: strawberry.Schema) -> dict[str, StrawberryObjectDefinition]:
    return {
        concrete.definition.name: concrete.definition
        for concrete in schema.schema_converter.type_map.values()
        if isinstance(concrete.definition, StrawberryObjectDefinition)
        and concrete.definition.is_input
    }


def strawberry_built(value: Any, cls: type, schema: strawberry.Schema = SCHEMA) -> Any:
    """What Strawberry builds with no builder of ours on any input type."""
    definitions = inputs_of(schema)
    saved = {name: definition.from_input for name, definition in definitions.items()}
    try:
        for definition in definitions.values():
            definition.from_input = None
        return _convert(value, cls, schema)
    finally:
        for name, definition in definitions.items():
            definition.from_input = saved[name]


def _convert(value: Any, cls: type, schema: strawberry.Schema = SCHEMA) -> Any:
    return convert_argument(value, cls, schema.schema_converter.scalar_registry, schema.config)


def _outcome(build: Callable[[], Any]) -> tuple[str, Any]:
    """What was built, or the error it raised (an id relay cannot decode)."""
    try:
        return "built", build()
    except Exception as exc:
        return "refused", (type(exc), str(exc))


def _built_alike(schema: strawberry.Schema, name: str, cls: type, examples: int = 60) -> list[Any]:
    """Generated values of the input type ``name`` built both ways; those compared."""
    graphql_type = schema._schema.get_type(name)
    assert isinstance(graphql_type, GraphQLInputObjectType)
    compared: list[Any] = []

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(values(GraphQLNonNull(graphql_type)))
    def built_alike(raw: Any) -> None:
        try:
            coerced = coerce_input_value(raw, graphql_type)
        except GraphQLError:
            return  # not a value of the type (a scalar's own rules): never reaches a resolver
        if coerced is Undefined:
            return
        ours = _outcome(lambda: _convert(coerced, cls, schema))
        theirs = _outcome(lambda: strawberry_built(coerced, cls, schema))
        assert ours == theirs
        assert repr(ours) == repr(theirs)  # the same classes all the way down
        if ours[0] == "built":
            compared.append(ours[1])

    built_alike()
    return compared


def test_every_input_type_has_a_builder() -> None:
    assert len(INPUTS) >= 20
    assert all(definition.from_input is not None for definition in INPUTS.values())


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_inputs_are_built_as_strawberry_builds_them(name: str) -> None:
    compared = _built_alike(SCHEMA, name, INPUTS[name].origin)
    assert len(compared) >= 20, "the generated values were mostly not of the type"


# A schema of the test's own: types the builders leave to Strawberry (a ``Maybe`` field, relay
# ids, each in a type a built one nests), and names as another configuration writes them.
@strawberry.input
class Leaf:
    label: str
    level: int | None = None


@strawberry.input
class WithMaybe:
    maybe: strawberry.Maybe[int | None]
    leaf: Leaf | None = None


@strawberry.input
class WithIds:
    ids: list[relay.GlobalID | None]


@strawberry.input
class Outer:
    snake_name: str | None = None
    tags: list[str] = strawberry.field(default_factory=list)
    leaves: list[Leaf] | None = None
    with_maybe: WithMaybe | None = None
    with_ids: WithIds | None = None


@strawberry.type
class _Query:
    @strawberry.field
    def echo(self, outer: Outer) -> str:
        return repr(outer)


@pytest.mark.parametrize("camel", [True, False])
def test_types_left_to_strawberry_and_other_configurations_are_built_alike(
    camel: bool,
) -> None:
    schema = strawberry.Schema(query=_Query, config=StrawberryConfig(auto_camel_case=camel))
    compile_inputs(schema)
    definitions = inputs_of(schema)
    assert definitions["Leaf"].from_input is not None
    assert definitions["Outer"].from_input is not None
    assert definitions["WithMaybe"].from_input is None  # Maybe: Strawberry's own
    assert definitions["WithIds"].from_input is None  # relay ids: Strawberry decodes them
    compared = _built_alike(schema, "Outer", Outer, examples=150)
    assert any(c.snake_name for c in compared)  # the name as this configuration writes it
    assert any(c.with_maybe and c.with_maybe.leaf for c in compared)
    ids = WithIds(ids=[relay.GlobalID("Node", "1"), None])
    raw = {"ids": [str(ids.ids[0]), None]}
    assert _convert(raw, WithIds, schema) == ids
