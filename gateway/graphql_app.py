"""``/graphql``: bearer-token check, the per-request context, GraphiQL on GET."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pymongo
from cross_web import HTTPException
from starlette import status
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from gateway.auth import principal_from_header
from gateway.graphiql import graphiql_html
from gateway.http_errors import error_response
from gateway.logs import current_request, error_codes
from gateway.websocket import GatewayTransportWSHandler, OperationObserver
from resolvers.errors import Unauthenticated
from resolvers.principal import Principal
from resolvers.store import Store
from schema.context import Context
from schema.limits import DEFAULT_LIMITS, OPERATION_NAME_KEY, QUERY_COST_KEY, QueryLimits

CONTEXT_SCOPE_KEY = "scv.context"


class GatewayGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app with the contract's auth and our own offline GraphiQL."""

    graphql_transport_ws_handler_class = GatewayTransportWSHandler

    def __init__(
        self,
        schema: Any,
        *,
        store: Store,
        secret: str,
        dev_token: str | None,
        graphiql_local_assets: bool = True,
        limits: QueryLimits = DEFAULT_LIMITS,
        db_timeout_s: float | None = None,
        max_subscriptions: int = 10,
        operation_observer: OperationObserver | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=max_subscriptions,
        )
        self.operation_observer = operation_observer  # open WebSocket operations, ±1
        self.store = store
        self.secret = secret
        self.dev_token = dev_token
        self.graphiql_local_assets = graphiql_local_assets  # False: GraphiQL from the CDN
        self.limits = limits  # static query limits, handed to each request's context
        self.db_timeout_s = db_timeout_s  # one database deadline for a whole HTTP request

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        principal = request.scope.get("scv.principal")
        if principal is None:  # a websocket: its token comes later, in connection_init
            principal = Principal(org="", sub="", permissions=frozenset())
        context = Context.create(principal, self.store, self.limits)
        request.scope[CONTEXT_SCOPE_KEY] = context
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """graphql-transport-ws: the bearer token is in the connection_init payload."""
        params = context.connection_params or {}
        header = params.get("Authorization") or params.get("authorization")
        try:
            principal = principal_from_header(
                self.secret, header if isinstance(header, str) else None
            )
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"message": exc.message, "code": exc.code}) from None
        context.authenticate(principal)
        unset: UnsetType = UNSET
        return unset

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        response = await self.handle_http(Request(scope=scope, receive=receive))
        await response(scope, receive, send)

    async def handle_http(self, request: Request) -> Response:
        if request.method == "GET":
            headers = {"Authorization": f"Bearer {self.dev_token}"} if self.dev_token else None
            return HTMLResponse(
                graphiql_html(
                    endpoint="/graphql",
                    headers=headers,
                    local_assets=self.graphiql_local_assets,
                )
            )
        try:
            principal = principal_from_header(self.secret, request.headers.get("authorization"))
        except Unauthenticated as exc:
            return error_response(401, exc.message, exc.code)
        request.scope["scv.principal"] = principal
        info = current_request()
        if info is not None:
            info.org = principal.org
        try:
            # every database operation of this request shares one deadline
            with pymongo.timeout(self.db_timeout_s):
                response: Response = await self.run(request)
        except HTTPException as exc:
            return error_response(exc.status_code, exc.reason, "BAD_USER_INPUT")
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """Strawberry's response, its body encoded by orjson (WebSocket messages keep
        Strawberry's ``encode_json``: text frames)."""
        response = Response(
            encode_response(response_data),
            status_code=sub_response.status_code or status.HTTP_200_OK,
            media_type="application/json",
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        return response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        data = await super().process_result(request, result)
        info = current_request()
        if info is not None:  # what the request log line reports
            info.add_codes(error_codes(data))
            context = request.scope.get(CONTEXT_SCOPE_KEY)
            if isinstance(context, Context):
                info.operation = context.extras.get(OPERATION_NAME_KEY)
                info.cost = context.extras.get(QUERY_COST_KEY)
        return data


def encode_response(data: object) -> bytes:
    """A GraphQL response as JSON bytes: orjson (a 1,000-row page in a few milliseconds
    instead of tens), else the standard library for what orjson refuses (lone surrogates in
    an echoed input, integers beyond 64 bits), with Strawberry's separators. Either way the
    same JSON value."""
    try:
        return orjson.dumps(data)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(data, separators=(",", ":")).encode()
