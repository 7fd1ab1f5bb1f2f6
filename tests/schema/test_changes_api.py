"""changes(after:, first:, kinds:) and the changes subscription over the API."""

from __future__ import annotations

import asyncio
import json

import websockets

from tests.conftest import Api, codes

CHANGES = """query($after: String, $first: Int, $kinds: [ChangeKind!]) {
  changes(after: $after, first: $first, kinds: $kinds) {
    edges { cursor node { id kind by contactId contactIds conversationId at } }
    pageInfo { hasNextPage endCursor } } }"""
CONTACT = 'mutation($n: String!) { createContact(input: {firstName: $n, lastName: "L"}) { id } }'
UPDATE = 'mutation($id: ID!) { updateContact(id: $id, input: {title: "Dr"}) { id } }'


async def test_pages_oldest_first_with_cursors_and_kinds(api: Api) -> None:
    ids = [(await api.gql(CONTACT, {"n": f"N{i}"}))["createContact"]["id"] for i in range(3)]
    await api.gql(UPDATE, {"id": ids[1]})
    page = (await api.gql(CHANGES, {"first": 2}))["changes"]
    assert [e["node"]["contactId"] for e in page["edges"]] == ids[:2]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = (await api.gql(CHANGES, {"after": page["pageInfo"]["endCursor"]}))["changes"]
    assert [(e["node"]["kind"], e["node"]["contactId"]) for e in rest["edges"]] == [
        ("CONTACT_CREATED", ids[2]),
        ("CONTACT_UPDATED", ids[1]),
    ]
    assert rest["pageInfo"]["hasNextPage"] is False
    updates = (await api.gql(CHANGES, {"kinds": ["CONTACT_UPDATED"]}))["changes"]
    assert [e["node"]["contactId"] for e in updates["edges"]] == [ids[1]]
    # nothing new: an empty page that keeps its place
    tail = (await api.gql(CHANGES, {"after": rest["pageInfo"]["endCursor"]}))["changes"]
    assert tail["edges"] == [] and tail["pageInfo"]["endCursor"] == rest["pageInfo"]["endCursor"]
    other = (await api.gql(CHANGES, {}, org="globex"))["changes"]
    assert other["edges"] == []


async def test_bad_cursors_and_first_out_of_range_are_bad_user_input(api: Api) -> None:
    for variables in (
        {"after": "not-a-cursor"},
        {"after": "WyJjaGciLCJ4Il0"},  # ["chg","x"]: the right tag, not a position
        {"first": 0},
        {"first": 501},
        {"first": -1},
    ):
        _, errors = await api.gql_error(CHANGES, variables)
        assert codes(errors) == ["BAD_USER_INPUT"], variables


async def test_the_subscription_delivers_the_same_changes_live(api: Api, ws_url: str) -> None:
    async with websockets.connect(
        ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {api.token()}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        query = "subscription { changes(kinds: [CONTACT_CREATED]) { id kind contactId } }"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        await asyncio.sleep(0.5)  # subscribed
        ids = [(await api.gql(CONTACT, {"n": f"N{i}"}))["createContact"]["id"] for i in range(3)]
        await api.gql(UPDATE, {"id": ids[0]})  # another kind: not sent
        await api.gql(CONTACT, {"n": "Other"}, org="globex")  # another org: not sent
        got = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in ids]
    assert [m["payload"]["data"]["changes"]["contactId"] for m in got] == ids
    feed = (await api.gql(CHANGES, {"kinds": ["CONTACT_CREATED"]}))["changes"]["edges"]
    assert [m["payload"]["data"]["changes"]["id"] for m in got] == [e["node"]["id"] for e in feed]
