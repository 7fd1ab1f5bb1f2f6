"""Real third-party clients against a real uvicorn on loopback.

* Python's ``gql`` (4.x): a query and a mutation over HTTP (httpx), a subscription over
  ``graphql-transport-ws`` (websockets).
* Node (``web/clients.mjs``, packages from ``web/package.json``): a graphql-ws subscription,
  an Apollo Client journey paged with ``relayStylePagination`` with no cache warning, and
  Apollo's ``PersistedQueryLink``. It needs ``node`` and ``make assets`` (npm); without them
  the test skips, unless ``SCV_REQUIRE_NODE`` is set (CI sets it), which makes it fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from gateway.app import create_app
from gateway.auth import mint_token
from gateway.settings import Settings
from resolvers.store import Store
from tests.conftest import SECRET, served

WEB = Path(__file__).resolve().parents[2] / "web"
NODE_SCRIPT = WEB / "clients.mjs"
NODE_PACKAGES = ("@apollo/client", "graphql-ws", "graphql", "ws", "rxjs")
PHONE = "+18035550142"
CONVERSATIONS = 5
NODE_TIMEOUT_S = 120


@dataclass
class Live:
    http_url: str  # http://127.0.0.1:PORT/graphql
    token: str

    @property
    def ws_url(self) -> str:
        return "ws" + self.http_url.removeprefix("http")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def live(mongo_uri: str, settings: Settings, store: Store) -> AsyncIterator[Live]:
    app = create_app(settings, uri=mongo_uri, secret=SECRET, ensure_indexes=False)
    token = mint_token(SECRET, org="acme", sub="client-test")
    async with served(app) as port:
        yield Live(f"http://127.0.0.1:{port}/graphql", token)


async def seed(live: Live) -> str:
    """A curated contact with a phone and CONVERSATIONS calls from it; its id."""
    async with httpx.AsyncClient(timeout=30, headers=live.headers) as http:

        async def gql_post(query: str, variables: dict[str, Any]) -> Any:
            response = await http.post(live.http_url, json={"query": query, "variables": variables})
            body = response.json()
            assert response.status_code == 200 and "errors" not in body, body
            return body["data"]

        created = await gql_post(
            "mutation Create($i: ContactInput!) { createContact(input: $i) { id } }",
            {"i": {"firstName": "Ada", "lastName": "Lovelace", "cellPhone": PHONE}},
        )
        started = datetime.now(UTC) - timedelta(hours=2)
        for n in range(CONVERSATIONS):
            await gql_post(
                "mutation Record($i: InteractionInput!) { recordInteraction(input: $i) { created } }",
                {
                    "i": {
                        "conversationId": f"call-{uuid.uuid4().hex[:8]}",
                        "channel": "VOICE",
                        "startedAt": (started + timedelta(minutes=n)).isoformat(),
                        "identifiers": [{"type": "PHONE", "value": PHONE}],
                    }
                },
            )
    contact_id: str = created["createContact"]["id"]
    return contact_id


# --- Python: gql -----------------------------------------------------------------------------


async def test_gql_runs_a_query_a_mutation_and_a_subscription(live: Live) -> None:
    contact_id = await seed(live)
    transport = HTTPXAsyncTransport(url=live.http_url, headers=live.headers, timeout=30)
    async with Client(transport=transport) as session:
        found = await session.execute(
            GraphQLRequest(
                "query Journey($id: ID!) { journey(contactId: $id) { id conversationCount } }",
                variable_values={"id": contact_id},
            )
        )
        assert found == {"journey": {"id": contact_id, "conversationCount": CONVERSATIONS}}
        noted = await session.execute(
            GraphQLRequest(
                'mutation Note($id: ID!) { addNote(contactId: $id, text: "called back") { text } }',
                variable_values={"id": contact_id},
            )
        )
        assert noted == {"addNote": {"text": "called back"}}

    ws = WebsocketsTransport(
        url=live.ws_url,
        init_payload=live.headers,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    async with Client(transport=ws) as subscriber:
        updates = subscriber.subscribe(
            GraphQLRequest(
                "subscription Updates($id: ID!) { journeyUpdates(contactId: $id) { id channel } }",
                variable_values={"id": contact_id},
            )
        )
        received = asyncio.ensure_future(anext(updates))
        sent: list[str] = []
        async with httpx.AsyncClient(timeout=30, headers=live.headers) as http:
            # the server's change stream opens after subscribe: record until one arrives
            while not received.done() and len(sent) < 40:
                sent.append(f"sms-{uuid.uuid4().hex[:8]}")
                await http.post(
                    live.http_url,
                    json={
                        "query": "mutation R($i: InteractionInput!) { recordInteraction(input: $i) { created } }",
                        "variables": {
                            "i": {
                                "conversationId": sent[-1],
                                "channel": "SMS",
                                "startedAt": datetime.now(UTC).isoformat(),
                                "identifiers": [{"type": "PHONE", "value": PHONE}],
                            }
                        },
                    },
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(received), 0.25)
        update = await asyncio.wait_for(received, 10)
        await updates.aclose()
    assert update["journeyUpdates"]["channel"] == "SMS"
    assert update["journeyUpdates"]["id"] in sent


# --- Node: graphql-ws and Apollo Client ------------------------------------------------------


def require_node() -> str:
    """``node`` with the client packages installed; else skip, or fail under SCV_REQUIRE_NODE."""
    node = shutil.which("node")
    missing = [
        p for p in NODE_PACKAGES if not (WEB / "node_modules" / p / "package.json").is_file()
    ]
    if node is not None and not missing:
        return node
    reason = "no node on PATH" if node is None else f"{missing[0]} not installed (make assets)"
    if os.environ.get("SCV_REQUIRE_NODE"):
        pytest.fail(f"SCV_REQUIRE_NODE is set but {reason}")
    pytest.skip(f"{reason}; SCV_REQUIRE_NODE=1 makes this fail")


def test_missing_node_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("SCV_REQUIRE_NODE", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_node()
    monkeypatch.setenv("SCV_REQUIRE_NODE", "1")
    with pytest.raises(pytest.fail.Exception, match="SCV_REQUIRE_NODE"):
        require_node()


async def test_node_clients_graphql_ws_apollo_pagination_and_persisted_queries(
    live: Live,
) -> None:
    node = require_node()
    contact_id = await seed(live)
    env = {
        **os.environ,
        "SCV_URL": live.http_url,
        "SCV_TOKEN": live.token,
        "SCV_CONTACT_ID": contact_id,
        "SCV_PHONE": PHONE,
        "SCV_CONVERSATIONS": str(CONVERSATIONS),
    }
    process = await asyncio.create_subprocess_exec(
        node,
        "--conditions=development",  # Apollo's development build: its warnings are on
        str(NODE_SCRIPT),
        cwd=WEB,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = out.decode().strip().splitlines()
    assert lines, err.decode()
    summary = json.loads(lines[-1])
    assert process.returncode == 0 and summary["ok"], (summary, err.decode())
    assert summary["warnings"] == []
    assert summary["journey"]["edges"] >= CONVERSATIONS
    assert summary["journey"]["pages"] == 3  # 2 per page
    assert summary["persistedQueries"][0] == "GET hash PERSISTED_QUERY_NOT_FOUND"
    assert summary["persistedQueries"][-1] == "GET hash ok"
