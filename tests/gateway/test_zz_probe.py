import asyncio, json
from gateway.auth import ALL_PERMISSIONS
from tests.conftest import Api
from tests.gateway.test_subscriptions import server_url, _connect, SUBSCRIBE  # noqa

async def test_probe(server_url: str, api: Api) -> None:
    created = await api.gql('mutation { createContact(input: {firstName: "Sub", lastName: "S"}) { id } }')
    cid = created["createContact"]["id"]
    for org, perms, id_ in [("acme", [p for p in ALL_PERMISSIONS if "session" not in p], cid), ("other", ALL_PERMISSIONS, cid), ("acme", ALL_PERMISSIONS, "000000000000000000000000")]:
        ws = await _connect(server_url, api.token(org, permissions=perms))
        print(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"id": id_}}}))
        print(org, json.loads(await asyncio.wait_for(ws.recv(), 5)))
        await ws.close()
