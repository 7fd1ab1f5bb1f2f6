"""The executable schema: the per-domain root types merged into Query and Mutation."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.directory import DirectoryMutation, DirectoryQuery
from schema.errors import ErrorCodes
from schema.interactions import InteractionMutation, InteractionQuery
from schema.journeys import JourneyQuery
from schema.merging import MergeMutation, MergeQuery
from schema.scalars import DATETIME_SCALAR, DateTime
from schema.subscriptions import Subscription

Query = merge_types("Query", (DirectoryQuery, InteractionQuery, MergeQuery, JourneyQuery))
Mutation = merge_types("Mutation", (DirectoryMutation, InteractionMutation, MergeMutation))

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[ErrorCodes],
    config=StrawberryConfig(scalar_map={DateTime: DATETIME_SCALAR}),
)
