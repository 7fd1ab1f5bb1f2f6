"""``GET /metrics``: the gateway's Prometheus metrics, one registry per app.

* ``scv_requests_total{route, operation, outcome}`` and
  ``scv_request_duration_seconds{route, operation}``: every HTTP request, fed by
  :class:`gateway.logs.RequestLogging` when a request ends. ``route`` is the kind of
  endpoint (``graphql``, ``graphiql``, ``export``, ``healthz``, ``readyz``, ``metrics``,
  ``static``, ``other``); ``operation`` is the GraphQL operation name for ``graphql``
  (sanitised; the first :data:`MAX_OPERATIONS` distinct names, then ``_other``; no name
  → ``_anonymous``) and empty for every other route (it has no operation; ``route`` says
  which endpoint it was); ``outcome`` is ``ok`` or the first
  error code of the response (``HTTP_<status>`` for an error without one).
* ``scv_db_command_duration_seconds{command, outcome}``: every database command of the
  gateway's client (a PyMongo :class:`CommandListener`), ``outcome`` ``ok`` or ``failed``.
* ``scv_open_subscriptions``: GraphQL operations open on WebSockets right now.
* ``scv_database_info{mode}`` (``embedded`` or ``external``) and, with the embedded server,
  ``scv_embedded_database_up`` (1 while its child process runs, checked at scrape time).
* The client library's ``process_*`` and ``python_*`` families for this process.

With ``scv serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set, see :mod:`gateway.workers`)
the metrics above live in prometheus-client's per-process files and ``/metrics`` on any
worker reports their sum over every worker (``scv_open_subscriptions`` as a live sum);
the per-process ``process_*``/``python_*`` families are then left out, as the client library
does in that mode.

Nothing here carries tenant data: no org, no ids, no values; label values come from
bounded sets. The endpoint needs no token (it is for the operator's scraper).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)
from starlette.requests import Request
from starlette.responses import Response

from gateway.embedded import EmbeddedServer
from gateway.graphiql import STATIC_URL_PREFIX
from gateway.logs import RequestInfo
from schema.errors import ERROR_CODES

__all__ = [
    "DB_BUCKETS",
    "KNOWN_CODES",
    "MAX_OPERATIONS",
    "REQUEST_BUCKETS",
    "CommandMetrics",
    "Metrics",
]

MAX_OPERATIONS: Final = 100  # distinct GraphQL operation names before "_other"
MAX_COMMANDS: Final = 60  # distinct database command names before "_other"
MAX_NAME_LENGTH: Final = 64

REQUEST_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

ANONYMOUS: Final = "_anonymous"
NO_OPERATION: Final = ""  # the operation label of a route that is not a GraphQL request
OTHER: Final = "_other"
OK: Final = "ok"

# The contract's codes and GraphQL's own; anything else becomes OTHER_ERROR.
KNOWN_CODES: Final = ERROR_CODES

# path → route for the exact paths the app serves; STATIC_PREFIX is a whole mount
_ROUTES: Final = {
    "/healthz": "healthz",
    "/readyz": "readyz",
    "/metrics": "metrics",
    "/export/conversations.ndjson": "export",
}
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_]")
_DIGIT_RUN = re.compile(r"\d{7,}")  # phone-number-like: never a label value


def sanitise_name(name: str) -> str:
    """A label-safe form of a caller's name: ``[A-Za-z0-9_]``, no long digit runs, short."""
    clean = _DIGIT_RUN.sub("_", _NOT_A_NAME.sub("_", name))[:MAX_NAME_LENGTH]
    return clean or ANONYMOUS


class _Capped:
    """The first ``limit`` distinct values pass as they are; later ones become ``_other``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        with self._lock:
            if len(self.seen) < self.limit:
                self.seen.add(value)
                return value
        return OTHER


def outcome(status: int, codes: list[str]) -> str:
    """``ok``, the first error code (bounded), or ``HTTP_<status>`` for a bare error."""
    if codes:
        return codes[0] if codes[0] in KNOWN_CODES else "OTHER_ERROR"
    if status >= 400:
        return f"HTTP_{min(max(status, 400), 599)}"
    return OK


class CommandMetrics(CommandListener):
    """Database command durations; PyMongo's succeeded/failed events carry the duration."""

    def __init__(self, histogram: Histogram, limit: int = MAX_COMMANDS) -> None:
        self.histogram = histogram
        self.names = _Capped(limit)

    def started(self, event: CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: CommandSucceededEvent) -> None:
        self._observe(event.command_name, OK, event.duration_micros)

    def failed(self, event: CommandFailedEvent) -> None:
        self._observe(event.command_name, "failed", event.duration_micros)

    def _observe(self, name: str, result: str, micros: int) -> None:
        command = self.names(sanitise_name(name))
        self.histogram.labels(command=command, outcome=result).observe(micros / 1_000_000)


