"""The Starlette application: /graphql, /healthz, /readyz, the NDJSON export, GraphiQL assets."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from pymongo.monitoring import CommandListener
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from gateway.auth import generate_secret, mint_token
from gateway.body_limit import BodySizeLimit
from gateway.database import make_client, make_store
from gateway.embedded import EmbeddedServer, running_uri
from gateway.export import export_conversations
from gateway.graphiql import STATIC_DIR, STATIC_URL_PREFIX
from gateway.graphql_app import GatewayGraphQL
from gateway.logs import RequestLogging
from gateway.settings import Settings
from resolvers.store import Doc, Store
from schema.limits import QueryLimits
from schema.schema import schema

log = logging.getLogger("scv.gateway")


@dataclass
class Runtime:
    """What a running gateway holds: the settings, the secret, the client and the store."""

    settings: Settings
    secret: str
    dev_token: str | None
    client: AsyncMongoClient[Doc]
    store: Store


def create_app(
    settings: Settings,
    *,
    uri: str,
    secret: str | None = None,
    ensure_indexes: bool = True,
    listeners: Sequence[CommandListener] = (),
) -> Starlette:
    """The ASGI app for a database at ``uri``; with no secret a development token is minted."""
    dev_token: str | None = None
    if secret is None:
        secret = generate_secret()
        dev_token = mint_token(secret, org="dev", sub="developer")
    client = make_client(uri, settings, listeners=listeners)
    store = make_store(client, settings)
    runtime = Runtime(settings, secret, dev_token, client, store)
    graphql = GatewayGraphQL(
        schema,
        store=store,
        secret=secret,
        dev_token=dev_token,
        limits=query_limits(settings),
        db_timeout_s=settings.db_timeout_ms / 1000,
    )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        try:
            await client.admin.command("ping")
        except PyMongoError:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if ensure_indexes:
            await store.ensure_indexes()
        try:
            yield
        finally:
            await client.close()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/export/conversations.ndjson", export_conversations, methods=["GET"]),
            Mount(STATIC_URL_PREFIX, app=StaticFiles(directory=STATIC_DIR), name="graphiql"),
        ],
        lifespan=lifespan,
        middleware=[  # outermost first: every request is logged, big bodies refused
            Middleware(RequestLogging),
            Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
        ],
    )
    app.state.runtime = runtime
    return app


def query_limits(settings: Settings) -> QueryLimits:
    """The static query limits of SCV_MAX_DEPTH, _ALIASES, _TOKENS and _COST."""
    return QueryLimits(
        max_depth=settings.max_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
        max_cost=settings.max_cost,
    )


@contextlib.contextmanager
def database_uri(settings: Settings, *, share: bool = False) -> Iterator[str]:
    """MONGODB_URI when set, else an embedded server on SCV_DATA_DIR (stopped on exit).

    With ``share`` (the CLI's data tools) an embedded server that `scv serve` already runs on
    the same directory is used instead of starting one (its files are locked while it runs).
    """
    if settings.mongodb_uri:
        yield settings.mongodb_uri
        return
    if share:
        uri = running_uri(settings.data_dir.resolve())
        if uri is not None:
            yield uri
            return
    server = EmbeddedServer(
        settings.data_dir.resolve(), test_commands=settings.embedded_test_commands
    )
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()
