"""The database clients: requests share SCV_DB_CONNECTIONS among the workers; change streams,
whose getMore holds its connection while it waits, have a client of their own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from bench.command_log import CommandLog
from gateway.app import create_app
from gateway.database import make_client, make_store, request_pool_size
from gateway.settings import Settings
from gateway.workers import worker_environment
from resolvers import changes, journey_updates
from resolvers.store import Doc, Store
from tests.conftest import SECRET

DEFAULT_POOL = 100  # PyMongo's maxPoolSize when none is given


def pool_of(client: AsyncMongoClient[Doc]) -> int:
    return int(client.options.pool_options.max_pool_size)


@pytest.mark.parametrize(
    ("connections", "workers", "each"), [(16, 1, 16), (16, 2, 8), (16, 3, 5), (16, 64, 2)]
)
def test_the_workers_share_the_request_connections(
    mongo_uri: str, connections: int, workers: int, each: int
) -> None:
    settings = Settings(SCV_DB_CONNECTIONS=connections, SCV_WORKERS=workers)
    assert request_pool_size(mongo_uri, settings) == each


async def test_the_request_client_has_its_share_and_the_stream_client_the_default(
    mongo_uri: str,
) -> None:
    settings = Settings(SCV_WORKERS=2)
    requests = make_client(mongo_uri, settings)
    streams = make_client(mongo_uri, settings, for_streams=True)
    try:
        assert pool_of(requests) == 8
        assert pool_of(streams) == DEFAULT_POOL
    finally:
        await requests.close()
        await streams.close()


@pytest.mark.parametrize("option", ["maxPoolSize=50", "maxpoolsize=50"])
async def test_a_pool_size_in_the_uri_wins(mongo_uri: str, option: str) -> None:
    uri = f"{mongo_uri}&{option}"
    settings = Settings(SCV_WORKERS=2)
    assert request_pool_size(uri, settings) is None
    client = make_client(uri, settings)
    try:
        assert pool_of(client) == 50
    finally:
        await client.close()


def test_the_workers_learn_their_count_from_the_environment() -> None:
    with worker_environment("mongodb://127.0.0.1:1/", "s" * 32, None, 3):
        assert Settings().workers == 3  # what each worker process reads
    assert Settings().workers == 1


@contextlib.asynccontextmanager
async def logged_store(
    mongo_uri: str, db_name: str
) -> AsyncIterator[tuple[Store, CommandLog, CommandLog]]:
    """A store over two clients, each with its own command log."""
    settings = Settings(SCV_DB_NAME=db_name)
    request_log, stream_log = CommandLog(), CommandLog()
    requests = make_client(mongo_uri, settings, listeners=[request_log])
    streams = make_client(mongo_uri, settings, listeners=[stream_log], for_streams=True)
    try:
        yield make_store(requests, settings, streams), request_log, stream_log
    finally:
        await requests.close()
        await streams.close()


def change_streams(log: CommandLog) -> list[str]:
    """The collections of the change streams a log shows opened."""
    return [
        event.command["aggregate"]
        for event in log.events
        if event.command_name == "aggregate"
        and any("$changeStream" in stage for stage in event.command.get("pipeline", []))
    ]


async def until_streaming(log: CommandLog) -> None:
    for _ in range(250):  # up to 5 s
        if change_streams(log) and any(e.command_name == "getMore" for e in log.events):
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"no change stream was followed: {log.names()}")


async def drain(iterator: AsyncIterator[Any]) -> None:
    async for _ in iterator:
        pass


Follow = Callable[[Store], AsyncIterator[Any]]


@pytest.mark.parametrize(
    ("follow", "collection"),
    [
        (lambda store: changes.follow(store, "acme", None, wait_ms=200), "changes"),
        (lambda store: journey_updates.journey_updates(store, "acme", "c-1"), "conversations"),
    ],
    ids=["change feed", "journey updates"],
)
async def test_change_streams_wait_on_their_own_connections(
    mongo_uri: str, store: Store, db_name: str, follow: Follow, collection: str
) -> None:
    async with logged_store(mongo_uri, db_name) as (two_clients, request_log, stream_log):
        task = asyncio.create_task(drain(follow(two_clients)))
        try:
            await until_streaming(stream_log)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert change_streams(stream_log) == [collection]
    assert {e.command_name for e in stream_log.events} <= {"aggregate", "getMore", "killCursors"}
    assert change_streams(request_log) == []
    assert not [e for e in request_log.events if e.command_name == "getMore"]


async def test_the_app_follows_changes_on_the_stream_client(
    mongo_uri: str, settings: Settings
) -> None:
    app = create_app(settings, uri=mongo_uri, secret=SECRET, ensure_indexes=False)
    runtime = app.state.runtime
    try:
        assert runtime.store.changes_watched.database.client is runtime.streams
        assert runtime.store.conversations_watched.database.client is runtime.streams
        assert runtime.store.changes.database.client is runtime.client
        assert pool_of(runtime.client) == settings.db_connections
        assert pool_of(runtime.streams) == DEFAULT_POOL
    finally:
        await runtime.close()
