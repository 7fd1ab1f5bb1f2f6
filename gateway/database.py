"""The database connection: PyMongo's AsyncMongoClient to the embedded server or MONGODB_URI."""

from __future__ import annotations

import asyncio
import gc
import re
import warnings
from collections.abc import Sequence
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from gateway.settings import Settings
from resolvers.store import Doc, DomainConfig, Store

# a journaled, majority write concern: what every client the project writes with uses
DURABLE_W = "majority"
CLOSE_WAIT_S = 1.0  # for the monitor tasks a closed client cancelled
MIN_REQUEST_POOL = 2  # connections a process keeps for requests, however many workers share
_POOL_OPTION = re.compile(r"[?&]maxPoolSize=", re.IGNORECASE)


def make_client(
    uri: str,
    settings: Settings,
    *,
    listeners: Sequence[CommandListener] = (),
    for_streams: bool = False,
) -> AsyncMongoClient[Doc]:
    """Every operation is bounded by ``SCV_DB_TIMEOUT_MS`` (client-side operation timeout).

    Requests share :func:`request_pool_size` connections; ``for_streams`` is the client of
    the change streams (subscriptions, the webhook deliverer), whose ``getMore`` holds its
    connection for up to a second while it waits: on a pool of their own (PyMongo's default
    size) open subscriptions never take the requests' connections.

    Every write, transaction commits included, is acknowledged only once it is journaled on
    a majority of the replica set (``w: majority, j: true``): a write the gateway answered survives
    a crash of the database. (The embedded server reports itself as a one-member replica
    set, so majority is itself.)

    ``listeners`` (tests, benchmarks) observe every command, e.g. to count them per query.
    """
    pool: dict[str, Any] = {}
    if not for_streams and (size := request_pool_size(uri, settings)) is not None:
        pool["maxPoolSize"] = size
    return AsyncMongoClient(
        uri,
        **pool,
        tz_aware=True,
        timeoutMS=settings.db_timeout_ms,
        serverSelectionTimeoutMS=settings.db_timeout_ms,
        connectTimeoutMS=min(settings.db_timeout_ms, 5000),
        appname="scv-gateway",
        event_listeners=list(listeners),
        w=DURABLE_W,
        journal=True,
    )


def request_pool_size(uri: str, settings: Settings) -> int | None:
    """This process's share of ``SCV_DB_CONNECTIONS`` (at least :data:`MIN_REQUEST_POOL`);
    None when ``uri`` sets ``maxPoolSize`` itself.

    The embedded server runs one command at a time under one interpreter lock, so
    connections beyond a few only add threads that take the lock from each other. Under
    ``make load`` with 2 workers, PyMongo's default of 100 connections a process gave
    141-142 req/s, p99 973-1,263 ms and 7.3 ms of database CPU a request (two runs); 8 a
    process (16 in all) gave 155-159 req/s, p99 885-1,075 ms (one run of six over 1 s) and
    6.1-6.2 ms. One
    worker with 16 was as before (149 req/s, p99 874 ms); one with 8 lost throughput
    (136 req/s), and 4 a process with 2 workers raised the tail (p99 1,192 ms). Against a
    MongoDB cluster, raise it (or set ``maxPoolSize`` in the URI).
    """
    if _POOL_OPTION.search(uri):
        return None
    return settings.share_per_worker(settings.db_connections, at_least=MIN_REQUEST_POOL)


async def close_client(client: AsyncMongoClient[Doc]) -> None:
    """Close ``client`` and the sockets its closing leaves behind.

    Closing cancels the client's monitor tasks without waiting for them; one cancelled in
    the middle of connecting (to a database that refuses or is restarting) leaves its new
    socket unclosed, for the garbage collector to find whenever it runs, with a
    ``ResourceWarning`` (PyMongo closes such sockets on errors, not on cancellation). Here
    the cancelled tasks are waited for (at most :data:`CLOSE_WAIT_S`) and the garbage
    collected, so those sockets are closed now, by the owner that closed the client.
    """
    await client.close()
    ending = [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith("pymongo_") and task.cancelling()
    ]
    if ending:
        await asyncio.wait(ending, timeout=CLOSE_WAIT_S)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def make_store(
    client: AsyncMongoClient[Doc],
    settings: Settings,
    streams: AsyncMongoClient[Doc] | None = None,
) -> Store:
    config = DomainConfig(
        default_region=settings.default_region,
        retention_days=settings.retention_days,
        web_session_gap_minutes=settings.web_session_gap_minutes,
        change_retention_days=settings.change_retention_days,
    )
    stream_db = streams[settings.db_name] if streams is not None else None
    return Store(client[settings.db_name], config, streams=stream_db)
