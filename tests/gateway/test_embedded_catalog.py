"""The embedded server's catalog cache (``gateway/embedded_catalog.py``): every test here
runs against the session's embedded server, whose daemon has it installed, and changes the
catalog after the cache has been filled; the server must act on the new catalog at once."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, WriteError
from secantus import aggregate, server, storage

from gateway.embedded_catalog import CatalogCache, changes_catalog, install
from resolvers.store import Doc


@pytest.fixture
async def db(client: AsyncMongoClient[Doc]) -> Any:
    name = f"scv_catalog_{uuid.uuid4().hex[:10]}"
    yield client[name]
    await client.drop_database(name)


async def warm(db: AsyncDatabase[Doc], name: str) -> None:
    """Writes and reads that fill the cache with the collection's indexes and options."""
    for i in range(3):
        await db[name].insert_one({"_id": f"w{i}", "k": f"warm-{i}"})
        await db[name].update_one({"_id": f"w{i}"}, {"$set": {"seen": True}})
    assert await db[name].count_documents({"seen": True}) == 3


async def test_a_unique_index_created_after_writes_is_enforced_at_once(
    db: AsyncDatabase[Doc],
) -> None:
    await db.c.create_index("other")
    await warm(db, "c")
    await db.c.create_index("k", unique=True)
    with pytest.raises(DuplicateKeyError):
        await db.c.insert_one({"_id": "dup", "k": "warm-0"})
    with pytest.raises(DuplicateKeyError):
        await db.c.update_one({"_id": "w1"}, {"$set": {"k": "warm-2"}})


async def test_a_dropped_unique_index_no_longer_refuses(db: AsyncDatabase[Doc]) -> None:
    await db.c.create_index("k", unique=True, name="k_unique")
    await warm(db, "c")
    with pytest.raises(DuplicateKeyError):
        await db.c.insert_one({"_id": "dup", "k": "warm-0"})
    await db.c.drop_index("k_unique")
    await db.c.insert_one({"_id": "dup", "k": "warm-0"})
    assert await db.c.count_documents({"k": "warm-0"}) == 2


async def test_a_new_index_is_used_and_kept_by_later_writes(db: AsyncDatabase[Doc]) -> None:
    await warm(db, "c")
    await db.c.create_index("n")
    await db.c.insert_many([{"_id": f"n{i}", "n": i} for i in range(20)])
    plan = await db.command(
        "explain", {"find": "c", "filter": {"n": 7}}, verbosity="executionStats"
    )
    assert "IXSCAN" in str(plan["queryPlanner"]["winningPlan"])
    assert await db.c.find_one({"n": 7}) == {"_id": "n7", "n": 7}


async def test_a_collection_dropped_and_created_again_has_its_new_options(
    db: AsyncDatabase[Doc],
) -> None:
    await db.create_collection("c")
    await warm(db, "c")
    await db.c.drop()
    await db.create_collection("c", validator={"k": {"$type": "string"}})
    await db.c.insert_one({"_id": 1, "k": "text"})
    with pytest.raises(WriteError):
        await db.c.insert_one({"_id": 2, "k": 5})
    await db.command("collMod", "c", validator={})
    await db.c.insert_one({"_id": 2, "k": 5})
    assert await db.c.count_documents({}) == 2


async def test_a_profiling_level_set_is_read_back(db: AsyncDatabase[Doc]) -> None:
    await warm(db, "c")
    assert (await db.command("profile", -1))["was"] == 0
    await db.command("profile", 2)
    try:
        assert (await db.command("profile", -1))["was"] == 2
        await db.c.find_one({"_id": "w0"})
        assert await db["system.profile"].count_documents({"ns": f"{db.name}.c"}) >= 1
    finally:
        await db.command("profile", 0)
    assert (await db.command("profile", -1))["was"] == 0


