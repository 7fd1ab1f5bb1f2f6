"""Hostile input over a real uvicorn: every bad body is a JSON 400 (or a GraphQL error) with a
code, and the same keep-alive connection serves the next request; a WebSocket message that
is not a protocol object closes with 4400; a lone surrogate is BAD_USER_INPUT everywhere."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
import websockets
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.embedded import free_port
from gateway.last_resort import LastResort
from gateway.settings import Settings
from resolvers.store import Store
from tests.conftest import SECRET, Api, served
from tests.gateway.test_subscriptions import Socket

SEARCH = '{ searchContacts(query: "per") { totalCount } }'
RECORD = "mutation($i: InteractionInput!) { recordInteraction(input: $i) { created } }"
INTERACTION = {
    "conversationId": "hostile-1",
    "channel": "VOICE",
    "startedAt": "2026-01-01T00:00:00Z",
    "identifiers": [{"type": "PHONE", "value": "+18035550100"}],
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        return json.loads(self.body)


class KeepAlive:
    """One HTTP/1.1 connection, written by hand so every byte of the body is ours."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def post(self, body: bytes, token: str, content_type: str = "application/json") -> Answer:
        head = (
            f"POST /graphql HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        status_line = await asyncio.wait_for(self.reader.readline(), 10)
        assert status_line, "the server closed the connection"
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        payload = await self.reader.readexactly(int(headers["content-length"]))
        return Answer(int(status_line.split()[1]), headers, payload)


@pytest.fixture
async def app(mongo_uri: str, settings: Settings, store: Store) -> Starlette:
    return create_app(settings, uri=mongo_uri, secret=SECRET, ensure_indexes=False)


@pytest.fixture
async def connection(app: Starlette) -> AsyncIterator[KeepAlive]:
    async with served(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        yield KeepAlive(reader, writer)
        writer.close()
        await writer.wait_closed()


def graphql_body(query: str, variables: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables or {}}).encode()


async def next_request_works(connection: KeepAlive, api: Api) -> None:
    answer = await connection.post(graphql_body(SEARCH), api.token())
    assert answer.status == 200, answer
    assert answer.json()["data"] == {"searchContacts": {"totalCount": 0}}


BAD_BODIES = {
    "null": b"null",
    "string": b'"query"',
    "number": b"42",
    "true": b"true",
    "array": b'[{"query": "{ __typename }"}]',
    "invalid utf-8": b"\xff\xfe\xff",
    "latin-1": '{"query": "{ searchContacts(query: \\"Jos\xe9\\") { totalCount } }"}'.encode(
        "latin-1"
    ),
    "utf-8 encoded surrogate": '{"query": "\ud800"}'.encode("utf-8", "surrogatepass"),
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "object nested 100,000 deep": b'{"query": "{ a }", "variables": '
    + b'{"a":' * 100_000
    + b"1"
    + b"}" * 100_001,
    "nested 100 deep": b'{"query": "{ a }", "variables": {"v": ' + b"[" * 100 + b"]" * 100 + b"}}",
    "truncated": b'{"query": "{ a }"',
    "query is a number": b'{"id": 5, "query": 7}',
    "variables is an array": b'{"query": "{ a }", "variables": [1]}',
    "operationName is an object": b'{"query": "{ a }", "operationName": {}}',
    "empty": b"",
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_malformed_body_is_400_with_a_code_and_the_connection_survives(
    connection: KeepAlive, api: Api, body: bytes
) -> None:
    for _ in range(3):  # the three tries per shape, on one connection
        answer = await connection.post(body, api.token())
        assert answer.status == 400, answer
        error = answer.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "Traceback" not in error["message"]
        await next_request_works(connection, api)


SURROGATES = {
    "recordInteraction variable": (
        RECORD,
        {"i": {**INTERACTION, "conversationId": "\ud800"}},
    ),
    "searchContacts variable": (
        "query($q: String!) { searchContacts(query: $q) { totalCount } }",
        {"q": "Per \ud83d"},
    ),
    "nested in a list of identifiers": (
        RECORD,
        {"i": {**INTERACTION, "identifiers": [{"type": "EMAIL", "value": "a\udc00@example.com"}]}},
    ),
    "escape in a string literal": ('{ searchContacts(query: "\\ud83d") { totalCount } }', None),
    "braced escape in a string literal": (
        '{ searchContacts(query: "\\u{d800}") { totalCount } }',
        None,
    ),
    "raw surrogate in a string literal": (
        '{ searchContacts(query: "\ud800") { totalCount } }',
        None,
    ),
    "operation name": ('query Q { searchContacts(query: "x") { totalCount } }', None),
}


def surrogate_body(query: str, variables: dict[str, Any] | None) -> bytes:
    body: dict[str, Any] = {"query": query, "variables": variables or {}}
    if query.startswith("query Q"):
        body["operationName"] = "Q\udfff"
    return json.dumps(body).encode()  # ensure_ascii: the surrogate travels as "\ud800"


@pytest.mark.parametrize("case", SURROGATES.values(), ids=SURROGATES.keys())
async def test_lone_surrogate_is_bad_user_input_over_http(
    connection: KeepAlive, api: Api, store: Store, case: tuple[str, dict[str, Any] | None]
) -> None:
    answer = await connection.post(surrogate_body(*case), api.token())
    body = answer.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
    if case[0].startswith("query Q"):  # the operation cannot even be chosen: a 400
        assert answer.status == 400
        assert body["errors"][0]["message"] == 'Unknown operation named "Q\\udfff".'
    else:
        assert (answer.status, body["data"]) == (200, None)
        assert "surrogate" in body["errors"][0]["message"]
    assert await store.conversations.count_documents({}) == 0  # nothing written
    assert await store.contacts.count_documents({}) == 0
    await next_request_works(connection, api)


@pytest.mark.parametrize("case", SURROGATES.values(), ids=SURROGATES.keys())
async def test_lone_surrogate_is_bad_user_input_over_the_websocket(
    ws_url: str, api: Api, store: Store, case: tuple[str, dict[str, Any] | None]
) -> None:
    socket = await Socket.open(ws_url, api.token())
    try:
        payload = json.loads(surrogate_body(*case))
        await socket.ws.send(json.dumps({"id": "s", "type": "subscribe", "payload": payload}))
        error = await socket.error()
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert await store.conversations.count_documents({}) == 0
        # the connection still serves operations
        await socket.send({"id": "t", "type": "subscribe", "payload": {"query": SEARCH}})
        answer = await socket.recv()
        assert (answer["id"], answer["type"]) == ("t", "next"), answer
        assert answer["payload"]["data"] == {"searchContacts": {"totalCount": 0}}
    finally:
        await socket.close()


BAD_MESSAGES: dict[str, str | bytes] = {
    "array": "[]",
    "array of a subscribe": '[{"id": "1", "type": "subscribe", "payload": {"query": "{ a }"}}]',
    "string": '"subscribe"',
    "null": "null",
    "number": "7",
    "type is a number": '{"type": 5}',
    "no type": '{"id": "1"}',
    "subscribe with null payload": '{"id": "1", "type": "subscribe", "payload": null}',
    "subscribe with string payload": '{"id": "1", "type": "subscribe", "payload": "{ a }"}',
    "subscribe without payload": '{"id": "1", "type": "subscribe"}',
    "subscribe with id 5 and query 7": '{"id": 5, "type": "subscribe", "payload": {"query": 7}}',
    "subscribe with query 7": '{"id": "1", "type": "subscribe", "payload": {"query": 7}}',
    "subscribe with array variables": (
        '{"id": "1", "type": "subscribe", "payload": {"query": "{ a }", "variables": [1]}}'
    ),
    "complete with id 5": '{"id": 5, "type": "complete"}',
    "invalid JSON": "{not json",
    "nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
    # a WebSocket text frame is UTF-8 by protocol: other bytes can only come as binary
    "binary frame of invalid UTF-8": b"\xff\xfe\xff",
    "binary frame of Latin-1": '{"type": "ping", "payload": {"n": "Jos\xe9"}}'.encode("latin-1"),
}


@pytest.mark.parametrize("message", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
async def test_malformed_websocket_message_is_closed_4400(
    ws_url: str, api: Api, message: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    socket = await Socket.open(ws_url, api.token())
    with caplog.at_level(logging.WARNING):
        await socket.ws.send(message)
        assert await socket.close_code() == 4400
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


async def test_last_resort_answers_json_500_and_keeps_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whatever escapes the app (here: a deliberate bug) is a JSON 500 without a traceback
    in the body, and the keep-alive connection serves the next request."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/boom":
            raise RuntimeError("secret internals")
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    port = free_port()  # a bare uvicorn: served() is for a gateway app
    config = uvicorn.Config(LastResort(app), host="127.0.0.1", port=port, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for path in ("/boom", "/fine", "/boom", "/fine"):
            writer.write(f"GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n".encode())
            status = await reader.readline()
            headers = {}
            while (line := await reader.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers["content-length"]))
            if path == "/boom":
                assert status.startswith(b"HTTP/1.1 500"), status
                assert headers["content-type"] == "application/json"
                error = json.loads(body)["errors"][0]
                assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
                assert b"secret" not in body and b"Traceback" not in body
            else:
                assert (status.split()[1], body) == (b"200", b"ok")
        writer.close()
    finally:
        server.should_exit = True
        await task
    assert "unhandled RuntimeError" in caplog.text


async def test_last_resort_closes_a_failing_websocket_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        raise RuntimeError("a bug after the handshake")

    port = free_port()
    config = uvicorn.Config(LastResort(app), host="127.0.0.1", port=port, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    finally:
        server.should_exit = True
        await task
    assert "unhandled RuntimeError" in caplog.text and "a bug after the handshake" in caplog.text
