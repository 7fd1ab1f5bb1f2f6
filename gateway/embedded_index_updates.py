"""The embedded server's updates rewrite only the index entries whose keys changed.

SecantusDB's update path deletes every index entry of the old document and writes every
entry of the new one, whatever the update touched. A contact has eleven indexes, three of
them over arrays (its identifier keys, name tokens and match keys): renewing its expiry, as
every call of a known caller does, deleted and rewrote a few dozen entries to change one.
Under ``make load`` that index maintenance was about a tenth of the server's time (py-spy,
GIL samples: ``_delete_index_entries`` and ``_write_index_entries`` under
``_update_matching_single_txn``, 5.3 % and 5.0 %). mongod, too, only touches the indexes
whose keys an update changes.

The update path calls ``_delete_index_entries(old)``, writes the document, then calls
``_write_index_entries(new)`` for the same record, with the same index list, in the same
frame. Called from an update, the delete is held back (:data:`_held`) until the write, which
then deletes and writes the entries of the indexes that may differ only
(:func:`may_differ`): an index whose key fields and partial filter fields hold the same
values, of the same types, in the old and new documents has the same entries. Anything this
cannot judge (text, geo and wildcard keys, a partial filter with operators other than
``$and``/``$or`` over fields) counts as changed. Every other caller (inserts, deletes) goes
straight to SecantusDB's own functions.
"""

from __future__ import annotations

import inspect
import sys
import threading
from collections.abc import Mapping
from types import FrameType
from typing import Any, NamedTuple

from secantus import storage as secantus_storage

Index = tuple[str, dict[str, Any], bool, bool]  # (name, key spec, sparse, unique)

ORIGINAL_DELETE = secantus_storage.Storage._delete_index_entries
ORIGINAL_WRITE = secantus_storage.Storage._write_index_entries
UPDATE_FRAMES = frozenset(
    inspect.unwrap(getattr(secantus_storage.Storage, name)).__code__
    for name in ("_update_matching_single_txn", "_update_chunk")
)
_MISSING = object()
_PLAIN_DIRECTIONS = (int, float)


class HeldDelete(NamedTuple):
    """An update's delete of a record's index entries, held back until its write."""

    storage: Any
    db: str
    coll: str
    recordid: int
    old: dict[str, Any]
    frame: FrameType  # the update's call: the write must come from the same one


_held = threading.local()  # .delete: the running thread's HeldDelete, or None


def may_differ(index: Index, old: Mapping[str, Any], new: Mapping[str, Any], partial: Any) -> bool:
    """Whether ``index`` may hold other entries for ``new`` than for ``old``."""
    _name, key_spec, _sparse, _unique = index
    fields = _key_fields(key_spec)
    if fields is None:
        return True
    if partial is not None:
        filtered = _filter_fields(partial)
        if filtered is None:
            return True
        fields = [*fields, *filtered]
    return any(not _same(old.get(f, _MISSING), new.get(f, _MISSING)) for f in fields)


def _key_fields(key_spec: Mapping[str, Any]) -> list[str] | None:
    """The top-level fields an index's keys are read from; None for keys this cannot judge."""
    fields: list[str] = []
    for path, direction in key_spec.items():
        plain = isinstance(direction, _PLAIN_DIRECTIONS) and not isinstance(direction, bool)
        if not isinstance(path, str) or "$" in path or not (plain or direction == "hashed"):
            return None
        fields.append(path.split(".", 1)[0])
    return fields


def _filter_fields(expression: Any) -> list[str] | None:
    """The top-level fields a partial filter reads; None for one this cannot judge."""
    if not isinstance(expression, Mapping):
        return None
    fields: list[str] = []
    for key, value in expression.items():
        if not isinstance(key, str):
            return None
        if key in ("$and", "$or"):
            if not isinstance(value, list):
                return None
            for clause in value:
                inner = _filter_fields(clause)
                if inner is None:
                    return None
                fields += inner
        elif key.startswith("$"):
            return None
        else:
            fields.append(key.split(".", 1)[0])
    return fields


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types, sub-documents with their fields in the same order
    (``True`` is not ``1``, ``1`` is not ``1.0``: each is its own key)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Mapping):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def delete_index_entries(
    self: Any,
    db: str,
    coll: str,
    doc: dict[str, Any],
    indexes: list[Index],
    partials: dict[str, dict[str, Any]] | None = None,
    *,
    recordid: int,
) -> None:
    caller = sys._getframe(1)
    if caller.f_code in UPDATE_FRAMES:
        _held.delete = HeldDelete(self, db, coll, recordid, doc, caller)
        return
    _held.delete = None
    ORIGINAL_DELETE(self, db, coll, doc, indexes, partials, recordid=recordid)


def write_index_entries(
    self: Any,
    db: str,
    coll: str,
    doc: dict[str, Any],
    indexes: list[Index],
    partials: dict[str, dict[str, Any]] | None = None,
    *,
    recordid: int,
) -> None:
    held: HeldDelete | None = getattr(_held, "delete", None)
    _held.delete = None
    if held is None or held.frame is not sys._getframe(1) or held[:4] != (self, db, coll, recordid):
        ORIGINAL_WRITE(self, db, coll, doc, indexes, partials, recordid=recordid)
        return
    if partials is None:
        partials = self._partial_filters(db, coll)
    changed = [ix for ix in indexes if may_differ(ix, held.old, doc, partials.get(ix[0]))]
    ORIGINAL_DELETE(self, db, coll, held.old, changed, partials, recordid=recordid)
    ORIGINAL_WRITE(self, db, coll, doc, changed, partials, recordid=recordid)


def install() -> None:
    secantus_storage.Storage._delete_index_entries = delete_index_entries
    secantus_storage.Storage._write_index_entries = write_index_entries
