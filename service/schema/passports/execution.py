"""A passport's subtree completed by a plan compiled once per document, not field by field.

graphql-core completes every field of a result on its own: a resolve info, a path, the
resolver through Strawberry's wrapper, then the type checks of ``complete_value`` (some 8 µs a
field here). A 50-claim passport has 2,000 fields; all of them read plain attributes of views
loaded in one statement, and none can await. So for a ``Passport`` value the executor asks
``plan_for`` for a plan: per object type and selection, which attribute each response key
reads and how its value is completed. Plans are compiled with graphql-core's own
``collect_subfields`` (fragments, aliases, ``@skip``/``@include``) and kept across requests,
keyed by the identity of the parsed document's nodes (the parser cache hands the same ones
out for the same text).

A plan does exactly what graphql-core would, or nothing: it refuses to compile for anything
it does not reproduce (abstract types, ``is_type_of``, async or context-reading resolvers,
field extensions, middleware, deferral), and while running it gives up on anything short of a
plain answer (a null in a non-null position, a value that is no list, a resolver that
raises). Giving up raises ``Fallback``, and the executor completes the same value its usual
way, so errors and their paths come from graphql-core as before. Resolvers in a plan are pure
reads of the view, so running one again changes nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from keyword import iskeyword
from operator import attrgetter
from typing import Any

from graphql import (
    DirectiveNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
)
from graphql.execution.collect_fields import FieldDetails, collect_subfields
from graphql.execution.values import get_argument_values
from graphql.pyutils import Undefined
from graphql.type.introspection import TypeNameMetaFieldDef
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

Completer = Callable[[Any], Any]
MAX_PLANS = 512
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_IMMUTABLE = (str, int, float, bool, Enum, type(None))


class Fallback(Exception):
    """The plan cannot give graphql-core's answer for this value: complete it the usual way."""


class NotCompilable(Exception):
    """Something in the selection a plan does not reproduce."""


class Field:
    """One response key of an object plan: how its value is read and completed."""

    __slots__ = ("attribute", "complete", "fast", "name", "read")

    def __init__(
        self,
        name: str,
        read: Callable[[Any], Any],
        complete: Completer,
        *,
        attribute: str | None = None,
        fast: tuple[Any, ...] | None = None,
    ) -> None:
        self.name = name
        self.read = read
        self.attribute = attribute  # read is getattr of this: inlined
        self.complete = complete
        self.fast = fast  # a leaf whose answer the generated code knows without a call


class ObjectPlan:
    """Completes one object type for one selection, by a function generated for it: each field
    read as an attribute and, for strings, booleans, ints and enums, its answer taken inline;
    everything else through its completer."""

    __slots__ = ("fields", "run")

    def __init__(self) -> None:
        # Filled after construction, so a type that contains itself could refer to its plan.
        self.fields: list[Field] = []
        self.run: Callable[[Any], dict[str, Any]] = self._generate

    def __call__(self, source: Any) -> dict[str, Any]:
        return self.run(source)

    def _generate(self, source: Any) -> dict[str, Any]:
        self.run = _generated(self.fields)
        return self.run(source)


def _generated(fields: list[Field]) -> Callable[[Any], dict[str, Any]]:
    namespace: dict[str, Any] = {"_int_min": _INT_MIN, "_int_max": _INT_MAX}
    lines, entries = [], []
    for i, field in enumerate(fields):
        value, complete = f"v{i}", f"c{i}"
        namespace[complete] = field.complete
        if field.attribute is not None:
            lines.append(f"    {value} = source.{field.attribute}")
        else:
            namespace[f"r{i}"] = field.read
            lines.append(f"    {value} = r{i}(source)")
        fast = field.fast
        if fast is None:
            expression = f"{complete}({value})"
        elif fast[0] == "int":
            expression = (
                f"({value} if {value}.__class__ is int and _int_min <= {value} <= _int_max "
                f"else {complete}({value}))"
            )
        elif fast[0] == "enum":
            namespace[f"k{i}"], namespace[f"n{i}"] = fast[1], fast[2]
            expression = f"(n{i}[{value}] if {value}.__class__ is k{i} else {complete}({value}))"
        else:  # str or bool: the answer is the value itself
            expression = f"({value} if {value}.__class__ is {fast[0]} else {complete}({value}))"
        entries.append(f"        {field.name!r}: {expression},")
    source = "\n".join(
        ["def run(source):", *lines, "    return {", *entries, "    }"]
        if fields
        else ["def run(source):", "    return {}"]
    )
    exec(compile(source, "<passport plan>", "exec"), namespace)  # noqa: S102 - our own text
    run: Callable[[Any], dict[str, Any]] = namespace["run"]
    return run


