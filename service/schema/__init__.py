"""The GraphQL schema: per-domain query and mutation types merged at the root."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import strawberry
import structlog
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    ValidationContext,
    ValidationRule,
    get_operation_ast,
    parse,
    validate,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.pyutils import Path
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from service.auth.principal import Lookup, Principal
from service.db.engine import database_unavailable, retryable, unstorable_value
from service.errors import DomainError, QueryTooCostly, RateLimited, Unauthenticated
from service.models.enums import PrincipalKind
from service.observability import observe_operation, operation_label
from service.schema.admin.mutations import AdminMutations, AdminQueries
from service.schema.career.mutations import CareerMutations
from service.schema.career.queries import CareerQueries
from service.schema.citizens.mutations import CitizenMutations
from service.schema.citizens.queries import CitizenQueries
from service.schema.claims.mutations import ClaimMutations
from service.schema.claims.queries import ClaimQueries
from service.schema.common import SCALARS
from service.schema.consent.mutations import ConsentMutations
from service.schema.consent.queries import ConsentQueries
from service.schema.context import Context
from service.schema.cost import (
    DocumentTooLarge,
    SameDocument,
    charge,
    expanded_fields,
    selection_depth,
)
from service.schema.endorsements.mutations import EndorsementMutations
from service.schema.endorsements.queries import EndorsementQueries
from service.schema.exports.mutations import ExportMutations
from service.schema.inputs import compile_inputs
from service.schema.learning.mutations import LearningMutations
from service.schema.matching.queries import MatchingQueries
from service.schema.passports.compiled import Answer
from service.schema.passports.execution import plan_for
from service.schema.passports.queries import PassportQueries
from service.schema.prepared import learn
from service.schema.taxonomy.queries import TaxonomyQueries
from service.schema.teams.mutations import TeamMutations
from service.schema.teams.queries import TeamQueries
from service.schema.variables import variable_errors
from service.schema.wallet.mutations import WalletMutations
from service.schema.webhooks.mutations import WebhookMutations
from service.schema.webhooks.queries import WebhookQueries
from service.settings import Settings

logger = structlog.get_logger(__name__)

Query = merge_types(
    "Query",
    (
        CitizenQueries,
        PassportQueries,
        MatchingQueries,
        CareerQueries,
        TeamQueries,
        ConsentQueries,
        ClaimQueries,
        EndorsementQueries,
        TaxonomyQueries,
        WebhookQueries,
        AdminQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        ClaimMutations,
        EndorsementMutations,
        CitizenMutations,
        ExportMutations,
        WalletMutations,
        ConsentMutations,
        CareerMutations,
        TeamMutations,
        LearningMutations,
        WebhookMutations,
        AdminMutations,
    ),
)


# The roots of the subtrees completed by compiled plans: a passport, from any of its reads;
# a team check's competences and named people (thousands of plain fields each answer).
PLANNED_TYPES = frozenset({"Passport", "TeamCompetence", "TeamMember"})


def expected_error(error: GraphQLError) -> bool:
    """Errors we raise on purpose, and GraphQL's own validation errors, are shown as they are."""
    original = error.original_error
    return original is None or isinstance(original, DomainError | GraphQLError)


class SerialExecution(StrawberryGraphQLCoreExecutionContext):
    """Fields resolve one after another, queries too: they share the request's AsyncSession
    (one connection, one transaction), which two tasks must never use at once. List items still
    complete concurrently, so fields below a list read preloaded views and never query."""

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        return self.execute_fields_serially(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    def complete_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """A passport whose answer PostgreSQL built (service/schema/passports/compiled.py) is
        that answer as it is: its fields were compiled from this very selection."""
        if type(result) is Answer:
            return result.data
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """A passport is completed by a plan compiled once per document (its fields read
        plain attributes of the views); anything the plan cannot answer goes the usual way."""
        if return_type.name in PLANNED_TYPES and position_context is None:
            plan = plan_for(self, return_type, field_details_list)
            if plan is not None:
                try:
                    return plan(result)
                except Exception:  # noqa: S110 - graphql-core completes it, errors and all
                    pass
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )


