"""Bulk writes: database commands that do not grow with the items, and no partial write
when a command fails in the middle (a failpoint on the real server)."""

from __future__ import annotations

from typing import Any

from bench.command_log import CommandLog
from resolvers.invariants import find_violations
from resolvers.store import Doc, Store
from tests.conftest import Api, codes
from tests.factories import add_merge_set, insert_auto

BULK_CREATE = """mutation($i: [ContactInput!]!) {
  bulkCreateContacts(inputs: $i) { index contact { id } error { code } } }"""
BULK_UPDATE = """mutation($u: [ContactUpdate!]!) {
  bulkUpdateContacts(updates: $u) { index contact { id } error { code } } }"""
BULK_DELETE = """mutation($ids: [ID!]!) {
  bulkDeleteContacts(ids: $ids) { index error { code } } }"""
CREATE = "mutation($i: ContactInput!) { createContact(input: $i) { id } }"
UPSERT = """mutation($m: [IdentifierInput!]!, $i: ContactInput!) {
  upsertContact(match: $m, input: $i) { created contact { id } } }"""
ADD_NOTE = 'mutation($id: ID!) { addNote(contactId: $id, text: "a") { id } }'
UPDATE_NOTE = 'mutation($id: ID!) { updateNote(id: $id, text: "b") { id } }'
DELETE_NOTE = "mutation($id: ID!) { deleteNote(id: $id) }"


def people(start: int, count: int) -> list[dict[str, Any]]:
    """Contacts with a phone and an email each, all distinct."""
    return [
        {
            "firstName": f"P{n}",
            "lastName": "Count",
            "cellPhone": f"+1803666{n:04d}",
            "workEmail": f"p{n}@count.example",
        }
        for n in range(start, start + count)
    ]


async def commands(api: Api, log: CommandLog, query: str, variables: dict[str, Any]) -> list[str]:
    log.clear()
    data = await api.gql(query, variables)
    (items,) = data.values()
    assert all(i["error"] is None for i in items), items
    return sorted(log.names(get_more=False))


async def ids_of(api: Api, start: int, count: int) -> list[str]:
    data = await api.gql(BULK_CREATE, {"i": people(start, count)})
    return [i["contact"]["id"] for i in data["bulkCreateContacts"]]


async def test_bulk_writes_cost_the_same_commands_for_10_and_200_items(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    api, log = counted
    small = await commands(api, log, BULK_CREATE, {"i": people(0, 10)})
    large = await commands(api, log, BULK_CREATE, {"i": people(100, 200)})
    print(f"\nbulk create of 10: {len(small)} commands {small}\nof 200: {len(large)}")
    assert small == large, (small, large)
    # 8 for the write, then the match pairs (resolvers/matching_batch.py): the org's
    # identity settings, claims, name keys, holders and listers, one delete, (one bulk write)
    assert len(large) <= 14, large

    log.clear()
    for person in people(1000, 10):  # what ten single calls cost, for comparison
        await api.gql(CREATE, {"i": person})
    singles = log.count(get_more=False)
    assert singles >= 5 * len(small), (singles, small)

    few, many = await ids_of(api, 2000, 10), await ids_of(api, 3000, 200)
    # each update moves the phone to a new value and drops the email: claims, releases
    small = await commands(api, log, BULK_UPDATE, {"u": [edit(i, n) for n, i in enumerate(few)]})
    large = await commands(
        api, log, BULK_UPDATE, {"u": [edit(i, n + 500) for n, i in enumerate(many)]}
    )
    print(f"bulk update of 10: {len(small)} commands {small}\nof 200: {len(large)}")
    assert small == large, (small, large)
    assert len(large) <= 20, large  # 14 for the write, then the match pairs

    small = await commands(api, log, BULK_DELETE, {"ids": few})
    large = await commands(api, log, BULK_DELETE, {"ids": many})
    print(f"bulk delete of 10: {len(small)} commands {small}\nof 200: {len(large)}")
    assert small == large, (small, large)
    assert len(large) <= 12, large
    assert await find_violations(store) == []


def edit(contact_id: str, n: int) -> dict[str, Any]:
    return {"id": contact_id, "input": {"cellPhone": f"+1803777{n:04d}", "workEmail": None}}


# --- failpoints ---------------------------------------------------------------------------------


async def snapshot(store: Store) -> dict[str, list[Doc]]:
    return {
        name: await store.db[name].find({}, {"claimSeq": 0}).sort("_id", 1).to_list()
        for name in ("contacts", "identifiers", "merge_sets", "notes", "merge_events")
    }


async def fails_whole(api: Api, store: Store, query: str, variables: dict[str, Any]) -> None:
    before = await snapshot(store)
    _, errors = await api.gql_error(query, variables)
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"], errors
    assert await snapshot(store) == before, "a failed write left something behind"


async def test_a_failed_command_leaves_no_partial_bulk_write(
    api: Api, store: Store, fail_once: Any
) -> None:
    taken = await ids_of(api, 0, 2)  # holders whose values the writes below move
    # create: the claims' insert fails after the contacts' insert
    await fail_once("insert", skip=1)
    await fails_whole(api, store, BULK_CREATE, {"i": people(10, 5)})
    # update: the claims of the new values fail after the contacts were written
    await fail_once("insert")
    await fails_whole(api, store, BULK_UPDATE, {"u": [edit(i, n) for n, i in enumerate(taken)]})
    # delete: handing the released values on fails after the contacts were deleted
    canonical, _ = await add_merge_set(store, size=3)
    await fail_once("delete", skip=3)
    await fails_whole(api, store, BULK_DELETE, {"ids": [taken[0], canonical["_id"]]})
    # and each one succeeds when nothing fails
    assert (await api.gql(BULK_CREATE, {"i": people(10, 5)}))["bulkCreateContacts"]
    assert (await api.gql(BULK_DELETE, {"ids": [taken[0], canonical["_id"]]}))[
        "bulkDeleteContacts"
    ][0]["error"] is None
    assert await find_violations(store) == []


async def test_a_failed_command_leaves_no_partial_upsert_or_note_write(
    api: Api, store: Store, fail_once: Any
) -> None:
    auto_id = await insert_auto(store, cellPhone="+18036660999")
    match = [{"type": "PHONE", "value": "+18036660999"}, {"type": "COOKIE", "value": "ck-1"}]
    # the contact's update is written, then stitching the cookie fails
    await fail_once("insert")
    await fails_whole(api, store, UPSERT, {"m": match, "i": {"title": "Dr"}})
    # a new contact: its insert is written, its claims fail
    await fail_once("insert", skip=1)
    fresh = [{"type": "EMAIL", "value": "fresh@count.example"}]
    await fails_whole(api, store, UPSERT, {"m": fresh, "i": {"firstName": "F", "lastName": "G"}})
    note = (await api.gql(ADD_NOTE, {"id": auto_id}))["addNote"]["id"]
    await fail_once("update")
    await fails_whole(api, store, UPDATE_NOTE, {"id": note})
    await fail_once("delete")
    await fails_whole(api, store, DELETE_NOTE, {"id": note})
    done = await api.gql(UPSERT, {"m": match, "i": {"title": "Dr"}})
    assert done["upsertContact"] == {"created": False, "contact": {"id": auto_id}}
    assert await find_violations(store) == []
