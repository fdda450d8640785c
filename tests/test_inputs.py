"""Input objects are built by ``service.schema.inputs.compile_inputs``'s builders exactly as
Strawberry builds them: generated values of every input type of the schema, both ways."""

from __future__ import annotations

from typing import Any

import pytest
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
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryObjectDefinition

from service.schema import build_schema
from service.settings import Settings

SCHEMA = build_schema(Settings())
INPUTS = {
    concrete.definition.name: concrete.definition
    for concrete in SCHEMA.schema_converter.type_map.values()
    if isinstance(concrete.definition, StrawberryObjectDefinition) and concrete.definition.is_input
}
SCALAR_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "String": st.text(max_size=8),
    "ID": st.text(max_size=8) | st.integers(0, 99),
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


def strawberry_built(value: Any, cls: type) -> Any:
    """What Strawberry builds with no builder of ours on any input type."""
    saved = {name: definition.from_input for name, definition in INPUTS.items()}
    try:
        for definition in INPUTS.values():
            definition.from_input = None
        return _convert(value, cls)
    finally:
        for name, definition in INPUTS.items():
            definition.from_input = saved[name]


def _convert(value: Any, cls: type) -> Any:
    return convert_argument(value, cls, SCHEMA.schema_converter.scalar_registry, SCHEMA.config)


def test_every_input_type_has_a_builder() -> None:
    assert len(INPUTS) >= 20
    assert all(definition.from_input is not None for definition in INPUTS.values())


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_inputs_are_built_as_strawberry_builds_them(name: str) -> None:
    graphql_type = SCHEMA._schema.get_type(name)
    assert isinstance(graphql_type, GraphQLInputObjectType)
    cls = INPUTS[name].origin
    compared: list[Any] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(values(GraphQLNonNull(graphql_type)))
    def built_alike(raw: Any) -> None:
        try:
            coerced = coerce_input_value(raw, graphql_type)
        except GraphQLError:
            return  # not a value of the type (a scalar's own rules): never reaches a resolver
        if coerced is Undefined:
            return
        ours, theirs = _convert(coerced, cls), strawberry_built(coerced, cls)
        assert ours == theirs
        assert repr(ours) == repr(theirs)  # the same classes all the way down
        compared.append(ours)

    built_alike()
    assert len(compared) >= 20, "the generated values were mostly not of the type"
