"""The database connection: PyMongo's AsyncMongoClient to the embedded server or MONGODB_URI."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from gateway.settings import Settings
from resolvers.store import Doc, DomainConfig, Store


def make_client(
    uri: str, settings: Settings, *, listeners: Sequence[CommandListener] = ()
) -> AsyncMongoClient[Doc]:
    """Every operation is bounded by ``SCV_DB_TIMEOUT_MS`` (client-side operation timeout).

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
    )


def make_store(client: AsyncMongoClient[Doc], settings: Settings) -> Store:
    config = DomainConfig(
        default_region=settings.default_region, retention_days=settings.retention_days
    )
    return Store(client[settings.db_name], config)
