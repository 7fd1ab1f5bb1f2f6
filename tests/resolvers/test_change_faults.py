"""Each write whose change cannot be recorded writes nothing (the change's insert fails)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

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


async def test_an_abort_waiting_for_a_reservation_still_ends_when_cancelled(store: Store) -> None:
    """An attempt's abort waits for its reservations under way; a request cancelled meanwhile
    is cancelled (it used to get the reservation's CancelledError, swallow it as the
    reservation's, and go on: a transaction retried, a task that outlived its cancellation),
    and the reservation itself is left to end on its own."""
    release = asyncio.Event()

    async def reservation() -> int:
        await release.wait()
        return 1

    session = SimpleNamespace()
    ahead = asyncio.create_task(reservation())
    setattr(session, changes._RESERVED_ATTR, changes._Reserved(ahead=[ahead]))
    aborting = asyncio.create_task(changes.void_reserved(store, cast(Any, session)))
    await asyncio.sleep(0.01)
    assert not aborting.done()
    aborting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await aborting
    assert aborting.cancelled()
    assert not ahead.done()  # not cancelled for the request: its position settles as usual
    release.set()
    assert await ahead == 1


async def test_an_abort_takes_a_failed_reservation_as_part_of_the_failed_attempt(
    store: Store,
) -> None:
    async def failed() -> int:
        raise PyMongoError("the reservation failed too")

    async def broken() -> int:
        raise ValueError("a bug, not the database")

    for reservation, raised in ((failed, None), (broken, ValueError)):
        session = SimpleNamespace()
        ahead = asyncio.create_task(reservation())
        setattr(session, changes._RESERVED_ATTR, changes._Reserved(ahead=[ahead]))
        if raised is None:
            await changes.void_reserved(store, cast(Any, session))
            assert getattr(session, changes._RESERVED_ATTR).ahead == []
        else:
            with pytest.raises(raised):
                await changes.void_reserved(store, cast(Any, session))