def test_an_entry_read_at_an_older_generation_is_read_again() -> None:
    cache = CatalogCache()
    reads: list[int] = []

    def read() -> int:
        reads.append(cache.generation)
        return len(reads)

    assert cache.lookup(("indexes", "d", "c"), read, lambda _: True) == 1
    assert cache.lookup(("indexes", "d", "c"), read, lambda _: True) == 1  # kept
    cache.bump()
    assert cache.lookup(("indexes", "d", "c"), read, lambda _: True) == 2
    assert reads == [0, 1]


def test_a_change_while_reading_leaves_the_entry_stale() -> None:
    cache = CatalogCache()

    def read_during_a_change() -> str:
        cache.bump()  # a catalog command runs while the entry is read
        return "as read"

    cache.lookup(("options", "d", "c"), read_during_a_change, lambda _: True)
    assert cache.lookup(("options", "d", "c"), lambda: "read again", lambda _: True) == (
        "read again"
    )


def test_what_keep_refuses_is_never_kept() -> None:
    cache = CatalogCache()
    values = iter([{}, {"uuid": 1}, {"uuid": 2}])

    def keep(options: dict[str, int]) -> bool:
        return "uuid" in options

    assert cache.lookup(("options", "d", "c"), lambda: next(values), keep) == {}
    assert cache.lookup(("options", "d", "c"), lambda: next(values), keep) == {"uuid": 1}
    assert cache.lookup(("options", "d", "c"), lambda: next(values), keep) == {"uuid": 1}


@pytest.mark.parametrize(
    ("name", "body", "changes"),
    [
        ("find", {"find": "c"}, False),
        ("insert", {"insert": "c"}, False),
        ("bulkWrite", {"bulkWrite": 1, "ops": [], "nsInfo": []}, False),
        ("aggregate", {"aggregate": "c", "pipeline": [{"$match": {}}]}, False),
        ("aggregate", {"aggregate": "c", "pipeline": [{"$out": "d"}]}, True),
        ("aggregate", {"aggregate": "c", "pipeline": [{"$merge": {"into": "d"}}]}, True),
        ("createIndexes", {"createIndexes": "c"}, True),
        ("dropDatabase", {"dropDatabase": 1}, True),
        ("collMod", {"collMod": "c"}, True),
        ("profile", {"profile": 2}, True),
        ("somethingNew", {"somethingNew": 1}, True),
    ],
)
def test_which_commands_change_the_catalog(name: str, body: dict[str, Any], changes: bool) -> None:
    assert changes_catalog(name, body) is changes


def test_a_catalog_command_in_a_transaction_moves_the_generation_when_it_ends() -> None:
    cache = CatalogCache()
    ran: list[str] = []
    dispatch = cache.dispatch(lambda body, ctx: ran.append(next(iter(body))))
    lsid = {"id": b"session-1"}
    dispatch({"createIndexes": "c", "lsid": lsid, "autocommit": False}, None)
    assert cache.generation == 2  # before and after the command
    dispatch({"insert": "c", "lsid": lsid, "autocommit": False}, None)
    assert cache.generation == 2
    dispatch({"commitTransaction": 1, "lsid": lsid, "autocommit": False}, None)
    assert cache.generation == 3  # visible now: entries read meanwhile are stale
    dispatch({"commitTransaction": 1, "lsid": {"id": b"session-2"}}, None)
    assert cache.generation == 3
    assert ran == ["createIndexes", "insert", "commitTransaction", "commitTransaction"]


async def test_an_index_made_multikey_by_a_write_is_no_longer_walked_as_a_sort(
    db: AsyncDatabase[Doc],
) -> None:
    """An insert or update that puts an array in an indexed field flags the index multikey
    in the catalog itself (not through a catalog command). Walking a multikey index is not
    a sort and loses documents (an empty array has no entry): the server must see the flag
    at once, not the index list the cache read before the write."""
    await db.c.create_index("x")
    await db.c.insert_many([{"_id": "one", "x": 1}, {"_id": "two", "x": 2}])
    assert [d["_id"] async for d in db.c.find({}).sort("x", 1)] == ["one", "two"]  # cached
    await db.c.insert_one({"_id": "empty", "x": []})
    await db.c.insert_one({"_id": "nested", "x": [[5]]})
    found = [d["_id"] async for d in db.c.find({}).sort("x", 1)]
    assert sorted(found) == ["empty", "nested", "one", "two"], found