class QuietExecution(SerialExecution):
    """Execution without graphql-core's suggestions in variable errors ("Did you mean the enum
    value 'ACTIVE'?"): with introspection off, they would tell what it hides."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs["hide_suggestions"] = True
        return super().build(*args, **kwargs)


def _masked(error: GraphQLError) -> bool:
    return not (expected_error(error) or unstorable_value(error.original_error))


class PassportSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only unexpected errors (redacted by the log pipeline) and mark the request failed,
        so the transaction is rolled back; expected errors are answers, not incidents."""
        for error in errors:
            if expected_error(error):
                continue
            original = error.original_error
            context = execution_context.context if execution_context else None
            if isinstance(context, Context):
                context.failed = True
                context.unavailable |= database_unavailable(original)
            path = list(error.path or [])
            if retryable(original):
                logger.warning("graphql_transaction_conflict_retries_exhausted", path=path)
            elif unstorable_value(original):
                logger.warning("graphql_unstorable_input", path=path, error=type(original).__name__)
            else:
                logger.error("graphql_unexpected_error", path=path, exc_info=original)


# Documents up to this size are parsed and validated once for all requests; common ones are a few
# kilobytes. Caching any size (Strawberry's caches do) would let 512 distinct megabyte documents,
# each within the token limit (a long string or name is one token), hold a gigabyte.
CACHED_DOCUMENT_CHARS = 16 * 1024
CACHE_SIZE = 512
# Operation, fragment, variable and alias names, which clients choose: far more than any needs.
MAX_NAME_CHARS = 128


def _validate(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
    hide_suggestions: bool,
) -> list[GraphQLError]:
    """Strawberry's own validation (its two rules added), optionally without suggestions."""
    every = (*rules, MaybeNullValidationRule, OneOfInputValidationRule)
    return validate(schema, document, every, hide_suggestions=hide_suggestions)


_parse_cached = lru_cache(maxsize=CACHE_SIZE)(parse)


def from_parse_cache(execution: ExecutionContext) -> bool:
    """The operation's document comes from the parse cache: one per text, of ordinary size,
    so what is kept per document (by its identity) is bounded."""
    return len(execution.query or "") <= CACHED_DOCUMENT_CHARS


@lru_cache(maxsize=CACHE_SIZE)  # holds each document it keeps, so no id is reused meanwhile
def _validate_cached(
    schema: GraphQLSchema,
    document: SameDocument,
    rules: tuple[type[ASTValidationRule], ...],
    hide_suggestions: bool,
) -> list[GraphQLError]:
    return _validate(schema, document.document, rules, hide_suggestions)


@lru_cache(maxsize=CACHE_SIZE)
def _expanded_fields_cached(document: SameDocument, limit: int) -> int:
    return expanded_fields(document.document, limit)


def parsed(query: str, max_tokens: int) -> DocumentNode:
    """The document as execution parses it (``Documents``): from the same cache when of
    ordinary size, so a transport that looks at it first costs no second parse."""
    if len(query) <= CACHED_DOCUMENT_CHARS:
        return _parse_cached(query, max_tokens=max_tokens)
    return parse(query, max_tokens=max_tokens)


def cached_document(query: str, max_tokens: int) -> DocumentNode | None:
    """The document as execution will parse it when it is one the parse cache keeps (None:
    too large to keep, or no document at all: execution tells the caller why)."""
    if len(query) > CACHED_DOCUMENT_CHARS:
        return None
    try:
        return _parse_cached(query, max_tokens=max_tokens)
    except Exception:  # a syntax error, too many tokens, nesting too deep
        return None


