"""Races and faults that must leave a sound database: each test ends with the checker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from resolvers.invariants import find_violations
from resolvers.store import Doc, Store
from tests.conftest import Api, codes

CREATE = "mutation($i: ContactInput!) { createContact(input: $i) { id } }"
DELETE = "mutation($id: ID!) { deleteContact(id: $id) }"
IDENTIFIER = '{ identifier(type: PHONE, value: "+18031230000") { contact { id firstName } } }'
RECORD = """mutation($i: InteractionInput!) {
  recordInteraction(input: $i) { created contact { id } } }"""

Arm = Callable[[dict[str, Any]], Awaitable[None]]


@pytest.fixture
async def failpoint(client: AsyncMongoClient[Doc]) -> AsyncIterator[Arm]:
    async def arm(spec: dict[str, Any]) -> None:
        await client.admin.command({"configureFailPoint": "failCommand", **spec})

    yield arm
    await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


async def snapshot(store: Store) -> dict[str, list[Doc]]:
    names = ("contacts", "identifiers", "conversations", "merge_sets", "notes")
    return {n: await store.db[n].find({}).sort("_id", 1).to_list() for n in names}


async def create(api: Api, first: str, phone: str) -> str:
    data = await api.gql(CREATE, {"i": {"firstName": first, "lastName": "X", "cellPhone": phone}})
    contact_id: str = data["createContact"]["id"]
    return contact_id


@pytest.mark.parametrize("skip", [0, 1, 2])
async def test_a_failing_write_in_delete_with_reclaim_changes_nothing(
    api: Api, store: Store, failpoint: Arm, skip: int
) -> None:
    alexis = await create(api, "Alexis", "+1 803-123-0000")
    await create(api, "David", "+1 803-123-0000")
    before = await snapshot(store)
    commands = ["delete", "insert", "update", "findAndModify"]
    await failpoint(
        {
            "mode": {"skip": skip} if skip else {"times": 1},
            "data": {"failCommands": commands, "errorCode": 2},
        }
    )
    _, errors = await api.gql_error(DELETE, {"id": alexis})
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"]
    await failpoint({"mode": "off"})
    assert await snapshot(store) == before
    assert (await api.gql(IDENTIFIER))["identifier"]["contact"]["firstName"] == "Alexis"
    assert await api.gql(DELETE, {"id": alexis}) == {"deleteContact": True}
    assert (await api.gql(IDENTIFIER))["identifier"]["contact"]["firstName"] == "David"
    assert await find_violations(store) == []


async def test_a_dropped_connection_is_retried_for_reads_and_writes(
    api: Api, store: Store, failpoint: Arm
) -> None:
    await failpoint(
        {"mode": {"times": 1}, "data": {"failCommands": ["insert"], "closeConnection": True}}
    )
    contact_id = await create(api, "Retry", "+18035550000")  # retryable write: applied once
    assert await store.contacts.count_documents({}) == 1
    await failpoint(
        {"mode": {"times": 1}, "data": {"failCommands": ["find"], "closeConnection": True}}
    )
    data = await api.gql("query($id: ID!) { contact(id: $id) { id } }", {"id": contact_id})
    assert data["contact"]["id"] == contact_id
    assert await find_violations(store) == []


async def test_fifty_concurrent_interactions_with_one_new_phone(api: Api, store: Store) -> None:
    async def one(n: int) -> dict[str, Any]:
        data = await api.gql(
            RECORD,
            {
                "i": {
                    "conversationId": f"burst-{n}",
                    "channel": "SMS",
                    "startedAt": "2026-11-20T10:00:00Z",
                    "identifiers": [{"type": "PHONE", "value": "+18038880000"}],
                }
            },
        )
        result: dict[str, Any] = data["recordInteraction"]
        return result

    results = await asyncio.gather(*(one(n) for n in range(50)))
    assert len({r["contact"]["id"] for r in results}) == 1
    assert await store.contacts.count_documents({}) == 1
    assert await store.conversations.count_documents({}) == 50
    assert await find_violations(store) == []


async def test_interactions_racing_merges_keep_every_invariant(api: Api, store: Store) -> None:
    phones = [f"+1803777{i:04d}" for i in range(6)]
    first = await asyncio.gather(
        *(
            api.gql(
                RECORD,
                {
                    "i": {
                        "conversationId": f"seed-{i}",
                        "channel": "VOICE",
                        "startedAt": "2026-11-20T10:00:00Z",
                        "identifiers": [{"type": "PHONE", "value": p}],
                    }
                },
            )
            for i, p in enumerate(phones)
        )
    )
    ids = [r["recordInteraction"]["contact"]["id"] for r in first]

    async def ingest(n: int) -> None:
        await api.gql(
            RECORD,
            {
                "i": {
                    "conversationId": f"race-{n}",
                    "channel": "WEB_CHAT",
                    "startedAt": "2026-11-21T10:00:00Z",
                    "identifiers": [
                        {"type": "PHONE", "value": phones[n % 6]},
                        {"type": "COOKIE", "value": f"ck-{n}"},
                    ],
                }
            },
        )

    async def merge(a: str, b: str) -> str:
        response = await api.post(
            "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }",
            {"ids": [a, b]},
        )
        body = response.json()
        return codes(body["errors"])[0] if body.get("errors") else "ok"

    # every request runs to its end before anything is asserted (a failed ingest must not
    # leave the others writing while the test's database is dropped)
    outcomes = await asyncio.gather(
        *(ingest(n) for n in range(24)),
        merge(ids[0], ids[1]),
        merge(ids[2], ids[3]),
        merge(ids[1], ids[4]),
        merge(ids[3], ids[5]),
        return_exceptions=True,
    )
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert failed == [], failed  # every interaction is recorded: conflicts are retried
    assert set(outcomes[24:]) <= {"ok", "CONFLICT", "BAD_USER_INPUT"}
    assert await find_violations(store) == []
