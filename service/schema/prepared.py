"""Prepared passport reads: ``passport`` answered without Strawberry's and graphql-core's
execution, when nothing but the compiled answer can come of it.

Why: the read's own work (the caller, the legal basis and the citizen, the lock, the compiled
statement that builds the answer and records the read, the commit) takes about half of the
service's CPU for a read; most of the rest was the request's way through Strawberry and
graphql-core for one root field whose answer is one JSON text: a context manager per extension
and stage, the executor, the arguments' conversion (``bench/floor.py`` measures the work alone).

What: a document the schema has accepted (it reached execution, so it parsed, validated, named
its operation and kept within size: ``learn``), whose operation is a query of one root field,
``passport`` (aliased or not, no directive), with a compilable selection that reads no variable,
is prepared once: its field, its arguments' definitions and its compiled statement are kept by
the schema and the document's identity (the parse cache hands out one document per text). A
later request for it (``run``) then does what the extensions and the resolver do for it:

1. the variables coerced, and the field's arguments converted, by graphql-core's and
   Strawberry's functions (nothing is done yet: any problem leaves the request to Strawberry);
2. the caller looked up (the request's first statement, as ``CostAndRateLimit`` does);
3. the operation's cost computed, checked against the limit and taken from the caller's budget;
4. the resolver's read (``read_passport``) with the compiled statement;
5. the operation's duration observed (``OperationMetrics``).

When the answer is anything but the compiled passport, the request runs through Strawberry,
which answers it in its own words, and what this path did is handed over, not done twice: the
caller (or the error looking them up), the cost taken (``Context.charged``), and the read's
outcome, a refusal, an error or a view to complete field by field (``Context.passport_read``,
which the resolver answers from). So the answer, the statements, the access record, the budget
and the metric are the same with and without this path (``tests/test_prepared_reads.py``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
)
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types import ExecutionResult
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import get_object_definition
from strawberry.types.field import StrawberryField

from service.observability import observe_operation, operation_label
from service.schema.cost import SameDocument, charge
from service.schema.passports import compiled
from service.schema.passports.compiled import Selection, compile_selection
from service.schema.passports.queries import PassportQueries, read_passport
from service.schema.variables import coerced_variables

if TYPE_CHECKING:
    import strawberry
    from sqlalchemy.ext.asyncio import AsyncSession

    from service.auth.principal import Lookup, Principal
    from service.schema import PendingContext

MAX_PREPARED = 512
ROOT = "passport"
_RESOLVER = get_object_definition(PassportQueries, strict=True).get_field(ROOT)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One document's passport read, ready to run."""

    document: DocumentNode  # held, so its id is not reused while this lives
    schema: GraphQLSchema
    operation: OperationDefinitionNode
    node: FieldNode
    key: str  # the answer's key: the field's alias or name
    field_def: GraphQLField
    field: StrawberryField
    converter: GraphQLCoreConverter
    selection: Selection
    label: str  # the operation's metrics label


# By schema too: a document one schema accepted may break another's rules.
_prepared: OrderedDict[tuple[GraphQLSchema, SameDocument, str | None], Prepared | None] = (
    OrderedDict()
)


def learn(
    schema: strawberry.Schema, document: DocumentNode, operation_name: str | None, cached: bool
) -> None:
    """Note a document the schema accepted (``cached``: it came from the parse cache, so later
    requests for its text get the very same document)."""
    if not cached:
        return
    key = (schema._schema, SameDocument(document), operation_name)
    if key in _prepared:
        return
    _prepared[key] = _prepare(schema, document, operation_name)
    if len(_prepared) > MAX_PREPARED:
        _prepared.popitem(last=False)


def _prepare(
    schema: strawberry.Schema, document: DocumentNode, operation_name: str | None
) -> Prepared | None:
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return None
    if operation.directives or len(operation.selection_set.selections) != 1:
        return None
    node = operation.selection_set.selections[0]
    if not isinstance(node, FieldNode) or node.name.value != ROOT or node.directives:
        return None
    core = schema._schema
    query_type = core.query_type
    field_def = query_type.fields.get(ROOT) if query_type is not None else None
    field = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF) if field_def else None
    converter = schema.schema_converter
    if (
        field_def is None
        or not isinstance(field, StrawberryField)
        or field.extensions  # permissions, field extensions: Strawberry's to run
        or field.base_resolver is None
        or _RESOLVER is None
        or _RESOLVER.base_resolver is None
        or field.base_resolver.wrapped_func is not _RESOLVER.base_resolver.wrapped_func
        or converter.exception_handlers
        or any(extension._implements_resolve() for extension in schema.get_extensions())
    ):
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    if compiled.variables_below((node,), fragments):
        return None  # its statement would hold for some values of them only
    selection = compile_selection(core, operation, (node,), fragments, VariableValues({}, {}))
    if selection is None:
        return None
    return Prepared(
        document=document,
        schema=core,
        operation=operation,
        node=node,
        key=node.alias.value if node.alias else ROOT,
        field_def=field_def,
        field=field,
        converter=converter,
        selection=selection,
        label=operation_label(document, operation_name),
    )


async def run(
    schema: strawberry.Schema,
    context: PendingContext,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> ExecutionResult | None:
    """The prepared read's answer; None: the request is Strawberry's to run, with whatever
    this did handed over (the caller, the cost taken, the read's outcome)."""
    settings = context.settings
    if not (settings.prepared_reads and settings.compiled_reads):
        return None
    plan = _prepared.get((schema._schema, SameDocument(document), operation_name))
    if plan is None:
        return None
    started = context.started = time.perf_counter()  # Strawberry's metric counts from here too
    try:  # nothing done yet: whatever fails here, Strawberry meets and answers in its words
        coerced = coerced_variables(plan.schema, plan.operation, variables)
        if not isinstance(coerced, VariableValues):
            return None
        arguments = convert_arguments(
            get_argument_values(plan.field_def, plan.node, coerced, hide_suggestions=True),
            plan.field.arguments,
            scalar_registry=plan.converter.scalar_registry,
            config=plan.converter.config,
        )
    except Exception:
        return None
    try:
        known = await context.authenticate()
    except Exception as exc:  # Strawberry's look-up meets the same error
        context.lookup = _failing(exc)
        return None
    if not known:
        return None  # Strawberry's look-up finds the same refusal
    try:
        await charge(
            context,
            plan.schema,
            document,
            operation_name=operation_name,
            variables=variables,
            keep=True,
        )
    except Exception:  # over a limit, or a cost that cannot be counted: nothing is charged,
        return None  # and Strawberry's run meets the same and answers it
    try:
        view = await read_passport(context, render=plan.selection, **arguments)
    except Exception as exc:  # a refusal or an error: the resolver answers it
        context.passport_read = exc
        return None
    if view.rendered is None:  # a view to complete field by field
        context.passport_read = view
        return None
    observe_operation(plan.label, "query", time.perf_counter() - started)
    return ExecutionResult(data={plan.key: view.rendered.data}, errors=None)


def _failing(exc: Exception) -> Lookup:
    async def lookup(_session: AsyncSession) -> Principal:
        raise exc

    return lookup