class Documents(SchemaExtension):
    """Parsing and validation, cached for documents of ordinary size only, and with graphql-core's
    suggestions ("Did you mean 'passport'?") left out unless the development tools are on: they
    would name the fields and types that introspection hides."""

    def __init__(self, *, hide_suggestions: bool) -> None:
        self.hide_suggestions = hide_suggestions

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.query and from_parse_cache(execution):
            execution.graphql_document = _parse_cached(execution.query, **execution.parse_options)
        yield  # a larger one is parsed by Strawberry, with the same options

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        if document is not None:
            schema, rules = execution.schema._schema, execution.validation_rules
            execution.pre_execution_errors = (
                _validate_cached(schema, SameDocument(document), rules, self.hide_suggestions)
                if from_parse_cache(execution)
                else _validate(schema, document, rules, self.hide_suggestions)
            )
        yield


def schema_only(document: DocumentNode, operation_name: str | None = None) -> bool:
    """The operation is a query for __schema, __type or __typename alone: introspection, which
    GraphiQL runs first and whose answer is the same for everyone."""
    operation = get_operation_ast(document, operation_name)
    return (
        operation is not None
        and operation.operation is OperationType.QUERY
        and all(
            isinstance(node, FieldNode) and node.name.value.startswith("__")
            for node in operation.selection_set.selections
        )
    )


def depth_limit(max_depth: int, *, introspection: bool = False) -> type[ValidationRule]:
    """Strawberry's QueryDepthLimiter raised KeyError on a spread of an unknown fragment (an
    unmasked, logged crash instead of a validation error), let inline fragments nest without
    limit, and followed every spread (exponential without the size limit before it).

    With ``introspection`` (the development tools), a document of schema queries only may go
    twice as deep: the standard introspection query nests ``ofType`` to depth 14, and it reads
    the static schema, never data."""

    class DepthLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            limit = max_depth
            if introspection:
                names = [
                    d.name.value if d.name else None
                    for d in context.document.definitions
                    if isinstance(d, OperationDefinitionNode)
                ]
                if all(schema_only(context.document, name) for name in names):
                    limit = 2 * max_depth
            try:
                depth = selection_depth(context.document, limit)
            except RecursionError:
                depth = limit + 1
            if depth > limit:
                context.report_error(
                    GraphQLError(f"The operation exceeds the maximum depth of {limit}.")
                )

    return DepthLimit


class NameLength(ValidationRule):
    """Client-chosen names of at most MAX_NAME_CHARS (schema names are all shorter)."""

    def enter_name(self, node: NameNode, *_: object) -> None:
        if len(node.value) > MAX_NAME_CHARS:
            self.report_error(
                GraphQLError(f"Names are limited to {MAX_NAME_CHARS} characters.", node)
            )


# Who a request speaks for until its caller is looked up: nobody, with no scope and no budget.
NOBODY = Principal(kind=PrincipalKind.VERIFIER, subject="nobody")


@dataclass
class PendingContext(Context):
    """A request's context whose caller is known from the token alone (its signature is
    verified) until ``lookup`` asks the database (the client registry, a share link).
    CostAndRateLimit runs it once the document is valid, before anything else touches the
    database; a request that never gets there is looked up by the transport afterwards."""

    lookup: Lookup | None = None
    refusal: Unauthenticated | None = None  # the lookup found nobody active: answer 401

    async def authenticate(self) -> bool:
        """Run the pending lookup; False if it found nobody (``refusal`` says why)."""
        if self.lookup is not None:
            lookup, self.lookup = self.lookup, None
            try:
                self.principal = await lookup(self.session)
            except Unauthenticated as exc:
                self.refusal = exc
        return self.refusal is None


