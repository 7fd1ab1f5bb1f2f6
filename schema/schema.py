"""The executable schema: the per-domain root types merged into Query and Mutation."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from schema.changes import ChangeMutation, ChangeQuery
from schema.descriptions import describe
from schema.directory import DirectoryMutation, DirectoryQuery
from schema.errors import ErrorCodes
from schema.execution import PlainFieldsExecutor
from schema.identity import IdentityMutation, IdentityQuery
from schema.integrations import IntegrationMutation, IntegrationQuery
from schema.interactions import InteractionMutation, InteractionQuery
from schema.journeys import JourneyQuery
from schema.limits import QueryLimiter
from schema.merging import MergeMutation, MergeQuery
from schema.operations import OperationSelection
from schema.privacy import PrivacyMutation, PrivacyQuery
from schema.scalars import DATETIME_SCALAR, DateTime
from schema.subscriptions import Subscription
from schema.text_input import LoneSurrogates
from schema.web import WebMutation

Query = merge_types(
    "Query",
    (
        DirectoryQuery,
        InteractionQuery,
        MergeQuery,
        JourneyQuery,
        IntegrationQuery,
        ChangeQuery,
        IdentityQuery,
        PrivacyQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        DirectoryMutation,
        InteractionMutation,
        MergeMutation,
        IntegrationMutation,
        ChangeMutation,
        IdentityMutation,
        WebMutation,
        PrivacyMutation,
    ),
)


class GatewaySchema(strawberry.Schema):
    """Strawberry's schema, minus its own error logging: ``ErrorCodes`` logs what is
    unexpected (with a traceback); refusals such as FORBIDDEN or NOT_FOUND are not errors
    of the service and would only flood the logs."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(*, documented: bool = True) -> GatewaySchema:
    """The executable schema; ``documented``: with the catalogue's descriptions filled in."""
    built = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            ErrorCodes,
            LoneSurrogates,
            QueryLimiter,
            OperationSelection,
        ],  # one per request
        config=StrawberryConfig(scalar_map={DateTime: DATETIME_SCALAR}),
        execution_context_class=PlainFieldsExecutor,  # plain fields without execute_field
    )
    if documented:  # introspection and the SDL show them
        describe(built._schema)
    return built


schema = build_schema()