async def test_a_multikey_flag_written_in_a_transaction_is_seen_after_its_commit(
    db: AsyncDatabase[Doc], client: AsyncMongoClient[Doc]
) -> None:
    """Inside a transaction the flag is visible to other readers only from the commit: the
    cache read meanwhile (the committed catalog, no flag) is stale again once it commits."""
    await db.c.create_index("x")
    await db.c.insert_many([{"_id": "one", "x": 1}, {"_id": "two", "x": 2}])
    async with client.start_session() as session, await session.start_transaction():
        await db.c.insert_one({"_id": "empty", "x": []}, session=session)
        # read outside the transaction while it is open: the cache refills without the flag
        assert [d["_id"] async for d in db.c.find({}).sort("x", 1)] == ["one", "two"]
    found = [d["_id"] async for d in db.c.find({}).sort("x", 1)]
    assert sorted(found) == ["empty", "one", "two"], found


def test_a_catalog_write_by_a_transactions_statement_moves_the_generation_when_it_ends() -> None:
    cache = CatalogCache()

    def statement(body: dict[str, Any], ctx: Any) -> None:
        if "insert" in body:  # an insert that flags an index multikey
            cache.catalog_written()

    dispatch = cache.dispatch(statement)
    lsid = {"id": b"session-2"}
    dispatch({"insert": "c", "lsid": lsid, "autocommit": False}, None)
    assert cache.generation == 1  # at the write
    dispatch({"find": "c", "lsid": lsid, "autocommit": False}, None)
    assert cache.generation == 1
    dispatch({"commitTransaction": 1, "lsid": lsid, "autocommit": False}, None)
    assert cache.generation == 2  # and when the transaction ends
    dispatch({"insert": "c"}, None)  # outside a transaction: at the write only
    dispatch({"commitTransaction": 1, "lsid": lsid, "autocommit": False}, None)
    assert cache.generation == 3


def test_index_definitions_leave_the_storage_as_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept decoded, once a generation: what ``list_indexes`` hands out (to replies and
    pipelines) is a copy, so changing it changes nothing the storage reads next."""
    for patched in ("_iter_indexes", "list_indexes", "get_collection_options", "get_profile"):
        monkeypatch.setattr(storage.Storage, patched, getattr(storage.Storage, patched))
    monkeypatch.setattr(
        storage.Storage, "_maybe_mark_multikey", storage.Storage._maybe_mark_multikey
    )
    monkeypatch.setattr(server, "dispatch", server.dispatch)
    install(CatalogCache())
    store = storage.Storage(str(tmp_path / "data"), ttl_sweep_seconds=0)
    try:
        store.create_index("d", "c", "by_k", {"k": 1}, {"partialFilterExpression": {"on": True}})
        listed = store.list_indexes("d", "c")
        by_k = next(entry for entry in listed if entry["name"] == "by_k")
        by_k["key"]["other"] = 1
        by_k["partialFilterExpression"]["on"] = False
        ((name, key, options),) = store._iter_indexes("d", "c")
        assert (name, key, options["partialFilterExpression"]) == ("by_k", {"k": 1}, {"on": True})
        again = next(entry for entry in store.list_indexes("d", "c") if entry["name"] == "by_k")
        assert again["key"] == {"k": 1}
        assert again["partialFilterExpression"] == {"on": True}
        # $lookup's index check reads them uncopied, and still finds the index
        assert aggregate._foreign_field_has_simple_index(store, "d", "c", "k")
        assert not aggregate._foreign_field_has_simple_index(store, "d", "c", "other")
    finally:
        store.close()
