"""Each write whose change cannot be recorded writes nothing (the change's insert fails)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from resolvers import changes, contacts, conversations, merges
from resolvers.clock import now
from resolvers.store import Doc, Store
from tests.conftest import principal
from tests.factories import add_contact, auto_contact, conversation_doc

COLLECTIONS = ("contacts", "identifiers", "conversations", "merge_sets", "notes", "merge_events")


@pytest.fixture
async def fail_change_insert(client: AsyncMongoClient[Doc], db_name: str) -> AsyncIterator[Any]:
    async def arm() -> None:
        await client.admin.command(
            {
                "configureFailPoint": "failCommand",
                "mode": {"times": 1},
                "data": {
                    "failCommands": ["insert"],
                    "namespace": f"{db_name}.changes",
                    "errorCode": 2,
                },
            }
        )

    yield arm
    await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


async def snapshot(store: Store) -> dict[str, list[Doc]]:
    return {
        name: await store.db[name].find({}, {"claimSeq": 0}).sort("_id", 1).to_list()
        for name in COLLECTIONS
    }


Write = Callable[[Store, dict[str, str]], Awaitable[object]]


async def world(store: Store) -> dict[str, str]:
    auto = await auto_contact(store, cellPhone="+18035550101")
    a = await auto_contact(store, cellPhone="+18035550102")
    b = await add_contact(store, firstName="Bo")
    merged = await merges.merge_contacts(store, principal(), [a["_id"], b["_id"]])
    await store.conversations.insert_one(conversation_doc(store, "conv-1", now()))
    return {"auto": auto["_id"], "head": merged["_id"], "a": a["_id"]}


WRITES: dict[str, Write] = {
    "promote": lambda s, ids: contacts.promote_contact(s, principal(), ids["auto"]),
    "addNote": lambda s, ids: contacts.add_note(s, principal(), ids["head"], "hello"),
    "link": lambda s, ids: conversations.link_conversation(s, principal(), "conv-1", ids["a"]),
    "unmerge": lambda s, ids: merges.unmerge_contacts(s, principal(), ids["head"]),
    "merge": lambda s, ids: merges.merge_contacts(s, principal(), [ids["auto"], ids["head"]]),
    "delete": lambda s, ids: contacts.delete_contact(s, principal(), ids["head"]),
}


@pytest.mark.parametrize("name", list(WRITES))
async def test_a_write_whose_change_fails_writes_nothing(
    store: Store, fail_change_insert: Any, name: str
) -> None:
    ids = await world(store)
    before = await snapshot(store)
    feed_before = (await changes.read_changes(store, "acme", after=0, first=100)).docs
    await fail_change_insert()
    with pytest.raises(PyMongoError):
        await WRITES[name](store, ids)
    assert await snapshot(store) == before
    assert (await changes.read_changes(store, "acme", after=0, first=100)).docs == feed_before
    # and done again, it writes and records its change
    await WRITES[name](store, ids)
    after = (await changes.read_changes(store, "acme", after=0, first=100)).docs
    assert len(after) > len(feed_before)
