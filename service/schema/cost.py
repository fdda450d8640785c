"""What a GraphQL operation costs, from its validated document, before any resolver runs.

A field costs its weight (``WEIGHTS``; otherwise 1 for an object or list, 0 for a scalar) plus
what its selection costs, times its page size when it is paginated by ``first``. The weights
are rough database work: a passport read is one statement over all its claims, whatever is
selected below it, so it is weighed once and its lists are not multiplied. Fragments count at
every spread; @skip/@include are ignored, so the estimate never falls short.

Written here rather than taken from a library: the one on PyPI (graphql-complexity) ignores
variables, misses non-null lists and pins an old Strawberry; this is the same walk over
graphql-core's own AST and types, in a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInt,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_operation_ast,
    is_composite_type,
    value_from_ast,
)
from graphql.type.definition import GraphQLInterfaceType, GraphQLObjectType

WEIGHTS: Mapping[str, int] = {
    # Reads of a whole passport: one statement over all claims, and an access record.
    "Query.passport": 10,
    "Query.sharedPassport": 10,
    "Me.passport": 10,
    "Me.exportData": 50,  # claims, events, grants and the whole access log
    "Query.verifyEventChains": 500,  # every event of every citizen
    "Query.competences": 3,  # trigram search
    # Writes: a transaction each, with the citizen lock and an event.
    "Mutation.issueClaim": 5,
    "Mutation.revokeClaim": 5,
    "Mutation.supersedeClaim": 5,
    "Mutation.selfDeclare": 5,
    "Mutation.withdrawSelfDeclaration": 5,
    "Mutation.grantAccess": 5,
    "Mutation.revokeAccess": 5,
    "Mutation.requestErasure": 50,
}
PAGE_ARGUMENT = "first"


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        max_page: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.max_page = max_page

    def selection(self, parent: GraphQLNamedType, selection_set: SelectionSetNode) -> int:
        total = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                total += self.field(parent, node)
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                typed = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection(typed or parent, node.selection_set)
            elif isinstance(node, FragmentSpreadNode):
                fragment = self.fragments[node.name.value]
                typed = self.schema.get_type(fragment.type_condition.name.value)
                total += self.selection(typed or parent, fragment.selection_set)
        return total

    def field(self, parent: GraphQLNamedType, node: FieldNode) -> int:
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 0  # __typename and introspection; a union has no fields of its own
        definition = parent.fields[name]
        child = get_named_type(definition.type)
        weight = WEIGHTS.get(f"{parent.name}.{name}", 1 if is_composite_type(child) else 0)
        below = self.selection(child, node.selection_set) if node.selection_set else 0
        if PAGE_ARGUMENT in definition.args:
            below *= self.page_size(node, definition.args[PAGE_ARGUMENT].default_value)
        return weight + below

    def page_size(self, node: FieldNode, default: Any) -> int:
        given = next((a for a in node.arguments or () if a.name.value == PAGE_ARGUMENT), None)
        value = value_from_ast(given.value, GraphQLInt, dict(self.variables)) if given else default
        size = value if isinstance(value, int) else self.max_page
        return max(1, min(size, self.max_page))


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    max_page: int,
) -> int:
    """The cost of the operation that will run; the document must already be valid."""
    operation = get_operation_ast(document, operation_name)
    if not isinstance(operation, OperationDefinitionNode):
        return 0
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = _Walk(schema, fragments, variables or {}, max_page)
    return walk.selection(root, operation.selection_set)