class _Entry:
    __slots__ = ("nodes", "plan")

    def __init__(self, nodes: tuple[FieldNode, ...], plan: ObjectPlan | None) -> None:
        self.nodes = nodes  # held, so their ids are not reused while the entry lives
        self.plan = plan


_plans: OrderedDict[tuple[int, ...], _Entry] = OrderedDict()


def plan_for(
    executor: Any, return_type: GraphQLObjectType, field_details_list: list[FieldDetails]
) -> ObjectPlan | None:
    """The plan for completing ``return_type`` with this selection; None: not compilable."""
    nodes = tuple(detail.node for detail in field_details_list)
    key = (id(return_type), *map(id, nodes))
    entry = _plans.get(key)
    if entry is not None:
        _plans.move_to_end(key)
        return entry.plan
    try:
        compiler = _Compiler(executor)
        plan = compiler.object_plan(return_type, field_details_list)
        cacheable = not compiler.uses_variables
    except NotCompilable:
        plan, cacheable = None, True
    if cacheable:
        _plans[key] = _Entry(nodes, plan)
        if len(_plans) > MAX_PLANS:
            _plans.popitem(last=False)
    return plan


class _Compiler:
    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.schema = executor.schema
        strawberry_schema = getattr(self.schema, "_strawberry_schema", None)
        converter = getattr(strawberry_schema, "schema_converter", None)
        if not isinstance(converter, GraphQLCoreConverter) or converter.exception_handlers:
            raise NotCompilable("no Strawberry schema, or exception handlers")
        if executor.middleware_manager and executor.middleware_manager.middlewares:
            raise NotCompilable("resolver middleware")
        self.converter = converter
        self.uses_variables = False
        self.objects: dict[tuple[int, ...], ObjectPlan] = {}

    def object_plan(
        self, object_type: GraphQLObjectType, field_details_list: list[FieldDetails]
    ) -> ObjectPlan:
        if object_type.is_type_of is not None:
            raise NotCompilable("is_type_of")
        key = (id(object_type), *(id(d.node) for d in field_details_list))
        if key in self.objects:
            return self.objects[key]
        for detail in field_details_list:
            if detail.defer_usage is not None or detail.fragment_variable_values is not None:
                raise NotCompilable("deferred or fragment variables")
            if detail.node.selection_set and _has_variables(
                detail.node.selection_set, self.executor.fragment_definitions
            ):
                self.uses_variables = True
        collected = collect_subfields(
            self.schema,
            self.executor.fragments,
            self.executor.variable_values,
            self.executor.operation,
            object_type,
            field_details_list,
            self.executor.hide_suggestions,
        )
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            raise NotCompilable("deferral")
        plan = ObjectPlan()
        self.objects[key] = plan
        for response_name, details in collected.grouped_field_set.items():
            field_name = details[0].node.name.value
            field_def = self.schema.get_field(object_type, field_name)
            if field_def is None:
                continue  # graphql-core leaves it out of the answer too
            read = self.getter(object_type, field_def, details)
            attribute = read.attribute if isinstance(read, _Attribute) else None
            plan.fields.append(
                Field(
                    response_name,
                    read,
                    self.completer(field_def.type, details),
                    attribute=attribute,
                    fast=_fast(field_def.type),
                )
            )
        return plan

    def getter(
        self, parent: GraphQLObjectType, field_def: GraphQLField, details: list[FieldDetails]
    ) -> Callable[[Any], Any]:
        if field_def is TypeNameMetaFieldDef:
            name = parent.name
            return lambda _source: name
        field = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if not isinstance(field, StrawberryField) or field.extensions:
            raise NotCompilable("not a plain Strawberry field")
        if field.base_resolver is None:
            if not getattr(field_def.resolve, "_is_default", False):
                raise NotCompilable("a resolver of its own")
            if field.default_resolver is not getattr:
                raise NotCompilable("a default resolver other than getattr")
            return _Attribute(field.python_name)
        resolver = field.base_resolver
        if (
            resolver.is_async
            or resolver.info_parameter
            or resolver.root_parameter
            or resolver.parent_parameter
            or not resolver.self_parameter
        ):
            raise NotCompilable("a resolver that needs more than its object")
        node = details[0].node
        raw = get_argument_values(
            field_def,
            node,
            self.executor.variable_values,
            None,
            self.executor.hide_suggestions,
        )
        if _has_variables_in(node.arguments):
            self.uses_variables = True
        kwargs = convert_arguments(
            raw,
            field.arguments,
            scalar_registry=self.converter.scalar_registry,
            config=self.converter.config,
        )
        if not all(isinstance(value, _IMMUTABLE) for value in kwargs.values()):
            raise NotCompilable("arguments that are objects")
        function = resolver.wrapped_func
        if not callable(function):  # a classmethod or staticmethod object
            raise NotCompilable("a resolver that is no plain function")
        return lambda source: function(source, **kwargs)

    def completer(self, output_type: GraphQLOutputType, details: list[FieldDetails]) -> Completer:
        if isinstance(output_type, GraphQLNonNull):
            inner = self.completer(output_type.of_type, details)

            def non_null(value: Any) -> Any:
                completed = inner(value)
                if completed is None:
                    raise Fallback
                return completed

            return non_null
        if isinstance(output_type, GraphQLList):
            item = self.completer(output_type.of_type, details)

            def as_list(value: Any) -> Any:
                if value is None or value is Undefined:
                    return None
                if type(value) is not list and type(value) is not tuple:
                    raise Fallback  # other iterables: graphql-core's own checks
                return [item(each) for each in value]

            return as_list
        if isinstance(output_type, GraphQLLeafType):
            return _leaf(output_type)
        if isinstance(output_type, GraphQLObjectType):
            plan = self.object_plan(output_type, details)

            def as_object(value: Any) -> Any:
                if value is None or value is Undefined:
                    return None
                if isinstance(value, Exception):
                    raise Fallback
                return plan(value)

            return as_object
        raise NotCompilable("an abstract type")


