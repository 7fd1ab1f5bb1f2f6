"""journeyUpdates over a real WebSocket (graphql-transport-ws) on a loopback uvicorn."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets

from tests.conftest import Api

SUBSCRIBE = (
    "subscription($id: ID!) { journeyUpdates(contactId: $id) { id channel externalContactId } }"
)


async def _connect(url: str, token: str) -> Any:
    ws = await websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    return ws


async def test_journey_updates_streams_conversations_of_the_contact(ws_url: str, api: Api) -> None:
    created = await api.gql(
        'mutation { createContact(input: {firstName: "Sub", lastName: "Scriber", '
        'cellPhone: "+18037770000"}) { id } }'
    )
    contact_id = created["createContact"]["id"]
    ws = await _connect(ws_url, api.token())
    try:
        ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ack["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": SUBSCRIBE, "variables": {"id": contact_id}},
                }
            )
        )
        await asyncio.sleep(0.3)  # the change stream is open
        started = datetime.now(UTC).isoformat()
        for cid, phone in (("other", "+18030000001"), ("mine", "+18037770000")):
            await api.gql(
                "mutation($i: InteractionInput!) { recordInteraction(input: $i) { created } }",
                {
                    "i": {
                        "conversationId": cid,
                        "channel": "VOICE",
                        "startedAt": started,
                        "identifiers": [{"type": "PHONE", "value": phone}],
                    }
                },
            )
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] == "next", message
        assert message["payload"]["data"]["journeyUpdates"] == {
            "id": "mine",
            "channel": "VOICE",
            "externalContactId": contact_id,
        }
    finally:
        await ws.close()


async def test_websocket_without_a_valid_token_is_rejected(ws_url: str) -> None:
    ws = await _connect(ws_url, "not-a-token")
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
