"""Variables are checked before an operation is charged or run, and refused in the API's words.

graphql-core coerces variables only once execution begins, after the operation's whole cost was
taken from the caller's budget, though nothing then runs; and it speaks Python ("Expected value
of non-null type 'String!' not to be None", "to be a mapping") and quotes the value sent, which
may be a national number. Here the same coercion runs first (graphql-core's own, so what it
accepts is exactly what execution gets), and when it fails each problem is told as the path to
the value and what the schema asks there, never the value itself. A refusal then costs what any
refused request costs (service/api/graphql.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    get_operation_ast,
    is_required_input_field,
    type_from_ast,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.pyutils import Undefined

# Deeper than any input type of the schema nests; deeper values are refused, not walked.
MAX_DEPTH = 32
# A refusal lists at most this many problems: enough to fix a request, never a flood.
MAX_PROBLEMS = 20
# Field names echoed back only when they are GraphQL names (which no national number is).
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")

BUILT_IN = {
    "Int": "a whole number (32 bits)",
    "Float": "a number",
    "String": "a string",
    "Boolean": "true or false",
    "ID": "a string or a whole number",
}


def variable_errors(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> list[GraphQLError]:
    """The variables' problems, one error each; empty when the operation may run."""
    operation = get_operation_ast(document, operation_name)
    if operation is None or not operation.variable_definitions:
        return []
    given = dict(variables or {})
    if isinstance(coerced_variables(schema, operation, given), VariableValues):
        return []
    errors: list[GraphQLError] = []
    for definition in operation.variable_definitions:
        name = definition.variable.name.value
        type_ = type_from_ast(schema, definition.type)
        if type_ is None:  # validation refused the document before this
            continue
        value = given.get(name, Undefined)
        if value is Undefined and definition.default_value is not None:
            continue
        for path, reason in _problems(value, type_, [name], 0):  # type: ignore[arg-type]
            where = f" at {'.'.join(path)}" if len(path) > 1 else ""
            errors.append(GraphQLError(f"Variable ${name}{where}: {reason}.", definition))
            if len(errors) == MAX_PROBLEMS:
                return errors
    # graphql-core refused something this walk did not find: its words, without the values.
    return errors or [GraphQLError("The variables do not match the operation's types.")]


def coerced_variables(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
) -> VariableValues | list[GraphQLError]:
    """The operation's variables as execution will have them, or graphql-core's errors."""
    return get_variable_values(
        schema,
        operation.variable_definitions or (),
        dict(variables or {}),
        max_errors=MAX_PROBLEMS,
        hide_suggestions=True,
    )


def _problems(
    value: Any, type_: GraphQLInputType, path: list[str], depth: int
) -> Iterator[tuple[list[str], str]]:
    if depth > MAX_DEPTH:
        yield path, "nested too deeply"
        return
    if isinstance(type_, GraphQLNonNull):
        if value is Undefined:
            yield path, f"required ({type_})"
        elif value is None:
            yield path, f"must not be null ({type_})"
        else:
            yield from _problems(value, type_.of_type, path, depth)
        return
    if value is None or value is Undefined:
        return
    if isinstance(type_, GraphQLList):
        items = value if isinstance(value, list | tuple) else [value]  # one value is a list of one
        for index, item in enumerate(items):
            yield from _problems(item, type_.of_type, [*path, str(index)], depth + 1)
    elif isinstance(type_, GraphQLInputObjectType):
        yield from _object_problems(value, type_, path, depth)
    elif isinstance(type_, GraphQLEnumType):
        if not isinstance(value, str) or value not in type_.values:
            yield path, f"not a value of {type_.name}"
    elif isinstance(type_, GraphQLScalarType):
        yield from _scalar_problems(value, type_, path)


def _object_problems(
    value: Any, type_: GraphQLInputObjectType, path: list[str], depth: int
) -> Iterator[tuple[list[str], str]]:
    if not isinstance(value, dict):
        yield path, f"must be an object ({type_.name})"
        return
    for name in value:
        if name not in type_.fields:
            named = isinstance(name, str) and _NAME.fullmatch(name)
            yield path, f"{type_.name} has no field " + (name if named else "of that name")
    if type_.is_one_of:
        given = [name for name, item in value.items() if name in type_.fields]
        if len(given) != 1 or value[given[0]] is None:
            yield path, f"{type_.name} takes exactly one of its fields, and not null"
            return
    for name, field in type_.fields.items():
        item = value.get(name, Undefined)
        if item is Undefined and not is_required_input_field(field):
            continue
        yield from _problems(item, field.type, [*path, name], depth + 1)


def _scalar_problems(
    value: Any, type_: GraphQLScalarType, path: list[str]
) -> Iterator[tuple[list[str], str]]:
    try:
        accepted = type_.coerce_input_value(value)
    except GraphQLError as exc:
        # The schema's own scalars (service/schema/common.py) say what they take in fixed
        # words; the built-in ones quote the value, so they are told here instead.
        own = type_.name not in BUILT_IN
        yield path, exc.message.rstrip(".") if own else f"must be {BUILT_IN[type_.name]}"
        return
    except (TypeError, ValueError):
        accepted = Undefined
    if accepted is Undefined:
        yield path, f"must be {BUILT_IN.get(type_.name, 'a valid ' + type_.name)}"