class _DatabaseState:
    """Collected at scrape time: which database, and whether the embedded child runs."""

    def __init__(self, embedded: EmbeddedServer | None) -> None:
        self.embedded = embedded

    def describe(self) -> Iterable[Metric]:
        return self._families(with_samples=False)

    def collect(self) -> Iterable[Metric]:
        return self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> list[Metric]:
        info = GaugeMetricFamily(
            "scv_database_info",
            "The database the gateway uses: the embedded child process or MONGODB_URI.",
            labels=["mode"],
        )
        families: list[Metric] = [info]
        if with_samples:
            info.add_metric(["embedded" if self.embedded is not None else "external"], 1)
        if self.embedded is not None:
            up = GaugeMetricFamily(
                "scv_embedded_database_up",
                "1 while the embedded database's child process runs, else 0.",
                value=(1 if self.embedded.exit_reason() is None else 0) if with_samples else None,
            )
            families.append(up)
        return families


class Metrics:
    """Every metric of one app, in a registry of its own (never the global default)."""

    def __init__(
        self, *, embedded: EmbeddedServer | None = None, max_operations: int = MAX_OPERATIONS
    ) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "scv_requests",
            "HTTP requests by route, GraphQL operation name and outcome (ok or error code).",
            ["route", "operation", "outcome"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "scv_request_duration_seconds",
            "Time from request to the end of the response, by route and GraphQL operation.",
            ["route", "operation"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.db_command_duration = Histogram(
            "scv_db_command_duration_seconds",
            "Database command round trips of the gateway's client, by command and outcome.",
            ["command", "outcome"],
            buckets=DB_BUCKETS,
            registry=registry,
        )
        self.open_subscriptions = Gauge(
            "scv_open_subscriptions",
            "GraphQL operations (subscriptions) open on WebSocket connections.",
            registry=registry,
            multiprocess_mode="livesum",  # with workers: the sum over the live ones
        )
        self.waiting_requests = Gauge(
            "scv_requests_waiting",
            "GraphQL requests waiting for a place to execute (SCV_ACTIVE_REQUESTS).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        database_state = _DatabaseState(embedded)
        registry.register(database_state)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.exposition = registry  # what /metrics renders
        shared_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if shared_dir:  # workers: every process's samples, summed
            self.exposition = CollectorRegistry()
            MultiProcessCollector(self.exposition, path=shared_dir)  # type: ignore[no-untyped-call]
            self.exposition.register(database_state)
        self.command_listener = CommandMetrics(self.db_command_duration)
        self._operations = _Capped(max_operations)

    # --- requests (RequestLogging's observer) ---------------------------------------

    def observe_request(self, info: RequestInfo, elapsed_s: float) -> None:
        """One finished HTTP request, as the request log line describes it."""
        route, operation = self.route_of(info)
        status = info.status if info.status is not None else 500
        self.requests.labels(route, operation, outcome(status, info.codes)).inc()
        self.request_duration.labels(route, operation).observe(elapsed_s)

    def route_of(self, info: RequestInfo) -> tuple[str, str]:
        """``(route, operation)`` labels: only bounded values, never the raw path."""
        path = info.path
        if path == "/graphql":
            if info.graphiql:
                return "graphiql", NO_OPERATION
            if not info.operation:
                return "graphql", ANONYMOUS
            return "graphql", self._operations(sanitise_name(info.operation))
        route = _ROUTES.get(path)
        if route is not None:
            return route, NO_OPERATION
        if path.startswith(STATIC_URL_PREFIX + "/"):
            return "static", NO_OPERATION
        return "other", NO_OPERATION

    # --- subscriptions ---------------------------------------------------------------

    def subscription_opened(self) -> None:
        self.open_subscriptions.inc()

    def subscription_closed(self) -> None:
        self.open_subscriptions.dec()

    def subscriptions_changed(self, delta: int) -> None:
        """+1 when an operation opens, -1 when it ends (``gateway.websocket.OperationObserver``)."""
        self.open_subscriptions.inc(delta)

    @contextlib.contextmanager
    def open_subscription(self) -> Iterator[None]:
        """``with metrics.open_subscription(): ...`` counts one open subscription meanwhile."""
        self.subscription_opened()
        try:
            yield
        finally:
            self.subscription_closed()

    def requests_waiting_changed(self, delta: int) -> None:
        """+1 when a GraphQL request starts waiting for its place, -1 when it stops."""
        self.waiting_requests.inc(delta)

    # --- the endpoint ------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition for a scraper's ``Accept`` header, and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.exposition), content_type

    async def endpoint(self, request: Request) -> Response:
        body, content_type = self.render(request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})
