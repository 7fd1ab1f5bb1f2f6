"""The embedded daemon's TTL sweep deletes what SecantusDB's own sweep deletes, by index.

Both run on storages holding the same documents (expired, live, without the field, with a
value that is not a date, an array holding one past date, under a partial TTL index) and
must leave the same ones; the replacement must not walk a collection's documents (but for a
partial TTL index, which the gateway does not have).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from secantus import storage

from gateway import embedded_expiry

DB = "scv"
NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
PAST = NOW - dt.timedelta(days=1)
FUTURE = NOW + dt.timedelta(days=1)

DOCS: list[dict[str, Any]] = [
    {"_id": "expired", "expiresAt": PAST},
    {"_id": "live", "expiresAt": FUTURE},
    {"_id": "curated", "expiresAt": None},
    {"_id": "no field"},
    {"_id": "not a date", "expiresAt": "2020-01-01"},
    {"_id": "one past date", "expiresAt": [FUTURE, PAST]},
    {"_id": "just expired", "expiresAt": NOW - dt.timedelta(milliseconds=1)},
    {"_id": "at the instant", "expiresAt": NOW},
]
# a TTL index with a delay, and a partial one: only documents of kind "web" expire by it
DELAYED = [{"_id": f"d{n}", "seenAt": NOW - dt.timedelta(hours=n)} for n in range(5)]
PARTIAL = [
    {"_id": "web old", "kind": "web", "at": PAST},
    {"_id": "call old", "kind": "call", "at": PAST},
    {"_id": "web new", "kind": "web", "at": FUTURE},
]


COLLECTIONS: list[tuple[str, list[dict[str, Any]], dict[str, Any], dict[str, Any]]] = [
    ("contacts", DOCS, {"expiresAt": 1}, {"expireAfterSeconds": 0}),
    ("events", DELAYED, {"seenAt": 1}, {"expireAfterSeconds": 2.5 * 3600}),
    (
        "visits",
        PARTIAL,
        {"at": 1},
        {"expireAfterSeconds": 0, "partialFilterExpression": {"kind": "web"}},
    ),
]


def filled(opened: storage.Storage) -> storage.Storage:
    for coll, docs, spec, options in COLLECTIONS:
        opened.create_index(DB, coll, "ttl", spec, options)
        opened.insert(DB, coll, [dict(d) for d in docs])
    return opened


@pytest.fixture
def store(tmp_path: Path) -> Iterator[storage.Storage]:
    opened = filled(storage.Storage(str(tmp_path / "data"), ttl_sweep_seconds=0))
    yield opened
    opened.close()


def left(store: storage.Storage) -> dict[str, set[str]]:
    return {coll: {d["_id"] for d in store._all_docs(DB, coll)} for coll, *_ in COLLECTIONS}


def sweep(store: storage.Storage, prune: Any) -> int:
    return sum(prune(store, DB, coll, now=NOW) for coll, *_ in COLLECTIONS)


def test_the_sweep_deletes_what_secantus_own_sweep_deletes(
    store: storage.Storage, tmp_path: Path
) -> None:
    pruned = sweep(store, embedded_expiry.prune_ttl_by_index)
    scanned = filled(storage.Storage(str(tmp_path / "scan"), ttl_sweep_seconds=0))
    try:
        assert sweep(scanned, embedded_expiry.ORIGINAL_PRUNE_TTL) == pruned
        assert left(store) == left(scanned)
    finally:
        scanned.close()
    assert left(store) == {
        "contacts": {"live", "curated", "no field", "not a date", "at the instant"},
        "events": {"d0", "d1", "d2"},
        "visits": {"call old", "web new"},
    }
    assert pruned == 3 + 2 + 1


def test_the_sweep_never_walks_a_collections_documents(
    store: storage.Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def walked(*_args: object) -> None:
        raise AssertionError("the TTL sweep walked every document")

    monkeypatch.setattr(storage.Storage, "_scan_docs", walked)
    monkeypatch.setattr(storage.Storage, "_scan_docs_natural", walked)
    # (a partial TTL index's filter is read by a scan, as before: the gateway has none)
    pruned = [
        embedded_expiry.prune_ttl_by_index(store, DB, coll, now=NOW)
        for coll in ("contacts", "events")
    ]
    assert pruned == [3, 2]
    monkeypatch.undo()
    assert left(store)["contacts"] == {
        "live",
        "curated",
        "no field",
        "not a date",
        "at the instant",
    }
