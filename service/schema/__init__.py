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

from service.db.engine import database_unavailable
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
                context.unavailable |= database_unavailable(error.original_error)
            logger.error(
                "graphql_unexpected_error",
                path=list(error.path or []),
                exc_info=error.original_error,
            )


def build_schema(settings: Settings) -> strawberry.Schema:
    # Rule classes are built once: the validation cache is keyed by them, so rebuilding them per
    # request (as the limiter extensions do) would make every validation a cache miss.
    rules = [
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
    ]
    if not settings.graphql_dev_tools:
        rules.append(NoSchemaIntrospectionCustomRule)
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: MaskErrors(should_mask_error=lambda error: not expected_error(error)),
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
    ]
    return PassportSchema(query=Query, mutation=Mutation, extensions=extensions)


def sdl() -> str:
    """The committed contract (schema.graphql) is the SDL of this schema."""
    return strawberry.Schema(query=Query, mutation=Mutation).as_str() + "\n"
