"""The embedded server's catalog reads, cached: index definitions, collection options and
profiling levels, which SecantusDB reads from its own tables on every command.

Under ``make load`` those reads were about 30 % of the server's CPU (py-spy, GIL samples:
``Storage._iter_indexes`` 19 %, ``get_collection_options`` 8 %, ``get_profile`` 4 %), and
each took the server's one storage lock. They change only through a command that changes
the catalog, so each entry carries the catalog *generation* it was read at:

* every command that is not plain reading and writing of documents (``createIndexes``,
  ``drop``, ``dropDatabase``, ``collMod``, ``renameCollection``, ``profile``, an
  aggregation with ``$out`` or ``$merge``, anything unknown) moves the generation on before
  and after it runs, so an entry read meanwhile is never used;
* such a command inside a transaction moves it on again when the transaction commits or
  aborts (its change becomes visible only then);
* a write that flags an index *multikey* (the first array in an indexed field: SecantusDB
  writes the flag into the index's catalog entry, no catalog command involved) moves it on
  too — a stale flag made the server walk a multikey index as a sort and lose documents;
* a miss reads the *committed* catalog (``Storage._committed_read_scope``), never a
  transaction's snapshot, and keeps only what cannot change without such a command: the
  options of a collection once it has its uuid (a collection created implicitly by an
  insert gets it later), and index lists that are not empty.

Index definitions are kept decoded, once per generation (decoding every definition of a
collection several times per statement was 6 % of the server's time under ``make load``):
the storage's own readers of ``_iter_indexes`` only read them or copy what they keep (each of
its call sites was checked), and ``list_indexes``, the one way they leave the storage
(``listIndexes``, ``$indexStats`` and the like), hands out copies. Collection options are
handed out as copies too (``gateway/embedded_copy.py``), so no caller shares a mutable
dictionary with the cache.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import bson
from secantus import aggregate, server, storage
from wiredtiger import WT_NOTFOUND  # type: ignore[import-untyped]

from gateway.embedded_copy import copy_document

DOCUMENT_COMMANDS: frozenset[str] = frozenset(
    {
        "find",
        "getMore",
        "killCursors",
        "insert",
        "update",
        "delete",
        "bulkWrite",  # MongoDB 8's, over several collections: inserts, updates and deletes
        "findAndModify",
        "findandmodify",
        "aggregate",
        "count",
        "distinct",
        "commitTransaction",
        "abortTransaction",
        "endSessions",
        "killSessions",
        "startSession",
        "refreshSessions",
        "hello",
        "isMaster",
        "ismaster",
        "ping",
        "buildInfo",
        "buildinfo",
        "listIndexes",
        "listCollections",
        "listDatabases",
        "explain",
        "serverStatus",
        "dbStats",
        "collStats",
        "getParameter",
        "connectionStatus",
        "getCmdLineOpts",
        "hostInfo",
        "whatsmyuri",
        "saslStart",
        "saslContinue",
    }
)
# checked: reads the key patterns of the listed indexes, keeps nothing
READ_ONLY_LISTER = aggregate._foreign_field_has_simple_index.__code__
TRANSACTION_ENDS: frozenset[str] = frozenset({"commitTransaction", "abortTransaction"})

Key = tuple[str, ...]
IndexRow = tuple[str, dict[str, Any], dict[str, Any]]  # (name, key spec, options)


class CatalogCache:
    """Entries by key, each valid while the generation it was read at is current."""

    def __init__(self) -> None:
        self.generation = 0
        self._entries: dict[Key, tuple[int, Any]] = {}
        self._lock = threading.Lock()
        # lsids whose open transaction ran a catalog command or wrote the catalog itself
        self._ddl_sessions: set[Any] = set()
        self._statement = threading.local()  # .lsid: the running statement's transaction

    def catalog_written(self) -> None:
        """The running statement wrote the catalog itself (a multikey flag): entries read
        before are stale now and, inside a transaction, again when it ends (the write is
        visible to other readers only from its commit)."""
        lsid = getattr(self._statement, "lsid", None)
        if lsid is not None:
            self._ddl_sessions.add(lsid)
        self.bump()

    def bump(self) -> None:
        with self._lock:
            self.generation += 1

    def lookup(self, key: Key, read: Callable[[], Any], keep: Callable[[Any], bool]) -> Any:
        entry = self._entries.get(key)
        if entry is not None and entry[0] == self.generation:
            return entry[1]
        generation = self.generation  # before reading: a change meanwhile makes it stale
        value = read()
        if keep(value):
            self._entries[key] = (generation, value)
        return value

    def dispatch(self, original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """``original`` (the server's command dispatch), moving the generation on around
        every command that may change the catalog."""

        def dispatch(body: Any, ctx: Any) -> Any:
            name = next(iter(body), "")
            # the transaction a statement runs in, for catalog writes made by the statement
            in_transaction = _lsid(body) if "autocommit" in body else None
            self._statement.lsid = in_transaction
            if changes_catalog(name, body):
                if "autocommit" in body:
                    self._ddl_sessions.add(in_transaction)
                self.bump()
                try:
                    return original(body, ctx)
                finally:
                    self.bump()
            if name in TRANSACTION_ENDS and _lsid(body) in self._ddl_sessions:
                try:
                    return original(body, ctx)
                finally:
                    self._ddl_sessions.discard(_lsid(body))
                    self.bump()
            return original(body, ctx)

        return dispatch


def changes_catalog(name: str, body: Any) -> bool:
    if name not in DOCUMENT_COMMANDS:
        return True
    if name == "aggregate":
        stages = body.get("pipeline") or []
        return any(isinstance(s, dict) and ("$out" in s or "$merge" in s) for s in stages)
    return False


def _lsid(body: Any) -> Any:
    lsid = body.get("lsid")
    return lsid.get("id") if isinstance(lsid, dict) else None


def install(cache: CatalogCache) -> None:
    """Route the server's catalog reads and its command dispatch through ``cache``."""
    store = storage.Storage
    store._iter_indexes = _cached_index_lists(cache)
    store.list_indexes = _copied_index_lists(store.list_indexes)
    store.get_collection_options = _cached_options(cache, store.get_collection_options)
    store.get_profile = _cached_profiles(cache, store.get_profile)
    store._maybe_mark_multikey = _multikey_flags_noticed(cache, store._maybe_mark_multikey)
    server.dispatch = cache.dispatch(server.dispatch)


def _cached_index_lists(cache: CatalogCache) -> Callable[[Any, str, str], Iterator[IndexRow]]:
    def iter_indexes(self: Any, db: str, coll: str) -> Iterator[IndexRow]:
        rows = cache.lookup(("indexes", db, coll), lambda: _decoded(self, db, coll), bool)
        return iter(rows)

    return iter_indexes


def _copied_index_lists(original: Callable[..., Any]) -> Callable[[Any, str, str], Any]:
    def list_indexes(self: Any, db: str, coll: str) -> list[dict[str, Any]]:
        # the one way index definitions leave the storage (listIndexes, $indexStats, …):
        # as copies, so no reply or pipeline shares a dictionary with the cache; but for
        # $lookup's check for an index on the foreign field, every aggregation with a
        # $lookup, which only reads them
        listed: list[dict[str, Any]] = original(self, db, coll)
        if sys._getframe(1).f_code is READ_ONLY_LISTER:
            return listed
        return [copy_document(entry) for entry in listed]

    return list_indexes


def _cached_options(cache: CatalogCache, original: Callable[..., Any]) -> Callable[..., Any]:
    def get_collection_options(self: Any, db: str, coll: str) -> dict[str, Any]:
        def read() -> Any:
            return _committed(self, original, db, coll)

        options = cache.lookup(("options", db, coll), read, lambda o: "uuid" in o)
        copied: dict[str, Any] = copy_document(options)
        return copied

    return get_collection_options


def _cached_profiles(cache: CatalogCache, original: Callable[..., Any]) -> Callable[..., Any]:
    def get_profile(self: Any, db: str) -> dict[str, Any]:
        profile = cache.lookup(("profile", db), lambda: _committed(self, original, db), _always)
        return dict(profile)

    return get_profile


def _multikey_flags_noticed(
    cache: CatalogCache, original: Callable[..., Any]
) -> Callable[..., Any]:
    def mark_multikey(
        self: Any,
        db: str,
        coll: str,
        doc: Any,
        indexes: list[tuple[str, dict[str, Any], bool, bool]],
        already_multikey: set[str],
    ) -> set[str]:
        # a write putting an array in an indexed field flags the index multikey in the
        # catalog table itself; the set grows by the names flagged now or found flagged
        # there but not in the cached index list: either way the cached list is stale
        # (it only ever adds names: a grown set is a stale list, no copy needed to tell)
        before = len(already_multikey)
        found: set[str] = original(self, db, coll, doc, indexes, already_multikey)
        if len(found) > before:
            cache.catalog_written()
        return found

    return mark_multikey


def _committed(store: Any, read: Callable[..., Any], *args: Any) -> Any:
    """``read(store, *args)`` of the committed catalog, never a transaction's snapshot."""
    with store._committed_read_scope():
        return read(store, *args)


def _always(_: object) -> bool:
    return True


def _decoded(store: Any, db: str, coll: str) -> list[IndexRow]:
    """The collection's index definitions, decoded once per catalog generation."""
    rows: list[IndexRow] = []
    for name, blob in _index_rows(store, db, coll):
        payload = bson.decode(blob)
        rows.append((name, payload.get("key", {}), payload.get("options", {})))
    return rows


def _index_rows(store: Any, db: str, coll: str) -> list[tuple[str, bytes]]:
    """The collection's index definitions as committed: (name, stored BSON) in name order
    (``Storage._iter_indexes``' walk, on a session of its own)."""
    rows: list[tuple[str, bytes]] = []
    with store._committed_read_scope():
        cursor = store._cursor(storage._IDX_TABLE)
        cursor.set_key(db, coll, "")
        found = cursor.search_near()
        if found == WT_NOTFOUND or (found < 0 and cursor.next() != 0):
            return rows
        while True:
            key = cursor.get_key()
            if key[0] != db or key[1] != coll:
                return rows
            rows.append((key[2], bytes(cursor.get_value())))
            if cursor.next() != 0:
                return rows
