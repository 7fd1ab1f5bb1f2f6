"""journeyUpdates over a real WebSocket (graphql-transport-ws) on a loopback uvicorn."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Api

SUBSCRIBE = (
    "subscription($id: ID!) { journeyUpdates(contactId: $id) { id channel externalContactId } }"
)
RECORD = "mutation($i: InteractionInput!) { recordInteraction(input: $i) { contact { id } } }"
NO_MESSAGE_S = 1.0  # how long "nothing arrives" is watched for
ARRIVES_WITHIN_S = 1.0  # the promise (measured: ~10 ms after the mutation returns)


class Socket:
    """A graphql-transport-ws client: connection_init with a token, then subscribe/recv."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, token: str | None, *, ack: bool = True) -> Socket:
        ws = await websockets.connect(
            url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
        )
        socket = cls(ws)
        if token is not None:
            await socket.send(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            )
            if ack:
                assert (await socket.recv())["type"] == "connection_ack"
        return socket

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def subscribe(self, op_id: str, contact_id: str) -> None:
        await self.send(
            {
                "id": op_id,
                "type": "subscribe",
                "payload": {"query": SUBSCRIBE, "variables": {"id": contact_id}},
            }
        )

    async def recv(self, within_s: float = 10) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), within_s))
        return message

    async def error(self) -> dict[str, Any]:
        """The one error of a refused operation: an ``error`` message (before execution) or a
        ``next`` carrying errors (raised by the resolver), then ``complete``."""
        message = await self.recv()
        if message["type"] == "error":
            errors: list[dict[str, Any]] = message["payload"]
        else:
            assert message["type"] == "next" and message["payload"]["data"] is None, message
            errors = message["payload"]["errors"]
            assert (await self.recv())["type"] == "complete"
        assert len(errors) == 1, errors
        return errors[0]

    async def nothing_arrives(self) -> None:
        with pytest.raises(TimeoutError):
            message = await self.recv(NO_MESSAGE_S)
            pytest.fail(f"unexpected message {message}")

    async def close_code(self) -> int:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(self.ws.recv(), 5)
        assert closed.value.rcvd is not None
        code: int = closed.value.rcvd.code
        return code

    async def close(self) -> None:
        await self.ws.close()


async def record(
    api: Api, cid: str, channel: str, identifiers: list[dict[str, str]], org: str = "acme"
) -> Any:
    started = datetime.now(UTC).isoformat()
    interaction = {
        "conversationId": cid,
        "channel": channel,
        "startedAt": started,
        "identifiers": identifiers,
    }
    return (await api.gql(RECORD, {"i": interaction}, org=org))["recordInteraction"]


def phone(value: str) -> list[dict[str, str]]:
    return [{"type": "PHONE", "value": value}]


async def create(api: Api, first: str, cell: str, org: str = "acme") -> str:
    created = await api.gql(
        "mutation($i: ContactInput!) { createContact(input: $i) { id } }",
        {"i": {"firstName": first, "lastName": "Live", "cellPhone": cell}},
        org=org,
    )
    contact_id: str = created["createContact"]["id"]
    return contact_id


async def wait_until_watching() -> None:
    await asyncio.sleep(0.3)  # the subscription's change stream is open


async def test_journey_updates_streams_conversations_of_the_contact(ws_url: str, api: Api) -> None:
    contact_id = await create(api, "Sub", "+18037770000")
    socket = await Socket.open(ws_url, api.token())
    try:
        await socket.subscribe("1", contact_id)
        await wait_until_watching()
        await record(api, "other", "VOICE", phone("+18030000001"))
        await record(api, "mine", "VOICE", phone("+18037770000"))
        received = time.monotonic()
        message = await socket.recv(within_s=ARRIVES_WITHIN_S)
        latency = time.monotonic() - received
        assert message["type"] == "next", message
        assert message["payload"]["data"]["journeyUpdates"] == {
            "id": "mine",
            "channel": "VOICE",
            "externalContactId": contact_id,
        }
        print(f"journeyUpdates arrived {latency * 1000:.0f} ms after the mutation returned")
        await socket.nothing_arrives()  # "other" belongs to somebody else
    finally:
        await socket.close()


async def test_merge_set_members_and_hand_links_arrive(ws_url: str, api: Api) -> None:
    """Subscribed on one input of a merge: conversations of every member arrive, and so does
    a campaign call once an agent links it by hand; the other org's traffic never does."""
    sam = await create(api, "Sam", "+18035550177")
    auto = (await record(api, "first-email", "EMAIL", [{"type": "EMAIL", "value": "s@x.io"}]))[
        "contact"
    ]["id"]
    merged = await api.gql(
        "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }",
        {"ids": [sam, auto]},
    )
    canonical = merged["mergeContacts"]["id"]
    socket = await Socket.open(ws_url, api.token())
    try:
        await socket.subscribe("sam", sam)  # an ancestor id: it follows its set
        await wait_until_watching()

        await record(api, "by-email", "EMAIL", [{"type": "EMAIL", "value": "s@x.io"}])
        got = (await socket.recv())["payload"]["data"]["journeyUpdates"]
        assert got == {"id": "by-email", "channel": "EMAIL", "externalContactId": canonical}

        campaign = await record(api, "campaign-1", "CAMPAIGN", phone("+18035550177"))
        assert campaign["contact"] is None
        await create(api, "Sam", "+18035550177", org="globex")
        await record(api, "globex-call", "VOICE", phone("+18035550177"), org="globex")
        await socket.nothing_arrives()

        await api.gql(
            'mutation($c: ID!) { linkConversation(conversationId: "campaign-1", contactId: $c) '
            "{ id } }",
            {"c": auto},
        )
        got = (await socket.recv())["payload"]["data"]["journeyUpdates"]
        assert got == {"id": "campaign-1", "channel": "CAMPAIGN", "externalContactId": auto}
    finally:
        await socket.close()


