"""Turning GraphQL input values into Strawberry inputs, and those into plain mappings for the
domain layer's validation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

import strawberry
from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET, UnsetType


def plain(value: Any) -> Any:
    """Dataclass inputs to dicts, enums to their values, unset fields dropped."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not isinstance(getattr(value, f.name), UnsetType)
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


# -- building inputs -------------------------------------------------------------------------

Convert = Callable[[Any, InputContext], Any]
FromInput = Callable[[type, Mapping[str, Any], InputContext], Any]


class _NotCompiled(Exception):
    """A type this module does not build (``Maybe``, relay's ``GlobalID``): Strawberry does."""


def compile_inputs(schema: strawberry.Schema) -> None:
    """Give each input type of ``schema`` a builder that looks its fields up once.

    Strawberry builds an input object by looking at each of its fields' annotations again for
    every value (resolving the type, its name in GraphQL, whether it is a leaf): a claim's
    input took some 90 us to build, more than to check. The builder does what Strawberry's
    ``convert_argument`` does for the same value, with those answers looked up once per
    schema configuration (6 us), through the hook Strawberry gives for it
    (``StrawberryObjectDefinition.from_input``). Types it cannot build as Strawberry does
    (``Maybe`` fields, relay's ``GlobalID``) keep Strawberry's own conversion. It does not
    keep the value's path in the arguments (only ``strawberry.pydantic``'s hook reads it).
    ``tests/test_inputs.py`` holds both to equal objects on generated values of every input
    type, and on a schema of its own with the types left to Strawberry.
    """
    registry = schema.schema_converter.scalar_registry
    for concrete in list(schema.schema_converter.type_map.values()):
        definition = concrete.definition
        if not isinstance(definition, StrawberryObjectDefinition) or not definition.is_input:
            continue
        if definition.from_input is not None:  # built already, or by an integration
            continue
        try:
            _plan(definition, schema.config, registry)
        except _NotCompiled:
            continue
        definition.from_input = _builder(definition)


Plan = list[tuple[str, str, Convert]]  # (GraphQL name, Python name, converter) of each field


def _plan(
    definition: StrawberryObjectDefinition, config: Any, registry: Mapping[object, Any]
) -> Plan:
    return [
        (
            config.name_converter.from_field(f),
            f.python_name,
            _converter(f.resolve_type(type_definition=definition), registry),
        )
        for f in definition.fields
    ]


def _builder(definition: StrawberryObjectDefinition) -> FromInput:
    """The definition is shared by every schema of the process: each schema's configuration
    (its names, its scalars) gets a plan of its own, made at its first value."""
    required_none = {
        f.python_name: None
        for f in definition.fields
        if f.default_value is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    # By id(config), the config held so that the id stays its own; None: Strawberry's way.
    plans: dict[int, tuple[Any, Plan | None]] = {}

    def from_input(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        config = context.config
        found = plans.get(id(config))
        if found is None or found[0] is not config:
            try:
                plan: Plan | None = _plan(definition, config, context.scalar_registry)
            except _NotCompiled:
                plan = None
            found = plans[id(config)] = (config, plan)
        # As Strawberry: None for each field without a default, graphql-core having checked
        # that the required ones are given; the class's defaults for the others.
        kwargs: dict[str, Any] = dict(required_none)
        if found[1] is None:
            for f in definition.fields:
                name = config.name_converter.from_field(f)
                if name in value:
                    field_type = f.resolve_type(type_definition=definition)
                    kwargs[f.python_name] = context.convert(value[name], field_type, name)
            return cls(**kwargs)
        for name, python_name, convert in found[1]:
            if name in value:
                kwargs[python_name] = convert(value[name], context)
        return cls(**kwargs)

    return from_input


def _as_is(value: Any, _context: InputContext) -> Any:
    return value


def _converter(type_: Any, registry: Mapping[object, Any]) -> Convert:
    """``convert_argument``'s answer for values of ``type_``, with its questions answered now."""
    if isinstance(type_, StrawberryMaybe) or type_ is GlobalID:
        raise _NotCompiled(type_)
    if isinstance(type_, LazyType):
        return _converter(type_.resolve_type(), registry)
    if isinstance(type_, StrawberryOptional):
        return _converter(type_.of_type, registry)  # every converter passes None on
    if isinstance(type_, StrawberryList):
        of = type_.of_type
        inner_of = of.of_type if isinstance(of, StrawberryOptional) else of
        if _leaf(inner_of, registry):
            # Copied: graphql-core gives every request that omits it the same default list.
            return _nullable(lambda value, _context: list(value))
        item = _converter(of, registry)
        return _nullable(lambda value, context: [item(x, context) for x in value])
    if _leaf(type_, registry):
        return _as_is
    if has_object_definition(type_):
        nested = type_.__strawberry_definition__
        return _nullable(lambda value, context: _build(nested, type_, value, context))
    raise _NotCompiled(type_)


def _build(
    definition: StrawberryObjectDefinition, cls: type, value: Any, context: InputContext
) -> Any:
    """A nested input by its own builder, or by Strawberry where it has none."""
    if definition.from_input is not None:
        return definition.from_input(cls, value, context)
    return context.convert(value, cls)


def _nullable(convert: Convert) -> Convert:
    def converted(value: Any, context: InputContext) -> Any:
        if value is None or value is UNSET:
            return value
        return convert(value, context)

    return converted


def _leaf(type_: Any, registry: Mapping[object, Any]) -> bool:
    """Passed on as it is: a scalar or an enum, but relay's ``GlobalID``, which Strawberry
    decodes (a scalar to graphql-core)."""
    if isinstance(type_, LazyType):
        type_ = type_.resolve_type()
    if type_ is GlobalID:
        return False
    return bool(
        is_scalar(type_, registry)
        or isinstance(type_, StrawberryEnumDefinition)
        or has_enum_definition(type_)
    )
