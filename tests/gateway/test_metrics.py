"""``GET /metrics``: requests, latencies, database commands, subscriptions, database state."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from bench.operations import database_use
from gateway.app import create_app
from gateway.embedded import EmbeddedServer
from gateway.metrics import MAX_OPERATIONS, Metrics, outcome, sanitise_name
from gateway.settings import Settings
from resolvers.store import Store
from tests.conftest import SECRET, Api, codes

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

CREATE = 'mutation Make { createContact(input: {firstName: "Ada", lastName: "Byron", workEmail: "ada@example.com"}) { id } }'
FIND = "query Find($id: ID!) { contact(id: $id) { id firstName } }"
BAD = 'mutation Bad { createContact(input: {firstName: "A", lastName: "B", workEmail: "ada@@example.com"}) { id } }'


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def label_values(samples: Samples, name: str, label: str, **where: str) -> set[str]:
    found = set()
    for (sample_name, labels), _ in samples.items():
        items = dict(labels)
        if sample_name == name and all(items.get(k) == v for k, v in where.items()):
            found.add(items[label])
    return found


class Served:
    def __init__(self, app: Starlette, http: httpx.AsyncClient) -> None:
        self.app = app
        self.http = http
        self.api = Api(http)
        self.metrics: Metrics = app.state.runtime.metrics

    async def scrape(self) -> tuple[str, Samples]:
        response = await self.http.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return response.text, parse(response.text)


@pytest.fixture
async def served(mongo_uri: str, settings: Settings, store: Store) -> AsyncIterator[Served]:
    app = create_app(settings, uri=mongo_uri, secret=SECRET, ensure_indexes=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Served(app, http)
    await app.state.runtime.close()


async def test_requests_are_counted_by_operation_and_outcome(served: Served) -> None:
    api = served.api
    contact_id = (await api.gql(CREATE))["createContact"]["id"]
    found = await api.gql(FIND, {"id": contact_id})
    assert found["contact"]["firstName"] == "Ada"
    _, errors = await api.gql_error(BAD)
    assert codes(errors) == ["BAD_USER_INPUT"]
    _, errors = await api.gql_error('query Who { contact(id: "x") { id } }', permissions=[])
    assert codes(errors) == ["FORBIDDEN"]
    await api.gql("{ __typename }")
    assert (await api.post("{ __typename }", token="not-a-jwt")).status_code == 401
    assert (await served.http.get("/healthz")).status_code == 200
    assert (await served.http.get("/no/such/path")).status_code == 404

    text, samples = await served.scrape()
    requests = {
        (labels["route"], labels["operation"], labels["outcome"]): v
        for (name, frozen), v in samples.items()
        if name == "scv_requests_total"
        for labels in [dict(frozen)]
    }
    assert requests == {
        ("graphql", "Make", "ok"): 1,
        ("graphql", "Find", "ok"): 1,
        ("graphql", "Bad", "BAD_USER_INPUT"): 1,
        ("graphql", "Who", "FORBIDDEN"): 1,
        ("graphql", "_anonymous", "ok"): 1,
        ("graphql", "_anonymous", "UNAUTHENTICATED"): 1,
        ("healthz", "", "ok"): 1,  # no GraphQL operation: the route says it all
        ("other", "", "HTTP_404"): 1,
    }
    histogram = "scv_request_duration_seconds"
    assert value(samples, f"{histogram}_count", route="graphql", operation="Make") == 1
    assert value(samples, f"{histogram}_count", route="graphql", operation="_anonymous") == 2
    assert value(samples, f"{histogram}_bucket", route="graphql", operation="Find", le="+Inf") == 1
    assert (value(samples, f"{histogram}_sum", route="graphql", operation="Find") or 0) > 0

    db = "scv_db_command_duration_seconds_count"
    assert (value(samples, db, command="insert", outcome="ok") or 0) >= 1
    assert (value(samples, db, command="find", outcome="ok") or 0) >= 1

    assert value(samples, "scv_database_info", mode="external") == 1
    assert not any(name == "scv_embedded_database_up" for name, _ in samples)
    assert value(samples, "scv_open_subscriptions") == 0
    # no tenant data: no org, no ids, no values, no caller-chosen paths
    for secret in ("acme", contact_id, "Ada", "example.com", "/no/such/path"):
        assert secret not in text


async def test_scrapes_count_under_their_own_route(served: Served) -> None:
    await served.scrape()
    _, samples = await served.scrape()  # a request is counted when it has ended
    assert value(samples, "scv_requests_total", route="metrics", operation="", outcome="ok") == 1
    assert not label_values(samples, "scv_requests_total", "operation", route="graphql")


async def test_operation_names_are_sanitised_and_capped(served: Served) -> None:
    api = served.api
    await api.gql("query Call18031230000 { __typename }")
    for n in range(150):
        await api.gql(f"query Op{n} {{ __typename }}")
    text, samples = await served.scrape()
    names = label_values(samples, "scv_requests_total", "operation", route="graphql")
    assert "Call_" in names
    assert "18031230000" not in text
    assert len(names) == MAX_OPERATIONS + 1
    assert "_other" in names
    assert (
        value(samples, "scv_requests_total", route="graphql", operation="_other", outcome="ok")
        == 51
    )
    durations = label_values(samples, "scv_request_duration_seconds_count", "operation")
    assert len(durations) == MAX_OPERATIONS + 1


async def test_the_open_subscriptions_gauge_follows_its_api(served: Served) -> None:
    metrics = served.metrics

    async def gauge() -> float | None:
        _, samples = await served.scrape()
        return value(samples, "scv_open_subscriptions")

    assert await gauge() == 0
    metrics.subscription_opened()
    metrics.subscription_opened()
    assert await gauge() == 2
    metrics.subscription_closed()
    with metrics.open_subscription():
        assert await gauge() == 2
    assert await gauge() == 1
    metrics.subscriptions_changed(+1)
    metrics.subscriptions_changed(-1)
    metrics.subscriptions_changed(-1)
    assert await gauge() == 0
    with pytest.raises(RuntimeError), metrics.open_subscription():
        raise RuntimeError("the subscription failed")
    assert await gauge() == 0


async def test_embedded_database_state_and_readiness(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "db").start()
    settings = Settings(SCV_DB_NAME="metrics", SCV_JWT_SECRET=SECRET, SCV_DB_TIMEOUT_MS=1000)
    app = create_app(settings, uri=server.uri, secret=SECRET, embedded=server)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.json()) == (
                200,
                {"status": "ready", "database": "embedded"},
            )
            samples = parse((await http.get("/metrics")).text)
            assert value(samples, "scv_database_info", mode="embedded") == 1
            assert value(samples, "scv_embedded_database_up") == 1

            assert server.process is not None
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)
            samples = parse((await http.get("/metrics")).text)
            assert value(samples, "scv_embedded_database_up") == 0
            not_ready = await http.get("/readyz")
            assert (not_ready.status_code, not_ready.json()) == (
                503,
                {
                    "status": "unavailable",
                    "reason": "embedded database process was killed by signal SIGKILL",
                },
            )
            server.stop()
            assert (await http.get("/readyz")).json()["reason"] == (
                "embedded database process was stopped"
            )
    finally:
        await app.state.runtime.close()
        server.stop()


@pytest.mark.parametrize(
    ("status", "error_codes", "expected"),
    [
        (200, [], "ok"),
        (200, ["FORBIDDEN", "NOT_FOUND"], "FORBIDDEN"),
        (200, ["SOMETHING_A_CALLER_MADE_UP"], "OTHER_ERROR"),
        (404, [], "HTTP_404"),
        (499, [], "HTTP_499"),
        (999, [], "HTTP_599"),
    ],
)
def test_outcomes_come_from_a_bounded_set(
    status: int, error_codes: list[str], expected: str
) -> None:
    assert outcome(status, error_codes) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("GetContact", "GetContact"),
        ("Call18031230000", "Call_"),
        ("x" * 200, "x" * 64),
        ("wéird-name", "w_ird_name"),
        ("", "_anonymous"),
    ],
)
def test_names_are_sanitised(name: str, expected: str) -> None:
    assert sanitise_name(name) == expected


def test_each_app_has_a_registry_of_its_own() -> None:
    first, second = Metrics(), Metrics()
    first.subscription_opened()
    assert first.registry is not second.registry
    assert b"scv_open_subscriptions 1.0" in first.render()[0]
    assert b"scv_open_subscriptions 0.0" in second.render()[0]


async def test_get_queries_count_as_graphql_and_the_page_as_graphiql(served: Served) -> None:
    auth = {"Authorization": f"Bearer {served.api.token()}"}
    query = "query Typename { __typename }"
    assert (await served.http.get("/graphql", params={"query": query}, headers=auth)).is_success
    limited = await served.http.get(
        "/graphql", params={"query": 'mutation M { deleteContact(id: "x") }'}, headers=auth
    )
    assert limited.status_code == 405
    page = await served.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")

    _, samples = await served.scrape()
    assert (
        value(samples, "scv_requests_total", route="graphql", operation="Typename", outcome="ok")
        == 1
    )
    assert (
        value(
            samples,
            "scv_requests_total",
            route="graphql",
            operation="_anonymous",
            outcome="BAD_USER_INPUT",
        )
        == 1
    )
    assert value(samples, "scv_requests_total", route="graphiql", operation="", outcome="ok") == 1


async def test_the_benchmark_reads_a_calls_database_commands_from_the_histogram(
    served: Served,
) -> None:
    """`make bench` prints each operation's commands and database time from /metrics."""
    contact_id = (await served.api.gql(CREATE))["createContact"]["id"]
    before = await database_use(served.http)
    idle = await database_use(served.http) - before
    assert idle.commands == 0  # a scrape sends no command
    before = await database_use(served.http)
    await served.api.gql("query($id: ID!) { contact(id: $id) { id } }", {"id": contact_id})
    used = await database_use(served.http) - before
    assert used.commands == 1  # one find by id
    assert 0 < used.seconds < 5
