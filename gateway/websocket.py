"""graphql-transport-ws on ``/graphql``: Strawberry's handler with the gateway's limits.

The protocol's own close codes are kept (4400 bad message, 4401 subscribe before
``connection_ack``, 4403 refused ``connection_init``, 4408 no ``connection_init`` in time,
4409 duplicate operation id, 4429 a second ``connection_init``). One thing is the
gateway's: a ``subscribe`` over ``SCV_MAX_SUBSCRIPTIONS`` open operations on the connection
is answered with an ``error`` message for that operation id, code ``QUERY_TOO_COMPLEX``
(the code of every caller-controlled limit), and the connection stays open.
"""

from __future__ import annotations

from collections.abc import Callable

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage

from schema.context import Context
from schema.limits import CODE as LIMIT_CODE

# Told when an operation starts (+1) and when it ends (-1): the open subscriptions gauge.
OperationObserver = Callable[[int], None]


class GatewayTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Counts open operations for the metrics and refuses those over the limit with a code."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            error = GraphQLError(
                f"at most {limit} subscriptions per connection; complete one first",
                extensions={"code": LIMIT_CODE},
            )
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [error.formatted]}
            )
            return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        observe: OperationObserver | None = getattr(self.view, "operation_observer", None)
        if observe is not None:
            observe(1)
        try:
            await super().run_operation(operation)
        finally:
            if observe is not None:
                observe(-1)
