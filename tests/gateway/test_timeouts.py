"""A request never waits longer than SCV_DB_TIMEOUT_MS for the database: then SERVICE_UNAVAILABLE.

The slow database is the embedded server itself: its ``failCommand`` failpoint with
``blockConnection`` holds a command for ``blockTimeMS`` before answering (checked first).
Every failpoint is scoped to one client by ``appName`` and switched off afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import GraphQLError
from pymongo import AsyncMongoClient
from pymongo.errors import (
    AutoReconnect,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
    WTimeoutError,
)

from gateway.app import create_app
from gateway.settings import Settings
from resolvers.store import Doc
from schema.errors import classify
from tests.conftest import SECRET, Api, codes

GATEWAY_APP_NAME = "scv-gateway"  # gateway.database.make_client's appname
UNKNOWN_ID = "000000000000000000000000"


@contextlib.asynccontextmanager
async def failpoint(
    client: AsyncMongoClient[Doc], *, times: int, **data: Any
) -> AsyncIterator[None]:
    await client.admin.command(
        {"configureFailPoint": "failCommand", "mode": {"times": times}, "data": data}
    )
    try:
        yield
    finally:
        await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


@contextlib.asynccontextmanager
async def gateway(mongo_uri: str, db_name: str, timeout_ms: int) -> AsyncIterator[Api]:
    settings = Settings(SCV_DB_NAME=db_name, SCV_JWT_SECRET=SECRET, SCV_DB_TIMEOUT_MS=timeout_ms)
    app = create_app(settings, uri=mongo_uri, secret=SECRET)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Api(http)
    await app.state.runtime.close()


async def test_the_embedded_server_honours_block_connection(
    mongo_uri: str, client: AsyncMongoClient[Doc]
) -> None:
    slow: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_uri, appname="scv-probe")
    try:
        async with failpoint(
            client,
            times=1,
            failCommands=["find"],
            blockConnection=True,
            blockTimeMS=800,
            appName="scv-probe",
        ):
            started = time.perf_counter()

            async def blocked() -> float:
                await slow.probe.c.find_one({})
                return time.perf_counter() - started

            async def unaffected() -> float:
                await asyncio.sleep(0.1)
                began = time.perf_counter()
                await client.probe.c.find_one({})  # another client: not held
                return time.perf_counter() - began

            held, other = await asyncio.gather(blocked(), unaffected())
        assert held >= 0.7
        assert other < 0.5
    finally:
        await slow.close()


async def test_a_blocked_database_is_service_unavailable_within_the_timeout(
    mongo_uri: str, db_name: str, client: AsyncMongoClient[Doc]
) -> None:
    query = "query($id: ID!) { contact(id: $id) { id } }"
    async with gateway(mongo_uri, db_name, timeout_ms=500) as api:
        async with failpoint(
            client,
            times=1,
            failCommands=["find"],
            blockConnection=True,
            blockTimeMS=3000,
            appName=GATEWAY_APP_NAME,
        ):
            started = time.perf_counter()
            data, errors = await api.gql_error(query, {"id": UNKNOWN_ID})
            elapsed = time.perf_counter() - started
        assert codes(errors) == ["SERVICE_UNAVAILABLE"]
        assert data == {"contact": None}
        assert "timeout" not in errors[0]["message"].lower()  # no driver text
        assert 0.4 <= elapsed < 2.5, elapsed
        # the failpoint is spent: the same gateway answers again without a restart
        assert await api.gql(query, {"id": UNKNOWN_ID}) == {"contact": None}
    await client.drop_database(db_name)


async def test_the_timeout_bounds_the_whole_request_not_each_operation(
    mongo_uri: str, db_name: str, client: AsyncMongoClient[Doc]
) -> None:
    """Each read held 300 ms (< 500): one is fine, two in a row exceed the request's 500 ms."""
    query = "query($id: ID!) { contact(id: $id) { id notes { id } } }"  # contact, then its notes
    hold = {
        "failCommands": ["find", "aggregate"],
        "blockConnection": True,
        "blockTimeMS": 300,
        "appName": GATEWAY_APP_NAME,
    }
    async with gateway(mongo_uri, db_name, timeout_ms=500) as api:
        created = await api.gql(
            'mutation { createContact(input: {firstName: "Slow", lastName: "Reader"}) { id } }'
        )
        contact_id = created["createContact"]["id"]
        async with failpoint(client, times=1, **hold):
            started = time.perf_counter()
            one = await api.gql("query($id: ID!) { contact(id: $id) { id } }", {"id": contact_id})
            assert time.perf_counter() - started >= 0.25  # held, yet within the budget
        assert one == {"contact": {"id": contact_id}}
        async with failpoint(client, times=5, **hold):
            started = time.perf_counter()
            data, errors = await api.gql_error(query, {"id": contact_id})
            elapsed = time.perf_counter() - started
        assert codes(errors) == ["SERVICE_UNAVAILABLE"]
        assert data == {"contact": None}
        assert elapsed < 2.5, elapsed
        # without the failpoint the same query succeeds
        assert await api.gql(query, {"id": contact_id}) == {
            "contact": {"id": contact_id, "notes": []}
        }
    await client.drop_database(db_name)


class DriverTimeout(PyMongoError):
    """Any driver error that says it was a timeout (``PyMongoError.timeout``)."""

    @property
    def timeout(self) -> bool:
        return True


@pytest.mark.parametrize(
    "cause",
    [
        NetworkTimeout("127.0.0.1:1: timed out (configured timeouts: timeoutMS: 500.0ms)"),
        ServerSelectionTimeoutError("No servers found yet, Timeout: 0.5s"),
        WaitQueueTimeoutError("Timed out while checking out a connection from pool"),
        AutoReconnect("connection closed"),
        ExecutionTimeout("operation exceeded time limit", 50),
        OperationFailure("operation exceeded time limit", 50),
        WTimeoutError("waiting for replication timed out", 64),
        DriverTimeout("operation would exceed time limit"),
        TimeoutError("timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_driver_timeouts_are_service_unavailable(cause: Exception) -> None:
    error = classify(GraphQLError(str(cause), path=["contact"], original_error=cause))
    assert error.extensions == {"code": "SERVICE_UNAVAILABLE"}
    assert str(cause) not in error.message


def test_other_driver_errors_stay_internal() -> None:
    cause = OperationFailure("unknown operator: $nope", 2)
    error = classify(GraphQLError(str(cause), path=["contact"], original_error=cause))
    assert error.extensions == {"code": "INTERNAL_SERVER_ERROR"}
