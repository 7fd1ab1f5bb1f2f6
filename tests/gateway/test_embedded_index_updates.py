"""Updates that rewrite only the index entries whose keys changed leave exactly the entries
SecantusDB's own rewrite-everything leaves, and touch no index an update did not change.

The same documents and updates run on two storages, one through
``gateway/embedded_index_updates.py`` and one through SecantusDB's own functions; their
index entry tables must be equal after every step, and queries through each index must find
the same documents.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from secantus import storage

from gateway import embedded_index_updates

DB = "scv"
COLL = "contacts"
WHEN = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)

INDEXES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("org_keys", {"org": 1, "keys": 1}, {}),
    ("org_names", {"org": 1, "nameTokens": 1}, {}),
    ("claim", {"key": 1}, {"unique": True, "sparse": True}),
    ("ttl", {"expiresAt": 1}, {"expireAfterSeconds": 0}),
    ("org_id_state", {"org": 1, "_id": 1, "readOnly": 1, "modifiedAt": 1}, {}),
    ("nested", {"address.city": 1}, {}),
    ("seen", {"identifiers.value": 1}, {}),
    ("org_set", {"org": 1, "mergeSetId": 1}, {}),
    ("web", {"at": 1}, {"partialFilterExpression": {"kind": "web"}}),
    ("either", {"score": -1}, {"partialFilterExpression": {"$and": [{"kind": "web"}]}}),
]

DOCS: list[dict[str, Any]] = [
    {
        "_id": "a",
        "org": "o",
        "keys": ["phone:1", "email:a"],
        "nameTokens": ["ann"],
        "key": "k-a",
        "expiresAt": WHEN,
        "readOnly": False,
        "modifiedAt": WHEN,
        "address": {"city": "Oslo", "zip": "0150"},
        "identifiers": [{"type": "PHONE", "value": "1"}],
        "mergeSetId": "s1",
        "kind": "web",
        "at": WHEN,
        "score": 1,
        "notes": "first",
    },
    {"_id": "b", "org": "o", "keys": ["phone:2"], "expiresAt": WHEN, "kind": "call", "at": WHEN},
    {"_id": "c", "org": "o", "key": "k-c", "score": 1.0, "flag": True},
]

# (filter, update): each changes something indexed, something not, or nothing at all
UPDATES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"_id": "a"}, {"$set": {"notes": "second"}}),  # no indexed field
    ({"_id": "a"}, {"$set": {"expiresAt": WHEN + dt.timedelta(days=30)}}),  # the TTL only
    ({"_id": "a"}, {"$push": {"keys": "email:b"}}),  # an array grows
    ({"_id": "a"}, {"$pull": {"keys": "phone:1"}}),  # … and shrinks
    ({"_id": "a"}, {"$set": {"address.zip": "0151"}}),  # a sub-field no index reads
    ({"_id": "a"}, {"$set": {"address.city": "Bergen"}}),  # a sub-field one reads
    ({"_id": "a"}, {"$set": {"identifiers.0.value": "9"}}),  # inside an array of documents
    ({"_id": "a"}, {"$set": {"kind": "call"}}),  # out of two partial indexes
    ({"_id": "a"}, {"$set": {"kind": "web", "at": WHEN + dt.timedelta(hours=1)}}),  # back in
    ({"_id": "a"}, {"$set": {"score": 1.0}}),  # the same number, another type
    ({"_id": "a"}, {"$set": {"score": True}}),  # a boolean is not 1
    ({"_id": "a"}, {"$unset": {"key": ""}}),  # out of a sparse unique index
    ({"_id": "b"}, {"$set": {"key": "k-a"}}),  # the released value taken by another
    ({"_id": "a"}, {"$set": {"mergeSetId": "s2"}}),  # a key after the org
    ({"_id": "a"}, {"$set": {"address": {"zip": "0151", "city": "Bergen"}}}),  # field order
    ({"_id": "a"}, {"$set": {"score": float("nan")}}),
    ({"_id": "a"}, {"$set": {"score": float("nan")}}),  # NaN again: counted as changed
    ({"org": "o"}, {"$set": {"readOnly": True}}),  # several documents
    ({"org": "o"}, {"$set": {"notes": "all"}}),
    ({"_id": "c"}, {"$inc": {"score": 1}}),
]


def opened(path: Path) -> storage.Storage:
    store = storage.Storage(str(path), ttl_sweep_seconds=0)
    for name, spec, options in INDEXES:
        store.create_index(DB, COLL, name, spec, options)
    store.insert(DB, COLL, [dict(d) for d in DOCS])
    return store


def entries(store: storage.Storage) -> list[tuple[Any, ...]]:
    """Every row of the index entry table: (db, collection, index, packed key and record)."""
    cursor = store._cursor(storage._IDX_ENTRIES_TABLE)
    cursor.reset()
    rows = []
    while cursor.next() == 0:
        rows.append((*cursor.get_key(), bytes(cursor.get_value())))
    return rows


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[storage.Storage, storage.Storage]]:
    by_change, everything = opened(tmp_path / "by-change"), opened(tmp_path / "everything")
    yield by_change, everything
    by_change.close()
    everything.close()


def update(
    store: storage.Storage, filter: dict[str, Any], change: dict[str, Any], *, by_change: bool
) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        if by_change:
            patch.setattr(
                storage.Storage,
                "_delete_index_entries",
                embedded_index_updates.delete_index_entries,
            )
            patch.setattr(
                storage.Storage, "_write_index_entries", embedded_index_updates.write_index_entries
            )
        result: dict[str, Any] = store.update_matching(DB, COLL, filter, change, multi=True)
        return result


def test_each_update_leaves_the_entries_a_full_rewrite_leaves(
    stores: tuple[storage.Storage, storage.Storage],
) -> None:
    by_change, everything = stores
    assert entries(by_change) == entries(everything)
    for filter, change in UPDATES:
        assert update(by_change, filter, change, by_change=True) == update(
            everything, filter, change, by_change=False
        ), change
        assert entries(by_change) == entries(everything), change
    for name, spec, _options in INDEXES:  # and each index finds the same documents
        field = next(iter(spec))
        query = {field: {"$exists": True}}
        found = [sorted(d["_id"] for d in s.find_matching(DB, COLL, query)) for s in stores]
        assert found[0] == found[1], name


def test_an_update_of_an_unindexed_field_writes_no_index_entry(
    stores: tuple[storage.Storage, storage.Storage], monkeypatch: pytest.MonkeyPatch
) -> None:
    by_change, _ = stores
    written: list[list[str]] = []
    original = embedded_index_updates.ORIGINAL_WRITE

    def counting(self: Any, db: str, coll: str, doc: Any, indexes: Any, *a: Any, **k: Any) -> None:
        written.append([name for name, *_ in indexes])
        original(self, db, coll, doc, indexes, *a, **k)

    monkeypatch.setattr(embedded_index_updates, "ORIGINAL_WRITE", counting)
    update(by_change, {"_id": "a"}, {"$set": {"notes": "unindexed"}}, by_change=True)
    update(
        by_change,
        {"_id": "a"},
        {"$set": {"expiresAt": WHEN + dt.timedelta(days=1)}},
        by_change=True,
    )
    assert written == [[], ["ttl"]]


@pytest.mark.parametrize(
    ("spec", "partial", "judged"),
    [
        ({"a": 1, "b.c": -1}, None, ["a", "b"]),
        ({"a": "hashed"}, {"$and": [{"k": "web"}, {"$or": [{"m.n": 1}]}]}, ["a", "k", "m"]),
        ({"$**": 1}, None, None),  # wildcard
        ({"_fts": "text", "_ftsx": 1}, None, None),  # text
        ({"loc": "2dsphere"}, None, None),  # geo
        ({"a": True}, None, None),
        ({"a": 1}, {"$expr": {"$gt": ["$a", 1]}}, None),  # an operator it cannot read
    ],
)
def test_what_it_cannot_judge_counts_as_changed(
    spec: dict[str, Any], partial: Any, judged: list[str] | None
) -> None:
    index = ("i", spec, False, False)
    same = {"a": 1, "b": {"c": 2}, "k": "web", "m": {"n": 1}, "loc": [0, 0], "_fts": "x"}
    assert embedded_index_updates.may_differ(index, same, dict(same), partial) is (judged is None)
    if judged is not None:
        for field in judged:  # any field it reads, changed, is a change
            assert embedded_index_updates.may_differ(index, same, {**same, field: 0}, partial)
        assert not embedded_index_updates.may_differ(index, same, {**same, "z": 0}, partial)
