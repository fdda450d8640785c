"""What a GraphQL operation costs, from its document, before any resolver runs.

The cost follows database work. A root field costs 1 unless ``WEIGHTS`` says more; so does a
field listed there (one that queries on its own, like ``Me.accessLog``). Every other field
costs nothing: it reads what its parent loaded (a passport's claims come with the passport's
one statement). A field paginated by ``first`` costs its weight plus, per item of the page, 1
and what its selection costs. Fragments count at every spread; @skip/@include are ignored, so
the estimate never falls short.

Walking a document is linear in its size whatever its fragments do: each fragment is costed
once per type it is spread on. ``expanded_fields`` bounds the expansion itself before
validation, whose own walks (the alias limit among them) would otherwise follow every spread
of fragments that spread each other; ``selection_depth`` measures nesting for the depth limit
the same way.

Written here rather than taken from a library: the one on PyPI (graphql-complexity) ignores
variables, misses non-null lists and pins an old Strawberry; this is a page over graphql-core's
own AST and types.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInt,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
    value_from_ast,
)
from graphql.type.definition import GraphQLInterfaceType, GraphQLObjectType

from service.errors import QueryTooCostly

if TYPE_CHECKING:
    from service.schema.context import Context

ROOT_WEIGHT = 1
WEIGHTS: Mapping[str, int] = {
    # Reads of a whole passport: one statement over all claims, and an access record.
    "Query.passport": 10,
    "Query.passports": 20,  # a fixed number of statements; PER_ELEMENT adds each citizen
    "Query.sharedPassport": 10,
    "Me.passport": 10,
    "Me.grants": 2,
    "Me.accessLog": 4,  # four statements whatever the page size
    "Me.exportData": 50,
    "Me.exports": 2,
    "Me.exportName": 2,  # claims, events, grants and the whole access log
    "Me.europass": 15,  # a passport read, the ELM document built and checked
    "Query.verifyEventChains": 500,  # every event of every citizen
    "Query.competences": 3,  # trigram search
    "Query.competenceCheck": 15,  # a passport read, the hierarchy walk and the learning plan
    "Query.occupationMatches": 20,  # a passport read and a ranking over ESCO
    "Query.careerProfile": 12,  # a passport read, wants, goals, history and suggestions
    "Query.sharedCareerProfile": 12,
    "Query.careerPaths": 25,  # a passport read, a ranking over ESCO, lights, learning plans
    "Query.careerPlan": 20,  # a competence check, lights and the plan
    # Parts of up to 5,000 passports in a fixed number of statements (locks, one aggregate,
    # access records), as a 100-citizen `passports` read costs 220; named people's own
    # results are paginated (`people(first)`), each adding 1 and its selection.
    "Query.teamCompetenceCheck": 200,
    "Query.teamChecks": 2,
    "Query.teamCheckInvitation": 1,
    "Query.competenceProfiles": 2,
    "Query.grantsReceived": 2,
    "Query.issuedClaims": 2,
    "Query.webhookSubscriptions": 2,
    "Query.webhookDeliveries": 2,
    "Query.endorsementsGiven": 2,
    # Writes: a transaction each, with the citizen lock and an event.
    "Mutation.issueClaim": 5,
    # Batches: a fixed number of statements and one COPY whatever their size.
    "Mutation.issueClaims": 200,
    "Mutation.revokeClaim": 5,
    "Mutation.supersedeClaim": 5,
    "Mutation.selfDeclare": 5,
    "Mutation.withdrawSelfDeclaration": 5,
    "Mutation.grantAccess": 5,
    "Mutation.revokeAccess": 5,
    "Mutation.requestErasure": 50,
    "Mutation.revokeExport": 5,
    "Mutation.setExportName": 5,
    # The passport's claims read to check there is something to offer, and the offer written.
    "Mutation.createCredentialOffer": 10,
    "Mutation.publishLearningOpportunity": 5,
    "Mutation.publishLearningOpportunities": 100,
    "Mutation.withdrawLearningOpportunity": 5,
    "Mutation.setCompetenceWant": 5,
    "Mutation.setCareerGoal": 5,
    "Mutation.dropCareerGoal": 5,
    "Mutation.recordWorkExperience": 5,
    "Mutation.withdrawWorkExperience": 5,
    "Mutation.recordEmployment": 5,
    "Mutation.withdrawEmployment": 5,
    "Mutation.acceptSuggestedCompetences": 50,  # up to 200 declarations, an event each
    "Mutation.endorseClaim": 5,
    "Mutation.revokeEndorsement": 5,
    "Mutation.hideEndorsement": 5,
    "Mutation.showEndorsement": 5,
    "Mutation.createTeamCheck": 2,
    "Mutation.closeTeamCheck": 2,
    "Mutation.joinTeamCheck": 5,
    "Mutation.saveCompetenceProfile": 5,
    "Mutation.archiveCompetenceProfile": 2,
}
PAGE_ARGUMENT = "first"
# Fields reading one item per element of a list argument, batched: their weight, plus per
# element what it adds to the batch's statements (its rows, its locks, its access record) and
# what its selection costs; an unknown length counts as the field's most.
PER_ELEMENT: Mapping[str, tuple[str, int, int]] = {
    # (argument, weight per element, most elements)
    "Query.passports": ("citizens", 2, 100),
}


class DocumentTooLarge(ValueError):
    """More fields, once fragments are expanded, than any operation of this API needs."""


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def expanded_fields(document: DocumentNode, limit: int) -> int:
    """Fields in the document with every fragment spread expanded, counted without expanding
    (each fragment once); raises DocumentTooLarge past ``limit`` or on a fragment cycle."""
    fragments = _fragments(document)
    sizes: dict[str, int] = {}
    open_: set[str] = set()

    def size(selection_set: SelectionSetNode | None) -> int:
        total = 0
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                total += 1 + size(node.selection_set)
            elif isinstance(node, InlineFragmentNode):
                total += size(node.selection_set)
            elif isinstance(node, FragmentSpreadNode):
                total += fragment(node.name.value)
            if total > limit:
                raise DocumentTooLarge(f"more than {limit} fields once fragments are expanded")
        return total

    def fragment(name: str) -> int:
        if name in sizes:
            return sizes[name]
        if name in open_ or name not in fragments:
            return 0  # a cycle or an unknown fragment: validation names the error
        open_.add(name)
        sizes[name] = size(fragments[name].selection_set)
        open_.discard(name)
        return sizes[name]

    return sum(
        size(d.selection_set)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    )


def selection_depth(document: DocumentNode, limit: int) -> int:
    """How deep selections nest in the document, an inline fragment counting as a level like a
    field with a selection set (so nesting ``... on Query`` cannot go past the limit), spreads
    followed; counted without expanding (each fragment once), and not past ``limit + 1``.
    A fragment cycle or an unknown fragment counts 0: validation names them."""
    fragments = _fragments(document)
    depths: dict[str, int] = {}
    open_: set[str] = set()

    def depth(selection_set: SelectionSetNode, level: int) -> int:
        """The deepest level below ``selection_set``, itself at ``level``."""
        deepest = level
        for node in selection_set.selections:
            if deepest > limit:
                break
            if isinstance(node, FieldNode | InlineFragmentNode):
                if node.selection_set:
                    deepest = max(deepest, depth(node.selection_set, level + 1))
            elif isinstance(node, FragmentSpreadNode):
                deepest = max(deepest, level + fragment(node.name.value))
        return deepest

    def fragment(name: str) -> int:
        if name not in depths:
            if name in open_ or name not in fragments:
                return 0
            open_.add(name)
            depths[name] = depth(fragments[name].selection_set, 0)
            open_.discard(name)
        return depths[name]

    return max(
        (
            depth(d.selection_set, 0)
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode)
        ),
        default=0,
    )


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
        self.variables = dict(variables)
        self.max_page = max_page
        self.roots = {t.name for t in (schema.query_type, schema.mutation_type) if t}
        self.memo: dict[tuple[str, str], int] = {}
        self.read_arguments = False  # a cost that depends on arguments is not kept

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
                total += self.fragment(node.name.value)
        return total

    def fragment(self, name: str) -> int:
        fragment = self.fragments[name]
        typed = self.schema.get_type(fragment.type_condition.name.value)
        key = (name, typed.name if typed else "")
        if key not in self.memo:
            self.memo[key] = self.selection(typed, fragment.selection_set) if typed else 0
        return self.memo[key]

    def field(self, parent: GraphQLNamedType, node: FieldNode) -> int:
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 0  # __typename and introspection; a union has no fields of its own
        definition = parent.fields[name]
        default = ROOT_WEIGHT if parent.name in self.roots else 0
        weight = WEIGHTS.get(f"{parent.name}.{name}", default)
        child = get_named_type(definition.type)
        below = self.selection(child, node.selection_set) if node.selection_set else 0
        per_element = PER_ELEMENT.get(f"{parent.name}.{name}")
        if per_element is not None:
            argument, each, most = per_element
            return weight + self.list_length(node, argument, most) * (each + below)
        if PAGE_ARGUMENT in definition.args:
            size = self.page_size(node, definition.args[PAGE_ARGUMENT].default_value)
            return weight + size * (1 + below)
        return weight + below

    def list_length(self, node: FieldNode, argument: str, most: int) -> int:
        """The elements of a list argument, from the literal or the variables (a single value
        is a list of one, as GraphQL coerces it); ``most`` when unknown."""
        given = next((a for a in node.arguments or () if a.name.value == argument), None)
        if given is None:
            return most
        self.read_arguments = True
        value: Any = given.value
        if isinstance(value, VariableNode):
            value = self.variables.get(value.name.value)
            if isinstance(value, list):
                return len(value)
            return 1 if isinstance(value, Mapping) else most
        if isinstance(value, ListValueNode):
            return len(value.values)
        return 1 if isinstance(value, ObjectValueNode) else most

    def page_size(self, node: FieldNode, default: Any) -> int:
        given = next((a for a in node.arguments or () if a.name.value == PAGE_ARGUMENT), None)
        self.read_arguments |= given is not None
        value = value_from_ast(given.value, GraphQLInt, self.variables) if given else default
        size = value if isinstance(value, int) else self.max_page
        return max(0, min(size, self.max_page))


class SameDocument:
    """A parsed document that equals only itself, as a cache key. The parse cache hands out one
    document per text, and graphql-core's nodes hash and compare their whole tree: a passport
    read's document took longer to hash than to look up. Held by the key, so its id is not
    reused while the key lives."""

    __slots__ = ("document",)

    def __init__(self, document: DocumentNode) -> None:
        self.document = document

    def __hash__(self) -> int:
        return id(self.document)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SameDocument) and other.document is self.document


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    max_page: int,
    keep: bool = False,
) -> int:
    """The cost of the operation that will run; the document must already be valid. ``keep``
    (a document of ordinary size, from the parser's cache, which hands out the same one for
    the same text): kept per document while it reads no argument, as a passport read's or a
    write's does."""
    key = (schema, SameDocument(document), operation_name, max_page)
    kept = _costs.get(key)
    if kept is not None:
        _costs.move_to_end(key)
        return kept
    operation = get_operation_ast(document, operation_name)
    if not isinstance(operation, OperationDefinitionNode):
        return 0
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    walk = _Walk(schema, _fragments(document), variables or {}, max_page)
    cost = walk.selection(root, operation.selection_set)
    if keep and not walk.read_arguments:
        _costs[key] = cost
        if len(_costs) > MAX_KEPT:
            _costs.popitem(last=False)
    return cost


async def charge(
    context: Context,
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    keep: bool,
) -> None:
    """Take the operation's cost (``context.cost``) from the caller's budget, once a request
    (``context.charged``: by a prepared read or by execution, whichever comes first); raises
    QueryTooCostly over the limit of one operation, RateLimited over the budget, taking nothing
    either way."""
    context.cost = operation_cost(
        schema,
        document,
        operation_name=operation_name,
        variables=variables,
        max_page=context.settings.max_page_size,
        keep=keep,
    )
    limit = context.settings.graphql_max_cost
    if context.cost > limit:
        raise QueryTooCostly(
            f"this operation costs {context.cost}, more than {limit}: ask for less at once",
            cost=context.cost,
            limit=limit,
        )
    if context.limiter is not None and not context.charged:
        await context.limiter.spend(context.principal, context.cost)
    context.charged = True


MAX_KEPT = 512
# Kept in the order of use, the oldest dropped: whether a cost may be kept is known only
# once it is computed, which ``lru_cache`` cannot be told.
_costs: OrderedDict[tuple[GraphQLSchema, SameDocument, str | None, int], int] = OrderedDict()
