"""Bulk writes, upsert and note edits record their changes in the change feed, atomically:
one change per written item, none for a refused item, none when the write fails."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import PyMongoError

from resolvers import bulk, changes, contacts, upsert
from resolvers.store import Store
from tests.conftest import principal
from tests.factories import add_merge_set, insert_auto


async def feed(store: Store) -> list[tuple[str, str, list[str]]]:
    page = await changes.read_changes(store, "acme", after=0, first=500)
    return [(d["kind"], d["contactId"], list(d["contactIds"])) for d in page.docs]


def person(n: int, **fields: Any) -> dict[str, Any]:
    return {"firstName": f"P{n}", "lastName": "Feed", **fields}


async def test_bulk_writes_record_one_change_per_written_item_in_item_order(
    store: Store,
) -> None:
    who = principal(sub="crm-sync")
    made = await bulk.create_contacts(store, who, [person(0), {"firstName": "x"}, person(2)])
    a, b = made[0].unwrap()["_id"], made[2].unwrap()["_id"]
    assert await feed(store) == [("CONTACT_CREATED", a, [a]), ("CONTACT_CREATED", b, [b])]
    await bulk.update_contacts(store, who, [(b, {"title": "Dr"}), ("nope", {}), (a, {})])
    canonical, members = await add_merge_set(store, size=3)
    ancestor = next(m["_id"] for m in members if m["readOnly"])
    await bulk.delete_contacts(store, who, [a, "nope", ancestor])
    every = await feed(store)
    assert every[2:4] == [("CONTACT_UPDATED", b, [b]), ("CONTACT_UPDATED", a, [a])]
    assert every[4] == ("CONTACT_DELETED", a, [a])
    kind, head, touched = every[5]
    assert (kind, head) == ("CONTACT_DELETED", canonical["_id"])
    assert sorted(touched) == sorted({canonical["_id"], *(m["_id"] for m in members)})
    assert len(every) == 6
    page = await changes.read_changes(store, "acme", after=0, first=500)
    assert {d["by"] for d in page.docs} == {"crm-sync"}


async def test_upserts_and_note_edits_record_their_changes(store: Store) -> None:
    who = principal()
    match = [{"type": "EMAIL", "value": "feed@x.com"}]
    created, _, _ = await upsert.upsert_contact(store, who, match, person(0))
    updated, _, _ = await upsert.upsert_contact(store, who, match, {"title": "Dr"})
    assert updated["_id"] == created["_id"]
    note = await contacts.add_note(store, who, created["_id"], "first")
    await contacts.update_note(store, who, note["_id"], "second")
    await contacts.delete_note(store, who, note["_id"])
    cid = created["_id"]
    assert [k for k, _, _ in await feed(store)] == [
        "CONTACT_CREATED",
        "CONTACT_UPDATED",  # the upsert
        "CONTACT_UPDATED",  # addNote
        "CONTACT_UPDATED",  # updateNote
        "CONTACT_UPDATED",  # deleteNote
    ]
    assert {c for _, c, _ in await feed(store)} == {cid}


@pytest.mark.parametrize(
    ("write", "command", "skip"),
    [
        ("create", "insert", 0),  # the contacts
        ("create", "insert", 2),  # the changes, after the contacts and their claims
        ("update", "insert", 0),  # the changes (the claims of the new value come first)
        ("update", "findAndModify", 0),  # the positions' reservation
        ("delete", "insert", 0),  # the changes, after everything else
        ("upsert", "insert", 1),  # the change, after stitching the email
        ("note", "insert", 0),  # the change of updateNote
    ],
)
async def test_a_write_failing_at_any_step_leaves_neither_its_data_nor_a_change(
    store: Store, fail_once: Any, write: str, command: str, skip: int
) -> None:
    who = principal()
    auto_id = await insert_auto(store, cellPhone="+18035559000")
    note = await contacts.add_note(store, who, auto_id, "kept")
    before = {
        name: await store.db[name].find({}, {"claimSeq": 0}).sort("_id", 1).to_list()
        for name in ("contacts", "identifiers", "notes", "merge_sets")
    }
    changes_before = await feed(store)
    await fail_once(command, skip)
    with pytest.raises(PyMongoError):
        if write == "create":
            await bulk.create_contacts(store, who, [person(0, cellPhone="+18035559001")])
        elif write == "update":
            await bulk.update_contacts(store, who, [(auto_id, {"workPhone": "+18035559002"})])
        elif write == "delete":
            await bulk.delete_contacts(store, who, [auto_id])
        elif write == "upsert":
            match = [
                {"type": "PHONE", "value": "+18035559000"},
                {"type": "EMAIL", "value": "u@x.io"},
            ]
            await upsert.upsert_contact(store, who, match, {"title": "Dr"})
        else:
            await contacts.update_note(store, who, note["_id"], "changed")
    after = {
        name: await store.db[name].find({}, {"claimSeq": 0}).sort("_id", 1).to_list()
        for name in ("contacts", "identifiers", "notes", "merge_sets")
    }
    assert after == before, f"{write} left part of its write"
    assert await feed(store) == changes_before, f"{write} left a change without its write"


async def claims_in_feed(store: Store) -> list[tuple[str, str | None]]:
    page = await changes.read_changes(store, "acme", after=0, first=500)
    found: list[tuple[str, str | None]] = []
    for d in page.docs:
        if d["kind"] == "IDENTIFIER_CLAIMED":
            identifier = d.get("identifier")
            found.append((d["contactId"], identifier["value"] if identifier else None))
    return found


@pytest.mark.parametrize("write", ["update", "delete", "upsert"])
async def test_a_value_handed_on_to_another_lister_is_an_identifier_claimed_change(
    store: Store, write: str
) -> None:
    """Two contacts list one phone; the holder lets go of it (an edit, a deletion, an
    upsert's edit): the other lister claims it, and the feed says so in the same write."""
    who = principal()
    phone = "+18035550101"
    made = await bulk.create_contacts(
        store, who, [person(0, cellPhone=phone), person(1, cellPhone=phone)]
    )
    holder, lister = made[0].unwrap()["_id"], made[1].unwrap()["_id"]
    before = await claims_in_feed(store)
    if write == "update":
        await contacts.update_contact(store, who, holder, {"cellPhone": None})
    elif write == "delete":
        await contacts.delete_contact(store, who, holder)
    else:
        match = [{"type": "EXTERNAL_ID", "value": "crm:handover"}]
        await contacts.update_contact(
            store, who, holder, {"externalIds": [{"source": "crm", "value": "handover"}]}
        )
        await upsert.upsert_contact(store, who, match, {"cellPhone": None})
    claim = await store.identifiers.find_one({"org": "acme", "key": f"PHONE:{phone}"})
    assert claim is not None and claim["contactId"] == lister
    assert (await claims_in_feed(store))[len(before) :] == [(lister, phone)]
