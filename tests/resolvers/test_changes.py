"""The change feed's core: recorded in the write's transaction, in order, holes respected."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from pymongo.errors import PyMongoError

from resolvers import changes, contacts
from resolvers.changes import ChangeKind
from resolvers.clock import now
from resolvers.errors import Conflict
from resolvers.store import Store
from tests.conftest import principal


async def feed(store: Store, org: str = "acme") -> list[tuple[str, str]]:
    page = await changes.read_changes(store, org, after=0, first=500)
    return [(d["kind"], d["contactId"]) for d in page.docs]


async def test_contact_writes_record_their_changes_in_order(store: Store) -> None:
    who = principal(sub="agent-7")
    doc = await contacts.create_contact(store, who, {"firstName": "A", "lastName": "B"})
    await contacts.update_contact(store, who, doc["_id"], {"firstName": "C"})
    await contacts.delete_contact(store, who, doc["_id"])
    page = await changes.read_changes(store, "acme", after=0, first=10)
    assert [(d["kind"], d["contactId"], d["by"]) for d in page.docs] == [
        ("CONTACT_CREATED", doc["_id"], "agent-7"),
        ("CONTACT_UPDATED", doc["_id"], "agent-7"),
        ("CONTACT_DELETED", doc["_id"], "agent-7"),
    ]
    assert [d["seq"] for d in page.docs] == [1, 2, 3]
    assert page.end == 3 and not page.has_next
    assert await feed(store, "other") == []


@pytest.mark.parametrize(
    ("command", "skip"),
    [
        ("insert", 0),  # the contact
        ("find", 0),  # the claim read
        ("findAndModify", 0),  # the position's reservation
        ("insert", 2),  # the change itself (after the contact and its claim)
    ],
)
async def test_a_create_failing_at_any_step_leaves_neither_contact_nor_change(
    store: Store, fail_once: Any, command: str, skip: int
) -> None:
    await fail_once(command, skip)
    with pytest.raises(PyMongoError):
        await contacts.create_contact(
            store, principal(), {"firstName": "A", "lastName": "B", "cellPhone": "+18035550100"}
        )
    assert await store.contacts.count_documents({}) == 0
    assert await store.identifiers.count_documents({}) == 0
    assert await feed(store) == []
    # the next write's change is readable: the aborted attempt's position does not block it
    doc = await contacts.create_contact(store, principal(), {"firstName": "A", "lastName": "B"})
    assert await feed(store) == [("CONTACT_CREATED", doc["_id"])]


async def test_a_failed_commit_leaves_no_change_and_its_position_settles(
    store: Store, fail_once: Any
) -> None:
    await fail_once("commitTransaction")
    with pytest.raises(PyMongoError):
        await contacts.create_contact(store, principal(), {"firstName": "A", "lastName": "B"})
    doc = await contacts.create_contact(store, principal(), {"firstName": "C", "lastName": "D"})
    assert await store.contacts.count_documents({}) == 1
    # the failed commit's position may still be filled (the server may have committed it):
    # readers wait until it settles
    assert await feed(store) == []
    settled = Store(store.db, dataclasses.replace(store.config, change_settle_seconds=0))
    await asyncio.sleep(0.01)
    assert await feed(settled) == [("CONTACT_CREATED", doc["_id"])]


@pytest.mark.parametrize(("command", "skip"), [("update", 0), ("insert", 0)])
async def test_an_update_failing_leaves_the_contact_and_the_feed_as_they_were(
    store: Store, fail_once: Any, command: str, skip: int
) -> None:
    doc = await contacts.create_contact(store, principal(), {"firstName": "A", "lastName": "B"})
    before = await store.contacts.find_one({"_id": doc["_id"]})
    await fail_once(command, skip)
    with pytest.raises(PyMongoError):
        await contacts.update_contact(store, principal(), doc["_id"], {"firstName": "Z"})
    assert await store.contacts.find_one({"_id": doc["_id"]}) == before
    assert await feed(store) == [("CONTACT_CREATED", doc["_id"])]


async def test_every_committed_concurrent_write_has_exactly_its_change_in_commit_order(
    store: Store,
) -> None:
    doc = await contacts.create_contact(store, principal(), {"firstName": "A", "lastName": "B"})

    async def edit(n: int) -> str | None:
        try:
            updated = await contacts.update_contact(
                store, principal(), doc["_id"], {"firstName": f"N{n}"}
            )
        except Conflict:
            return None
        return str(updated["firstName"])

    results = await asyncio.gather(*(edit(n) for n in range(12)))
    committed = [r for r in results if r is not None]
    page = await changes.read_changes(store, "acme", after=0, first=100)
    kinds = [d["kind"] for d in page.docs]
    assert kinds == ["CONTACT_CREATED"] + ["CONTACT_UPDATED"] * len(committed)
    positions = [d["seq"] for d in page.docs]
    assert positions == sorted(positions)
    # the last change in the feed is the write whose name the contact kept
    final = await store.contacts.find_one({"_id": doc["_id"]})
    assert final is not None and final["firstName"] in committed


async def test_a_reader_stops_before_a_position_whose_write_may_still_commit(
    store: Store,
) -> None:
    first = await contacts.create_contact(store, principal(), {"firstName": "A", "lastName": "B"})
    session = store.db.client.start_session()
    await session.start_transaction()
    open_write = await changes.record_change(
        store, session, org="acme", kind=ChangeKind.CONTACT_UPDATED, by="x", contact_id="held"
    )
    later = await contacts.create_contact(store, principal(), {"firstName": "C", "lastName": "D"})
    assert await feed(store) == [("CONTACT_CREATED", first["_id"])]  # not past the hole
    await session.commit_transaction()
    await session.end_session()
    assert await feed(store) == [
        ("CONTACT_CREATED", first["_id"]),
        ("CONTACT_UPDATED", "held"),
        ("CONTACT_CREATED", later["_id"]),
    ]
    assert open_write["seq"] == 2


async def test_a_hole_left_by_a_dead_writer_settles(store: Store) -> None:
    await changes._reserve(store, "acme", 1)  # a writer that died before its insert
    doc = await contacts.create_contact(store, principal(), {"firstName": "A", "lastName": "B"})
    assert await feed(store) == []
    settled = Store(store.db, dataclasses.replace(store.config, change_settle_seconds=0))
    await asyncio.sleep(0.01)
    assert await feed(settled) == [("CONTACT_CREATED", doc["_id"])]


async def test_cursors_page_through_and_kinds_filter(store: Store) -> None:
    ids = [
        (
            await contacts.create_contact(
                store, principal(), {"firstName": f"A{n}", "lastName": "B"}
            )
        )["_id"]
        for n in range(5)
    ]
    await contacts.update_contact(store, principal(), ids[0], {"firstName": "Q"})
    page = await changes.read_changes(store, "acme", after=0, first=2)
    assert [d["contactId"] for d in page.docs] == ids[:2] and page.has_next
    rest = await changes.read_changes(store, "acme", after=page.end, first=10)
    assert [d["contactId"] for d in rest.docs] == [*ids[2:], ids[0]] and not rest.has_next
    updates = await changes.read_changes(
        store, "acme", after=0, first=10, kinds=["CONTACT_UPDATED"]
    )
    assert [d["contactId"] for d in updates.docs] == [ids[0]] and updates.end == 6
    assert changes.parse_after(changes.cursor_of(6)) == 6


async def test_a_long_gone_stretch_of_positions_is_stepped_over(store: Store) -> None:
    """An org quiet for days whose changes expired and were removed (more than a read window
    of them): a reader from the beginning reaches the next change at once, each read bounded."""
    gone = changes.SCAN_WINDOW * 3
    days_ago = now() - timedelta(days=8)
    await store.change_counters.insert_one({"_id": "acme", "seq": gone, "stamps": [days_ago]})
    doc = await contacts.create_contact(store, principal(), {"firstName": "A", "lastName": "B"})
    page = await changes.read_changes(store, "acme", after=0, first=10)
    assert [d["contactId"] for d in page.docs] == [doc["_id"]]
    assert page.end == gone + 1 and page.docs[0]["seq"] == gone + 1
    assert await changes.latest_stable(store, "acme") == gone + 1


async def test_expired_changes_are_never_shown(store: Store) -> None:
    doc = await contacts.create_contact(store, principal(), {"firstName": "A", "lastName": "B"})
    await store.changes.update_many({}, {"$set": {"expiresAt": now() - timedelta(seconds=1)}})
    page = await changes.read_changes(store, "acme", after=0, first=10)
    assert page.docs == [] and page.end == 1
    assert doc["_id"]
