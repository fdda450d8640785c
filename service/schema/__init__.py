"""The GraphQL schema: per-domain query and mutation types merged at the root."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
import structlog
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from service.errors import DomainError
from service.schema.admin.mutations import AdminMutations, AdminQueries
from service.schema.claims.mutations import ClaimMutations
from service.schema.claims.queries import ClaimQueries
from service.schema.context import Context
from service.schema.passports.queries import PassportQueries
from service.schema.taxonomy.queries import TaxonomyQueries
from service.settings import Settings

logger = structlog.get_logger(__name__)

Query = merge_types("Query", (PassportQueries, ClaimQueries, TaxonomyQueries, AdminQueries))
Mutation = merge_types("Mutation", (ClaimMutations, AdminMutations))


def expected_error(error: GraphQLError) -> bool:
    """Errors we raise on purpose, and GraphQL's own validation errors, are shown as they are."""
    original = error.original_error
    return original is None or isinstance(original, DomainError | GraphQLError)


class PassportSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only unexpected errors (redacted by the log pipeline) and mark the request failed,
        so the transaction is rolled back; expected errors are answers, not incidents."""
        for error in errors:
            if expected_error(error):
                continue
            context = execution_context.context if execution_context else None
            if isinstance(context, Context):
                context.failed = True
            logger.error(
                "graphql_unexpected_error",
                path=list(error.path or []),
                exc_info=error.original_error,
            )


def build_schema(settings: Settings) -> strawberry.Schema:
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: QueryDepthLimiter(max_depth=settings.graphql_max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases),
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: MaskErrors(should_mask_error=lambda error: not expected_error(error)),
    ]
    if not settings.graphql_dev_tools:
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    # The caches are shared on purpose: one per schema, keyed by the document text.
    parser_cache, validation_cache = ParserCache(maxsize=512), ValidationCache(maxsize=512)
    extensions += [lambda: parser_cache, lambda: validation_cache]
    return PassportSchema(query=Query, mutation=Mutation, extensions=extensions)


def sdl() -> str:
    """The committed contract (schema.graphql) is the SDL of this schema."""
    return strawberry.Schema(query=Query, mutation=Mutation).as_str() + "\n"
