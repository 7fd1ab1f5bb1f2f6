"""The Starlette application: /graphql, /healthz, /readyz, /metrics, the NDJSON export, GraphiQL
assets."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass

from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute

from gateway.admission import Admission, places_per_process
from gateway.auth import development_secret, mint_token, secret_length_warning
from gateway.authentication import BearerTokens
from gateway.body_limit import BodySizeLimit
from gateway.contact_export import export_contacts
from gateway.cors import cors_middleware
from gateway.database import close_client, make_client, make_store
from gateway.embedded import EmbeddedServer, running_uri
from gateway.export import export_conversations
from gateway.graphiql import assets_route, find_assets
from gateway.graphql_app import GatewayGraphQL
from gateway.last_resort import LastResort
from gateway.logs import RequestLogging
from gateway.metrics import Metrics
from gateway.persisted_queries import PersistedQueries
from gateway.person_export import export_person
from gateway.rate_limit import RateLimiter
from gateway.readiness import Readiness
from gateway.settings import Settings
from gateway.webhook_delivery import WebhookDeliverer
from resolvers.store import Doc, Store
from schema.limits import QueryLimits
from schema.schema import schema

log = logging.getLogger("scv.gateway")


@dataclass
class Runtime:
    """What a running gateway holds: settings, secret, client, store, metrics, embedded server."""

    settings: Settings
    secret: str
    dev_token: str | None
    client: AsyncMongoClient[Doc]
    streams: AsyncMongoClient[Doc]  # the change streams' own client (gateway/database.py)
    store: Store
    metrics: Metrics
    rate_limiter: RateLimiter
    admission: Admission  # how many GraphQL requests execute at once (SCV_ACTIVE_REQUESTS)
    embedded: EmbeddedServer | None = None  # the child process serving ``uri``, if ours

    async def close(self, *, collect: bool = False) -> None:
        """Close both database clients (``collect``: with :func:`close_client`, which also
        closes the sockets a cancelled connection attempt left behind)."""
        for client in (self.client, self.streams):
            await (close_client(client) if collect else client.close())


@dataclass
class Database:
    """Where the gateway's data is: a URI, and the embedded server behind it when it is ours."""

    uri: str
    embedded: EmbeddedServer | None = None
    where: str = ""  # for a person: "embedded at <path>" or the URI without credentials


class NoDatabase(RuntimeError):
    """A data command found no database to use; the message is one line for a person."""


_USERINFO = re.compile(r"(?<=://)[^@/]*@")
_SECRET_OPTION = re.compile(r"(?i)([?&][^=&]*(?:password|secret|token)[^=&]*=)[^&]*")


def uri_without_credentials(uri: str) -> str:
    """``uri`` without its ``user:password@`` and without password-like options."""
    return _SECRET_OPTION.sub(r"\1…", _USERINFO.sub("", uri))


def create_app(
    settings: Settings,
    *,
    uri: str,
    secret: str | None = None,
    dev_token: str | None = None,
    ensure_indexes: bool = True,
    listeners: Sequence[CommandListener] = (),
    embedded: EmbeddedServer | None = None,
) -> Starlette:
    """The ASGI app for a database at ``uri``; with no secret a development token is minted
    (``dev_token``: one minted already with ``secret``, as ``scv serve --workers`` does).

    ``embedded`` is the server behind ``uri`` when this process started it: /readyz and
    /metrics then report on its child process.
    """
    secret, dev_token = _secret_and_token(settings, secret, dev_token)
    runtime = _runtime(settings, uri, secret, dev_token, listeners, embedded)
    tokens = BearerTokens(secret)
    app = Starlette(
        routes=_routes(runtime, tokens),
        lifespan=_lifespan(runtime, ensure_indexes=ensure_indexes),
        middleware=_middleware(settings, runtime.metrics, tokens),
    )
    app.state.runtime = runtime
    return app


def _secret_and_token(
    settings: Settings, secret: str | None, dev_token: str | None
) -> tuple[str, str | None]:
    """The signing secret and the development token: without a secret, development mode (the
    data directory's secret, which `scv token` reads, and a token minted from it); a short
    secret is logged."""
    if secret is None:
        secret = development_secret(settings.dev_secret_file)
        return secret, mint_token(secret, org="dev", sub="developer")
    if (short := secret_length_warning(secret)) is not None:
        log.warning(short)
    return secret, dev_token


