"""One embedded server per session; each test gets a database of its own."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import os
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pymongo import AsyncMongoClient
from starlette.applications import Starlette

from bench.command_log import CommandLog
from gateway.app import create_app
from gateway.auth import ALL_PERMISSIONS, mint_token
from gateway.embedded import EmbeddedServer, free_port
from gateway.logs import json_handler
from gateway.settings import Settings
from resolvers.principal import Principal
from resolvers.store import Doc, DomainConfig, Store

SECRET = "test-secret-" + "x" * 32


@pytest.fixture(scope="session", autouse=True)
def _data_dir_outside_the_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """SCV_DATA_DIR of every test (and of the `scv` processes tests start) is a temporary
    directory: no test writes the project's .scv-data or development secret."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCV_DATA_DIR", str(tmp_path_factory.mktemp("project") / ".scv-data"))
        yield


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    data_dir: Path = tmp_path_factory.mktemp("embedded") / "data"
    with EmbeddedServer(data_dir, test_commands=True) as server:
        yield server.uri


@pytest.fixture
def db_name() -> str:
    return f"scv_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(db_name: str) -> Settings:
    return Settings(SCV_DB_NAME=db_name, SCV_JWT_SECRET=SECRET)


@pytest.fixture
async def client(mongo_uri: str) -> AsyncIterator[AsyncMongoClient[Doc]]:
    mongo: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_uri, tz_aware=True)
    yield mongo
    await mongo.close()


@pytest.fixture
async def fail_once(client: AsyncMongoClient[Doc]) -> AsyncIterator[Any]:
    """``await fail_once(command, skip=0)``: the server fails the next ``command`` (after
    ``skip`` of them) once, with a non-transient error (a failpoint); off after the test."""

    async def arm(command: str, skip: int = 0) -> None:
        mode: dict[str, int] = {"skip": skip, "times": 1} if skip else {"times": 1}
        await client.admin.command(
            {
                "configureFailPoint": "failCommand",
                "mode": mode,
                "data": {"failCommands": [command], "errorCode": 2},
            }
        )

    yield arm
    await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


@pytest.fixture
async def store(
    client: AsyncMongoClient[Doc], settings: Settings, db_name: str
) -> AsyncIterator[Store]:
    store = Store(client[db_name], DomainConfig())
    await store.ensure_indexes()
    yield store
    # (no killAllSessions first: SecantusDB's abort_all can deadlock against a statement in
    # flight; tests wait for every request they start before asserting instead)
    await client.drop_database(db_name)


def principal(
    org: str = "acme", sub: str = "agent-1", permissions: tuple[str, ...] = ALL_PERMISSIONS
) -> Principal:
    return Principal(org=org, sub=sub, permissions=frozenset(permissions))


class Api:
    """Posts GraphQL to the app over ASGI, with a token for the chosen org and permissions."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    def token(
        self,
        org: str = "acme",
        sub: str = "agent-1",
        permissions: tuple[str, ...] | list[str] = ALL_PERMISSIONS,
    ) -> str:
        return mint_token(SECRET, org=org, sub=sub, permissions=permissions)

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        org: str = "acme",
        sub: str = "agent-1",
        permissions: tuple[str, ...] | list[str] = ALL_PERMISSIONS,
        token: str | None = None,
    ) -> httpx.Response:
        auth = token if token is not None else self.token(org, sub, permissions)
        return await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {auth}"},
        )

    async def gql(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        response = await self.post(query, variables, **kw)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def gql_error(
        self, query: str, variables: dict[str, Any] | None = None, **kw: Any
    ) -> tuple[Any, list[dict[str, Any]]]:
        response = await self.post(query, variables, **kw)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.get("errors"), body
        return body.get("data"), body["errors"]


def codes(errors: list[dict[str, Any]]) -> list[str]:
    return [e["extensions"]["code"] for e in errors]


@contextlib.asynccontextmanager
async def api_of(app: Starlette) -> AsyncIterator[Api]:
    """:class:`Api` over ASGI to ``app``; its database clients are closed afterwards."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Api(http)
    await app.state.runtime.close()


def gateway_app(mongo_uri: str, settings: Settings, **kw: Any) -> Starlette:
    """The gateway's app for tests: the test secret, indexes made by the ``store`` fixture."""
    return create_app(settings, uri=mongo_uri, secret=SECRET, ensure_indexes=False, **kw)


