"""``/graphql``: GraphQL over HTTP (GET and POST), bearer-token check, the per-request context,
GraphiQL for browsers, and the WebSocket (Strawberry's handler).

HTTP requests do not go through Strawberry's view: :meth:`GatewayGraphQL.handle_http` takes
the parameters (:mod:`gateway.graphql_request`), resolves automatic persisted queries
(:mod:`gateway.persisted_queries`), negotiates the media type (:mod:`gateway.media_types`)
and runs the schema itself, so each of those rules is in one place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
import pymongo
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from gateway.admission import DEFAULT_ACTIVE_REQUESTS, Admission
from gateway.authentication import BearerTokens, Caller, principal_of
from gateway.graphiql import graphiql_html
from gateway.graphql_request import (
    GraphQLParams,
    RequestRefused,
    bad_request,
    params_from_json,
    params_from_query,
)
from gateway.http_errors import domain_error_response, error_response, refusal_response
from gateway.logs import current_request, error_codes
from gateway.media_types import GRAPHQL_RESPONSE_JSON, prefers_html, response_media_type
from gateway.persisted_queries import PersistedQueries
from gateway.rate_limit import RateLimiter
from gateway.request_body import loads
from gateway.websocket import GatewayTransportWSHandler, OperationObserver
from resolvers.errors import BadUserInput, Unauthenticated
from resolvers.principal import Principal
from resolvers.store import Store
from schema.context import Context
from schema.limits import DEFAULT_LIMITS, OPERATION_NAME_KEY, QUERY_COST_KEY, QueryLimits

CONTEXT_SCOPE_KEY = "scv.context"
GET_METHODS = frozenset({"GET", "HEAD"})
GET_OPERATIONS = frozenset({OperationType.QUERY})
POST_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})


def refused_operation(exc: InvalidOperationTypeError, method: str) -> RequestRefused:
    """A mutation over GET is 405 (POST it); a subscription over HTTP is 400 (use the
    WebSocket)."""
    if exc.operation_type == OperationType.MUTATION and method in GET_METHODS:
        return RequestRefused(
            BadUserInput("mutations are not allowed over GET; send them with POST"),
            status=405,
            headers={"Allow": "POST"},
        )
    return bad_request(exc.as_http_error_reason(method))


def is_request_error(result: ExecutionResult) -> bool:
    """Nothing executed: parse, validation or variable errors (none has a path)."""
    return result.data is None and all(error.path is None for error in result.errors or ())


class GatewayGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app for the WebSocket; GraphQL over HTTP, the contract's auth and
    our own offline GraphiQL for HTTP requests."""

    graphql_transport_ws_handler_class = GatewayTransportWSHandler

    def __init__(
        self,
        schema: Any,
        *,
        store: Store,
        tokens: BearerTokens,
        dev_token: str | None,
        graphiql_local_assets: bool = True,
        limits: QueryLimits = DEFAULT_LIMITS,
        db_timeout_s: float | None = None,
        max_subscriptions: int = 10,
        operation_observer: OperationObserver | None = None,
        rate_limiter: RateLimiter | None = None,
        persisted_queries: PersistedQueries | None = None,
        allowed_origins: Sequence[str] = (),
        admission: Admission | None = None,
    ) -> None:
        super().__init__(  # its HTTP view is not used: see handle_http
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=max_subscriptions,
            allowed_origins=allowed_origins,  # SCV_CORS_ORIGINS: cross-origin WebSockets
        )
        self.operation_observer = operation_observer  # open WebSocket operations, ±1
        self.store = store
        self.tokens = tokens  # the app's authentication backend: its token parsing
        self.dev_token = dev_token
        self.graphiql_local_assets = graphiql_local_assets  # False: GraphiQL from the CDN
        self.limits = limits  # static query limits, handed to each request's context
        self.db_timeout_s = db_timeout_s  # one database deadline for a whole HTTP request
        self.rate_limiter = rate_limiter or RateLimiter()
        self.persisted_queries = persisted_queries or PersistedQueries()
        self.admission = admission or Admission(DEFAULT_ACTIVE_REQUESTS)

    def decode_json(self, data: str | bytes) -> object:
        """Bodies, WebSocket messages and query parameters: strict, never a stray exception."""
        return loads(data)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        user = request.scope.get("user")
        if isinstance(user, Caller):
            principal = user.principal
        else:  # a websocket: its token comes later, in connection_init
            principal = Principal(org="", sub="", permissions=frozenset())
        context = Context.create(principal, self.store, self.limits)
        request.scope[CONTEXT_SCOPE_KEY] = context
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """graphql-transport-ws: the bearer token is in the connection_init payload."""
        params = context.connection_params or {}
        header = params.get("Authorization") or params.get("authorization")
        try:
            principal = self.tokens.principal(header if isinstance(header, str) else None)
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
        """GraphQL over HTTP: GraphiQL for a browser, else auth, rate limit, parameters, run."""
        if self.wants_graphiql(request):
            return self.graphiql_page()
        media_type = response_media_type(request.headers.get("accept"))
        try:
            principal = principal_of(request)  # AuthenticationMiddleware read the token
        except Unauthenticated as exc:
            return domain_error_response(exc, media_type)
        info = current_request()
        if info is not None:
            info.org = principal.org
        try:
            self.rate_limiter.check(principal)
            params = self.persisted_queries.resolve(await self.request_params(request))
            # every database operation of this request shares one deadline
            # (and its wait for a place to execute, which ends with a 503 at the deadline)
            with pymongo.timeout(self.db_timeout_s):
                async with self.admission.place(within=self.db_timeout_s):
                    return await self.execute_request(request, params, media_type)
        except RequestRefused as refused:
            return refusal_response(refused, media_type)
        except HTTPException as exc:
            return error_response(
                exc.status_code, exc.reason, BadUserInput.code, media_type=media_type
            )

    def wants_graphiql(self, request: Request) -> bool:
        """A browser opening /graphql: a GET that prefers HTML and carries no query."""
        return (
            request.method in GET_METHODS
            and "query" not in request.query_params
            and prefers_html(request.headers.get("accept"))
        )

    def graphiql_page(self) -> HTMLResponse:
        info = current_request()
        if info is not None:
            info.graphiql = True
        headers = {"Authorization": f"Bearer {self.dev_token}"} if self.dev_token else None
        return HTMLResponse(
            graphiql_html(
                endpoint="/graphql", headers=headers, local_assets=self.graphiql_local_assets
            )
        )

    async def request_params(self, request: Request) -> GraphQLParams:
        """The request's GraphQL parameters: the query string of a GET, the body of a POST."""
        if request.method in GET_METHODS:
            if request.headers.get("content-length", "0") != "0" or (
                "transfer-encoding" in request.headers
            ):
                raise bad_request("a GET request carries its parameters in the URL, not a body")
            return params_from_query(request.query_params)
        content_type = request.headers.get("content-type", "")
        if "application/json" not in content_type.lower():
            raise bad_request("the request body must be application/json")
        payload = self.parse_json(await request.body())  # the one place a POST body is parsed
        return params_from_json(payload)

    async def execute_request(
        self, request: Request, params: GraphQLParams, media_type: str
    ) -> Response:
        """Runs the operation; a request error is a 400 under graphql-response+json."""
        context = await self.get_context(request, None)
        is_get = request.method in GET_METHODS
        try:
            result = await self.schema.execute(
                params.query,
                variable_values=params.variables,
                context_value=context,
                operation_name=params.operation_name,
                allowed_operation_types=GET_OPERATIONS if is_get else POST_OPERATIONS,
                operation_extensions=params.extensions,
            )
        except MissingQueryError:
            raise bad_request("No GraphQL query found in the request") from None
        except CannotGetOperationTypeError as exc:
            raise bad_request(exc.as_http_error_reason()) from None
        except InvalidOperationTypeError as exc:
            raise refused_operation(exc, request.method) from None
        body = dict(await self.process_result(request, result))
        status = 200
        if media_type == GRAPHQL_RESPONSE_JSON and is_request_error(result):
            status = 400
            body.pop("data", None)
        return Response(encode_response(body), status_code=status, media_type=media_type)

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
