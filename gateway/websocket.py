"""graphql-transport-ws on ``/graphql``: Strawberry's handler with the gateway's limits.

The protocol's own close codes are kept (4400 bad message, 4401 subscribe before
``connection_ack``, 4403 refused ``connection_init``, 4408 no ``connection_init`` in time,
4409 duplicate operation id, 4429 a second ``connection_init``). One thing is the
gateway's: a ``subscribe`` over ``SCV_MAX_SUBSCRIPTIONS`` open operations on the connection
is answered with an ``error`` message for that operation id, code ``QUERY_TOO_COMPLEX``
(the code of every caller-controlled limit), and the connection stays open.

Every message is checked against the protocol's shape before Strawberry reads it: a JSON
value that is not an object, a ``type`` that is not a string, a ``subscribe`` whose ``id``
is not a string or whose ``payload`` is not an object with a string ``query`` (and object
``variables``/``extensions``, string ``operationName`` when given), a ``complete`` without a
string ``id``: all close the socket with 4400, as the protocol says, where they used to
raise inside Strawberry and drop the connection without a close frame.

A subscriber that goes away while a change is being sent to it is a normal event, logged
at DEBUG: the send fails with ``WebSocketDisconnected`` (or the server's own "closed"
error) and the operation ends quietly instead of logging a traceback at ERROR.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

from graphql import GraphQLError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message,
    SubscribeMessage,
)
from uvicorn.protocols.utils import ClientDisconnected

from schema.context import Context
from schema.limits import CODE as LIMIT_CODE
from schema.text_input import CODE as TEXT_CODE
from schema.text_input import MESSAGE as TEXT_MESSAGE
from schema.text_input import has_lone_surrogate

# Told when an operation starts (+1) and when it ends (-1): the open subscriptions gauge.
OperationObserver = Callable[[int], None]

log = logging.getLogger("scv.websocket")
# What a send to a socket that has gone away raises: Strawberry's own exception, uvicorn's,
# or Starlette's RuntimeError once the close has been sent.
GONE = (WebSocketDisconnected, ClientDisconnected)
# subscribe payload members and the types they may have when present (null is absence)
_PAYLOAD_TYPES: tuple[tuple[str, type], ...] = (
    ("variables", dict),
    ("extensions", dict),
    ("operationName", str),
)


def message_problem(message: object) -> str | None:
    """Why ``message`` is not a graphql-transport-ws message Strawberry can read; else None."""
    if not isinstance(message, Mapping):
        return "a message must be a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "a message needs a string `type`"
    if kind in ("subscribe", "complete") and not isinstance(message.get("id"), str):
        return f"a {kind} message needs a string `id`"
    if kind == "subscribe":
        return _payload_problem(message.get("payload"))
    return None


def _payload_problem(payload: Any) -> str | None:
    if not isinstance(payload, Mapping):
        return "a subscribe payload must be an object"
    if not isinstance(payload.get("query"), str):
        return "a subscribe payload needs a string `query`"
    for name, kind in _PAYLOAD_TYPES:
        value = payload.get(name)
        if value is not None and not isinstance(value, kind):
            return f"`{name}` of a subscribe payload has the wrong type"
    return None


class GatewayTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Counts open operations for the metrics and refuses those over the limit with a code."""

    async def handle_message(self, message: Message) -> None:
        problem = message_problem(cast(object, message))
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    async def handle_task_exception(self, error: Exception) -> None:
        if isinstance(error, GONE) or _closed_socket(error):
            log.debug("a subscriber went away while being sent to: %s", type(error).__name__)
            return
        await super().handle_task_exception(error)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if has_lone_surrogate(message["payload"]):  # before Strawberry quotes it in an error
            where = TEXT_MESSAGE.format(where="the subscribe payload")
            await self._refuse(message["id"], GraphQLError(where, extensions={"code": TEXT_CODE}))
            return
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
            await self._refuse(message["id"], error)
            return
        await super().handle_subscribe(message)

    async def _refuse(self, operation_id: str, error: GraphQLError) -> None:
        """An ``error`` message for the operation; the connection stays open."""
        await self.send_message({"id": operation_id, "type": "error", "payload": [error.formatted]})

    @staticmethod
    def _get_pre_execution_close_reason(error: GraphQLError) -> str | None:
        """Strawberry closes the socket on a syntax error; bad text in a string literal is the
        caller's input instead, answered like other bad input (``schema/text_input.py``)."""
        if (error.extensions or {}).get("code") == TEXT_CODE:
            return None
        return BaseGraphQLTransportWSHandler._get_pre_execution_close_reason(error)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        observe: OperationObserver | None = getattr(self.view, "operation_observer", None)
        if observe is not None:
            observe(1)
        try:
            await super().run_operation(operation)
        finally:
            if observe is not None:
                observe(-1)


def _closed_socket(error: Exception) -> bool:
    """Starlette's refusal to send on a WebSocket whose close was already sent."""
    return isinstance(error, RuntimeError) and "close message has been sent" in str(error)