class OperationNameRequired(SchemaExtension):
    """A document with several operations must name the one to run (GraphQL spec, 6.1);
    Strawberry would silently run the first. Listed last, so it also sees cached validations."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # Strawberry reports the first operation's name when none was sent: ask our context.
        requested = getattr(context.context, "operation_name", None)
        if requested is None and document is not None:
            operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
            if operations > 1:
                context.pre_execution_errors = [
                    *(context.pre_execution_errors or []),
                    GraphQLError("Must provide an operation name: the document has several."),
                ]
        yield


class DocumentSizeLimit(SchemaExtension):
    """Right after parsing, before any validation rule walks it: a document whose fragments
    expand to more fields than the limit is refused, so no walk of it can take long."""

    def on_parse(self) -> Iterator[None]:
        yield
        document = self.execution_context.graphql_document
        context = self.execution_context.context
        if document is None or not isinstance(context, Context):
            return
        limit = context.settings.graphql_max_fields
        try:
            if from_parse_cache(self.execution_context):
                _expanded_fields_cached(SameDocument(document), limit)
            else:
                expanded_fields(document, limit)
        except (DocumentTooLarge, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, DocumentTooLarge) else "fragments nest too deeply"
            refusal = QueryTooCostly(reason, limit=limit)
            raise GraphQLError(refusal.message, original_error=refusal) from None


class CostAndRateLimit(SchemaExtension):
    """After validation, before any resolver: look the caller up (the first statement of the
    request), refuse variables that do not fit the operation (service/schema/variables.py) or
    an operation costlier than the limit, then take its cost from the caller's budget. A
    refusal runs nothing and costs nothing here (the transport charges it as refused)."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        if isinstance(context, PendingContext) and not await context.authenticate():
            execution.result = GraphQLExecutionResult(
                data=None, errors=[GraphQLError("A valid bearer token is required.")]
            )
        elif isinstance(context, Context) and document is not None:
            refused = variable_errors(
                execution.schema._schema, document, execution.operation_name, execution.variables
            )
            if refused:
                execution.result = GraphQLExecutionResult(data=None, errors=refused)
                yield
                return
            # By the name the client sent (Strawberry's is the first operation's when none was).
            learn(execution.schema, document, context.operation_name, from_parse_cache(execution))
            try:
                await charge(
                    context,
                    execution.schema._schema,
                    document,
                    operation_name=execution.operation_name,
                    variables=execution.variables,
                    keep=from_parse_cache(execution),
                )
            except (QueryTooCostly, RateLimited) as exc:
                if isinstance(exc, RateLimited):
                    context.retry_after = exc.retry_after
                execution.result = GraphQLExecutionResult(
                    data=None, errors=[GraphQLError(exc.message, original_error=exc)]
                )
        yield


class OperationMetrics(SchemaExtension):
    """Duration of every operation by what it does and its type, for /metrics and the current
    trace span (which also gets the client's operation name, if it is a plain name)."""

    def on_operation(self) -> Iterator[None]:
        # From where a prepared read began, when it handed the request over (prepared.py).
        started = getattr(self.execution_context.context, "started", None) or time.perf_counter()
        yield
        execution = self.execution_context
        try:
            kind = execution.operation_type.value
        except RuntimeError:  # the document never parsed, or names no operation
            kind = "invalid"
        invalid = kind == "invalid" or bool(execution.pre_execution_errors)
        name = (
            "invalid"
            if invalid
            else operation_label(execution.graphql_document, execution.operation_name)
        )
        observe_operation(name, kind, time.perf_counter() - started)


def build_schema(settings: Settings) -> strawberry.Schema:
    # Rule classes are built once: the validation cache is keyed by them, so rebuilding them per
    # request (as the limiter extensions do) would make every validation a cache miss.
    rules = [
        depth_limit(settings.graphql_max_depth, introspection=settings.dev_tools),
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
        NameLength,
    ]
    quiet = not settings.dev_tools
    if quiet:
        rules.append(NoSchemaIntrospectionCustomRule)
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        DocumentSizeLimit,
        lambda: MaskErrors(should_mask_error=_masked),
        lambda: Documents(hide_suggestions=quiet),
        OperationNameRequired,
        CostAndRateLimit,
        OperationMetrics,
    ]
    schema = PassportSchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALARS),
        execution_context_class=QuietExecution if quiet else SerialExecution,
    )
    compile_inputs(schema)
    return schema


def sdl() -> str:
    """The committed contract (schema.graphql) is the SDL of this schema."""
    schema = strawberry.Schema(
        query=Query, mutation=Mutation, config=StrawberryConfig(scalar_map=SCALARS)
    )
    return schema.as_str() + "\n"