@pytest.fixture
async def api(mongo_uri: str, settings: Settings, store: Store) -> AsyncIterator[Api]:
    async with api_of(gateway_app(mongo_uri, settings)) as found:
        yield found


@pytest.fixture
async def counted(
    mongo_uri: str, settings: Settings, store: Store
) -> AsyncIterator[tuple[Api, CommandLog]]:
    """The API, and a log of every database command it sends."""
    log = CommandLog()
    async with api_of(gateway_app(mongo_uri, settings, listeners=[log])) as found:
        yield found, log


@contextlib.asynccontextmanager
async def served(app: Starlette) -> AsyncIterator[int]:
    """A real uvicorn serving ``app`` on a free loopback port (yielded) until the block ends;
    then the app's database client is closed too."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
        await app.state.runtime.close()
        # a connection a browser opened and dropped (Chromium preconnects) can outlive
        # uvicorn's shutdown as an unclosed socket; collect it here, not in a later test
        with refused_sockets_collected():
            pass


@pytest.fixture
async def ws_url(mongo_uri: str, settings: Settings, store: Store) -> AsyncIterator[str]:
    """A real uvicorn serving the app on a loopback port; its ``ws://…/graphql`` URL."""
    app = gateway_app(mongo_uri, settings)
    async with served(app) as port:
        yield f"ws://127.0.0.1:{port}/graphql"


@contextlib.contextmanager
def refused_sockets_collected() -> Iterator[None]:
    """For tests that point a client at a dead port: PyMongo's async client leaves the socket
    of a refused connection to the garbage collector, whose ResourceWarning would otherwise
    fail whichever later test happens to collect it. Keep no exception or result that
    references the client's frames past the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            yield
        finally:
            gc.collect()


@contextlib.contextmanager
def json_logs() -> Iterator[io.StringIO]:
    """Every record logged in the block, as the JSON lines ``scv serve`` writes (INFO and up)."""
    stream = io.StringIO()
    handler = json_handler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
async def logged(
    mongo_uri: str, db_name: str, store: Store
) -> AsyncIterator[tuple[Store, CommandLog]]:
    """The test's database through a client that logs every command."""
    log = CommandLog()
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        mongo_uri, tz_aware=True, event_listeners=[log]
    )
    yield Store(client[db_name], DomainConfig()), log
    await client.close()


LEFTOVER_GRACE_S = 2.0  # a task a test left behind may end on its own (a stream being closed)
LEFTOVER_CANCEL_S = 5.0  # then it is cancelled, and must end within this


async def finish_leftover_tasks(
    before: set[asyncio.Task[Any]], where: str, *, collect: bool = False
) -> None:
    """Every task started since ``before`` that still runs: waited for, then cancelled, while
    the database is still up. A task left to the event loop's close at the end of the session
    is cancelled after the server has stopped, where a driver call can swallow its
    cancellation and retry against a dead server (CI once hung 300 s there). One that will
    not end even cancelled fails ``where`` with its stack."""
    if collect:  # an abandoned async generator's aclose() is scheduled as a task by the GC
        with refused_sockets_collected():
            pass
        await asyncio.sleep(0)
    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() if t not in before and t is not current}
    if not left:
        return
    _, pending = await asyncio.wait(left, timeout=LEFTOVER_GRACE_S)
    for task in pending:
        task.cancel()
    if pending:
        _, stuck = await asyncio.wait(pending, timeout=LEFTOVER_CANCEL_S)
        if stuck:
            stacks = "\n".join(f"{t.get_name()}: {t.get_stack()}" for t in stuck)
            pytest.fail(f"{where} left tasks that do not end when cancelled:\n{stacks}")
    for task in left:  # retrieved: an ended task's error is not reported at the loop's close
        if task.done() and not task.cancelled():
            task.exception()


@pytest.fixture(autouse=True)
async def _no_task_outlives_its_test(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    before = set(asyncio.all_tasks())
    yield
    await finish_leftover_tasks(before, request.node.nodeid)


@pytest.fixture(scope="session", autouse=True)
async def _no_task_outlives_the_session(mongo_uri: str) -> AsyncIterator[None]:
    """Set up after the session's server, so torn down before it stops."""
    before = set(asyncio.all_tasks())
    yield
    await finish_leftover_tasks(before, "the session", collect=True)