async def test_other_orgs_contact_is_not_found(ws_url: str, api: Api) -> None:
    contact_id = await create(api, "Mine", "+18037770001")
    intruder = await Socket.open(ws_url, api.token(org="globex"))
    try:
        await intruder.subscribe("1", contact_id)
        error = await intruder.error()
        assert error["extensions"]["code"] == "NOT_FOUND"
        unknown = "0" * 24
        await intruder.subscribe("2", unknown)
        same = await intruder.error()
        # no hint that the id exists in another org
        assert error["message"].replace(contact_id, "ID") == same["message"].replace(unknown, "ID")
    finally:
        await intruder.close()


async def test_subscription_needs_session_view(ws_url: str, api: Api) -> None:
    contact_id = await create(api, "Guarded", "+18037770002")
    socket = await Socket.open(ws_url, api.token(permissions=["externalContacts:contact:view"]))
    try:
        await socket.subscribe("1", contact_id)
        error = await socket.error()
        assert error["extensions"]["code"] == "FORBIDDEN"
    finally:
        await socket.close()


async def test_subscriptions_per_connection_are_limited(ws_url: str, api: Api) -> None:
    contact_id = await create(api, "Many", "+18037770003")
    socket = await Socket.open(ws_url, api.token())
    try:
        for n in range(10):  # SCV_MAX_SUBSCRIPTIONS defaults to 10
            await socket.subscribe(f"s{n}", contact_id)
        await socket.subscribe("one-too-many", contact_id)
        refused = await socket.recv()
        assert refused["id"] == "one-too-many" and refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert "at most 10 subscriptions" in refused["payload"][0]["message"]

        await socket.send({"id": "s0", "type": "complete"})
        await socket.subscribe("s10", contact_id)  # room again
        await wait_until_watching()
        await record(api, "fan-out", "VOICE", phone("+18037770003"))
        delivered = {(await socket.recv())["id"] for _ in range(10)}
        assert delivered == {f"s{n}" for n in range(1, 11)}
    finally:
        await socket.close()


async def test_websocket_without_a_valid_token_is_closed_4403(ws_url: str) -> None:
    socket = await Socket.open(ws_url, "not-a-token", ack=False)
    assert await socket.close_code() == 4403


async def test_subscribe_before_connection_init_is_closed_4401(ws_url: str, api: Api) -> None:
    socket = await Socket.open(ws_url, None)
    await socket.subscribe("1", "anything")
    assert await socket.close_code() == 4401


async def test_second_connection_init_is_closed_4429(ws_url: str, api: Api) -> None:
    socket = await Socket.open(ws_url, api.token())
    await socket.send({"type": "connection_init", "payload": {}})
    assert await socket.close_code() == 4429


async def test_duplicate_operation_id_is_closed_4409(ws_url: str, api: Api) -> None:
    contact_id = await create(api, "Twice", "+18037770004")
    socket = await Socket.open(ws_url, api.token())
    await socket.subscribe("same", contact_id)
    await socket.subscribe("same", contact_id)
    assert await socket.close_code() == 4409


async def test_malformed_message_is_closed_4400(ws_url: str, api: Api) -> None:
    socket = await Socket.open(ws_url, api.token())
    await socket.ws.send("{not json")
    assert await socket.close_code() == 4400


async def open_subscriptions(ws_url: str) -> float:
    metrics_url = ws_url.replace("ws://", "http://").replace("/graphql", "/metrics")
    async with httpx.AsyncClient() as http:
        text = (await http.get(metrics_url)).text
    for family in text_string_to_metric_families(text):
        if family.name == "scv_open_subscriptions":
            value: float = family.samples[0].value
            return value
    raise AssertionError("no scv_open_subscriptions in /metrics")


async def test_open_subscriptions_show_in_metrics(ws_url: str, api: Api) -> None:
    contact_id = await create(api, "Gauge", "+18037770005")
    socket = await Socket.open(ws_url, api.token())
    try:
        await socket.subscribe("a", contact_id)
        await socket.subscribe("b", contact_id)
        await wait_until_watching()
        assert await open_subscriptions(ws_url) == 2
        await socket.send({"id": "a", "type": "complete"})
        await wait_until_watching()
        assert await open_subscriptions(ws_url) == 1
    finally:
        await socket.close()
    for _ in range(50):  # the server notices the closed socket
        if await open_subscriptions(ws_url) == 0:
            break
        await asyncio.sleep(0.05)
    assert await open_subscriptions(ws_url) == 0