def _runtime(
    settings: Settings,
    uri: str,
    secret: str,
    dev_token: str | None,
    listeners: Sequence[CommandListener],
    embedded: EmbeddedServer | None,
) -> Runtime:
    """The metrics, both database clients (watched by ``listeners`` and the metrics), the store,
    the rate limiter and this process's share of the request places."""
    metrics = Metrics(embedded=embedded)
    watching = [*listeners, metrics.command_listener]
    client = make_client(uri, settings, listeners=watching)
    streams = make_client(uri, settings, listeners=watching, for_streams=True)
    return Runtime(
        settings,
        secret,
        dev_token,
        client,
        streams,
        make_store(client, settings, streams),
        metrics,
        RateLimiter(settings.rate_limit_per_minute),
        Admission(places_per_process(settings), on_waiting=metrics.requests_waiting_changed),
        embedded,
    )


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _routes(runtime: Runtime, tokens: BearerTokens) -> list[BaseRoute]:
    """/graphql (HTTP and WebSocket), health, readiness, metrics, the exports, GraphiQL's
    assets."""
    graphiql_assets = find_assets(runtime.settings.graphiql_assets)  # None: from the CDN (logged)
    graphql = _graphql_endpoint(runtime, tokens, local_assets=graphiql_assets is not None)
    return [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", Readiness(runtime.client, runtime.embedded).endpoint),
        Route("/metrics", runtime.metrics.endpoint, methods=["GET"]),  # no token: the scraper's
        Route("/export/conversations.ndjson", export_conversations, methods=["GET"]),
        Route("/export/person/{contact_id}.json", export_person, methods=["GET"]),
        Route("/export/contacts.ndjson", export_contacts, methods=["GET"]),
        assets_route(graphiql_assets),
    ]


def _lifespan(
    runtime: Runtime, *, ensure_indexes: bool
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """Start: the indexes (unless told not to), then the webhook deliverer. Stop: the
    deliverer, then the database clients."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if ensure_indexes:
            await runtime.store.ensure_indexes()
        deliverer = WebhookDeliverer(runtime.store)  # delivers while this process holds the lease
        await deliverer.start()
        try:
            yield
        finally:
            await deliverer.stop()
            await runtime.close(collect=True)

    return lifespan


def _graphql_endpoint(
    runtime: Runtime, tokens: BearerTokens, *, local_assets: bool
) -> GatewayGraphQL:
    """``/graphql`` over HTTP and WebSocket, with the settings' limits."""
    settings, metrics = runtime.settings, runtime.metrics
    return GatewayGraphQL(
        schema,
        store=runtime.store,
        tokens=tokens,
        dev_token=runtime.dev_token,
        graphiql_local_assets=local_assets,
        limits=query_limits(settings),
        db_timeout_s=settings.db_timeout_ms / 1000,
        max_subscriptions=settings.max_subscriptions,
        operation_observer=metrics.subscriptions_changed,
        rate_limiter=runtime.rate_limiter,
        persisted_queries=PersistedQueries(),
        allowed_origins=settings.cors_origin_list,
        admission=runtime.admission,
    )


def _middleware(settings: Settings, metrics: Metrics, tokens: BearerTokens) -> list[Middleware]:
    """Outermost first: a JSON 500 whatever fails; every request logged and counted; CORS
    (refusals carry its headers too); big bodies refused; the caller read once."""
    return [
        Middleware(LastResort),
        Middleware(RequestLogging, observer=metrics.observe_request),
        *cors_middleware(settings.cors_origin_list),
        Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
        Middleware(AuthenticationMiddleware, backend=tokens),  # request.user
    ]


def query_limits(settings: Settings) -> QueryLimits:
    """The static query limits of SCV_MAX_DEPTH, _ALIASES, _TOKENS and _COST."""
    return QueryLimits(
        max_depth=settings.max_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
        max_cost=settings.max_cost,
    )


@contextlib.contextmanager
def database(
    settings: Settings, *, share: bool = False, announce: Callable[[str], None] | None = None
) -> Iterator[Database]:
    """MONGODB_URI when set, else an embedded server on SCV_DATA_DIR (stopped on exit).

    With ``share`` (the CLI's data tools) an embedded server that `scv serve` already runs on
    the same directory is used instead of starting one (its files are locked while it runs);
    it is not ours, so ``embedded`` is then None. A data tool never creates a database: with
    neither a running server nor an existing data directory it raises :class:`NoDatabase`. ``announce`` is told
    when the start waits for the previous server of the directory to exit.
    """
    if settings.mongodb_uri:
        yield Database(settings.mongodb_uri, where=uri_without_credentials(settings.mongodb_uri))
        return
    data_dir = settings.data_dir.resolve()
    where = f"embedded at {data_dir}"
    if share:
        uri = running_uri(data_dir)
        if uri is not None:
            yield Database(uri, where=f"{where} (the running server, {uri})")
            return
        if not data_dir.is_dir():
            raise NoDatabase(
                f"no database at {data_dir}: set MONGODB_URI, or SCV_DATA_DIR to an existing "
                "data directory, or start make run (scv serve) first"
            )
    server = EmbeddedServer(
        data_dir, test_commands=settings.embedded_test_commands, announce=announce
    )
    server.start()
    try:
        yield Database(server.uri, server, where=where)
    finally:
        server.stop()
