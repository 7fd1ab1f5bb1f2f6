"""A failure at any write of an erasure leaves everything as it was (one transaction).

The writes an erasure sends are read from a first, successful erasure's command log; then,
for each of them (and the commit), a freshly seeded person is erased with the server's
``failCommand`` failpoint armed on exactly that command: the mutation fails with
INTERNAL_SERVER_ERROR and every collection is as before. The same erasure then succeeds.
"""

from __future__ import annotations

from typing import Any

from bench.command_log import CommandLog
from resolvers.store import Doc, Store
from tests.conftest import Api, codes
from tests.people import relink, seed_person

# with suppress: the block list's write is one more step
ERASE = "mutation($id: ID!) { eraseContact(id: $id, suppress: true) { id conversations } }"
WRITES = ("insert", "update", "delete", "findAndModify", "commitTransaction")


async def everything(store: Store) -> dict[str, list[Doc]]:
    """Every collection, but the feed's bookkeeping: positions an aborted attempt reserved
    (``change_counters``) and voided (changes without a ``kind``) are not state."""
    names = sorted(await store.db.list_collection_names())
    return {
        name: await store.db[name]
        .find({"kind": {"$exists": True}} if name == "changes" else {}, {"claimSeq": 0})
        .sort("_id", 1)
        .to_list()
        for name in names
        if name != "change_counters"
    }


async def erasure_writes(api: Api, log: CommandLog) -> list[tuple[str, int, str]]:
    """(command, how many of its kind came before, collection) of each write an erasure of a
    seeded person sends."""
    person = await seed_person(api)
    await relink(api, person)
    log.clear()
    await api.gql(ERASE, {"id": person.canonical_id})
    writes: list[tuple[str, int, str]] = []
    seen: dict[str, int] = {}
    for event in log.events:
        name = event.command_name
        if name in WRITES:
            writes.append((name, seen.get(name, 0), str(event.command.get(name))))
            seen[name] = seen.get(name, 0) + 1
    return writes


async def test_a_failure_at_any_write_of_an_erasure_changes_nothing(
    counted: tuple[Api, CommandLog], store: Store, fail_once: Any
) -> None:
    api, log = counted
    writes = await erasure_writes(api, log)
    collections = {collection for _, _, collection in writes}
    # every step writes: contacts, sets, notes, claims, history, conversations, counts, the
    # block list, the pseudonym key and the retained changes, the receipt, CONTACT_ERASED
    # (its position reserved outside the transaction, its insert in it)
    assert {
        "contacts",
        "merge_sets",
        "notes",
        "identifiers",
        "merge_events",
        "conversations",
        "conversation_counts",
        "erasure_receipts",
        "identity_settings",
        "erasure_keys",
        "changes",
        "change_counters",
    } <= collections, collections
    assert ("commitTransaction", 0, "1") in writes
    for command, skip, collection in writes:
        person = await seed_person(api)
        await relink(api, person)
        before = await everything(store)
        await fail_once(command, skip)
        _, errors = await api.gql_error(ERASE, {"id": person.canonical_id})
        assert codes(errors) == ["INTERNAL_SERVER_ERROR"], (command, skip, collection)
        assert await everything(store) == before, f"{command} #{skip} on {collection}"
        data = await api.gql(ERASE, {"id": person.canonical_id})
        assert data["eraseContact"]["conversations"] == 4