class _Attribute:
    """getattr of one attribute, which generated code inlines when it is an identifier."""

    __slots__ = ("attribute", "get")

    def __init__(self, name: str) -> None:
        self.get = attrgetter(name)
        self.attribute = name if name.isidentifier() and not iskeyword(name) else None

    def __call__(self, source: Any) -> Any:
        return self.get(source)


def _fast(output_type: GraphQLOutputType) -> tuple[Any, ...] | None:
    """What generated code may answer inline for a leaf (nullable or not): the value itself
    for an exact str, bool or int in range, an enum member's name."""
    leaf = output_type.of_type if isinstance(output_type, GraphQLNonNull) else output_type
    if leaf is GraphQLString or leaf is GraphQLID:
        return ("str",)
    if leaf is GraphQLBoolean:
        return ("bool",)
    if leaf is GraphQLInt:
        return ("int",)
    wrapped = getattr(leaf, "wrapped_cls", None)
    if (
        isinstance(leaf, GraphQLEnumType)
        and isinstance(wrapped, type)
        and issubclass(wrapped, Enum)
    ):
        names = {}
        for member in wrapped:
            coerced = leaf.coerce_output_value(member)
            if not isinstance(coerced, str):
                return None
            names[member] = coerced
        return ("enum", wrapped, names)
    return None


def _leaf(leaf_type: GraphQLLeafType) -> Completer:
    """``coerce_output_value``, with the answer known beforehand for the common exact types."""
    coerce = leaf_type.coerce_output_value

    def checked(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if isinstance(value, Exception):
            raise Fallback
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise Fallback
        return coerced

    if leaf_type is GraphQLString or leaf_type is GraphQLID:
        return lambda value: value if type(value) is str else checked(value)
    if leaf_type is GraphQLBoolean:
        return lambda value: value if type(value) is bool else checked(value)
    if leaf_type is GraphQLInt:
        return lambda value: (
            value if type(value) is int and _INT_MIN <= value <= _INT_MAX else checked(value)
        )
    if isinstance(leaf_type, GraphQLEnumType):
        names: dict[Any, Any] = {}

        def enum(value: Any) -> Any:
            if isinstance(value, Enum):
                found = names.get(value)
                if found is None:
                    found = names[value] = checked(value)
                return found
            return checked(value)

        return enum
    return checked


def _has_variables_in(nodes: Iterable[Any] | None) -> bool:
    return any(_contains_variable(node) for node in nodes or ())


def _contains_variable(node: Any) -> bool:
    if isinstance(node, VariableNode):
        return True
    for key in getattr(node, "keys", ()):
        value = getattr(node, key, None)
        if isinstance(value, tuple | list):
            if any(_contains_variable(v) for v in value if hasattr(v, "keys")):
                return True
        elif hasattr(value, "keys") and _contains_variable(value):
            return True
    return False


def _selections(
    selection_set: SelectionSetNode, fragments: dict[str, Any], seen: set[str]
) -> Iterator[Any]:
    for selection in selection_set.selections:
        yield selection
        if isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name not in seen and name in fragments:
                seen.add(name)
                yield from _selections(fragments[name].selection_set, fragments, seen)
        elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
            yield from _selections(selection.selection_set, fragments, seen)


def _has_variables(selection_set: SelectionSetNode, fragments: dict[str, Any]) -> bool:
    """Whether a directive or argument anywhere below reads a variable: a plan for it then
    holds for this request's values only."""
    for selection in _selections(selection_set, fragments, set()):
        directives: tuple[DirectiveNode, ...] = selection.directives or ()
        if _has_variables_in(directives):
            return True
        if isinstance(selection, FieldNode) and _has_variables_in(selection.arguments):
            return True
    return False
