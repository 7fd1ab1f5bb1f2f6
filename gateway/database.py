"""The database connection: PyMongo's AsyncMongoClient to the embedded server or MONGODB_URI."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Sequence

from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from gateway.settings import Settings
from resolvers.store import Doc, DomainConfig, Store

# a journaled, majority write concern: what every client the project writes with uses
DURABLE_W = "majority"
CLOSE_WAIT_S = 1.0  # for the monitor tasks a closed client cancelled


def make_client(
    uri: str, settings: Settings, *, listeners: Sequence[CommandListener] = ()
) -> AsyncMongoClient[Doc]:
    """Every operation is bounded by ``SCV_DB_TIMEOUT_MS`` (client-side operation timeout).

    Every write, transaction commits included, is acknowledged only once it is journaled on
    a majority of the replica set (``w: majority, j: true``): a write the gateway answered survives
    a crash of the database. (The embedded server reports itself as a one-member replica
    set, so majority is itself.)

    ``listeners`` (tests, benchmarks) observe every command, e.g. to count them per query.
    """
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        timeoutMS=settings.db_timeout_ms,
        serverSelectionTimeoutMS=settings.db_timeout_ms,
        connectTimeoutMS=min(settings.db_timeout_ms, 5000),
        appname="scv-gateway",
        event_listeners=list(listeners),
        w=DURABLE_W,
        journal=True,
    )


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


def make_store(client: AsyncMongoClient[Doc], settings: Settings) -> Store:
    config = DomainConfig(
        default_region=settings.default_region,
        retention_days=settings.retention_days,
        web_session_gap_minutes=settings.web_session_gap_minutes,
        change_retention_days=settings.change_retention_days,
    )
    return Store(client[settings.db_name], config)
