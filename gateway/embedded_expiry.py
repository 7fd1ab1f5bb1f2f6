"""The embedded server's TTL sweep, by index instead of by scan.

SecantusDB's background sweeper (every 60 s, like mongod's TTL monitor) calls
``Storage.prune_ttl`` for each collection with a TTL index, and that walked *every*
document of the collection — decoding each one and matching it against the expiry filter —
while holding the storage's one lock. On the benchmark's data set (50,000 conversations,
5,000 contacts and their identifiers, all with ``expiresAt`` TTL indexes) that was a stall
of about a second for every command of every client, once a minute: the 10-member journey
row's p99 of ~1 s in ``make bench`` (its raw side took 882 ms in the same stall when it
landed there), and much of ``make load``'s p99.

:func:`prune_ttl_by_index` deletes the same documents — those whose indexed date is before
``now - expireAfterSeconds``, under the index's partial filter when it has one — with the
server's own ``deleteMany`` path (``Storage.delete_matching``): a range on the TTL index
finds them, so a sweep reads the expired documents only, in chunks that let other commands
run between them, and writes the same oplog entries as any delete. (A partial TTL index's
filter is an ``$and``, which the server reads by a scan, as before; the gateway has none.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from secantus import storage as secantus_storage

ORIGINAL_PRUNE_TTL = secantus_storage.Storage.prune_ttl


def expiry_filters(store: Any, db: str, coll: str, moment: dt.datetime) -> Iterator[dict[str, Any]]:
    """One filter per TTL index of the collection, as mongod reads TTL indexes (and as
    SecantusDB's ``prune_ttl`` did): a single field, never ``_id``, an ascending or
    descending key, a number of seconds ≥ 0; its partial filter, if any, applies."""
    for _name, key_spec, options in store._iter_indexes(db, coll):
        seconds = options.get("expireAfterSeconds")
        if not _is_seconds(seconds) or len(key_spec) != 1:
            continue
        field, direction = next(iter(key_spec.items()))
        if not isinstance(field, str) or field == "_id" or not _is_number(direction):
            continue
        try:
            cutoff = moment - dt.timedelta(seconds=float(seconds))
        except OverflowError:
            continue
        expired: dict[str, Any] = {field: {"$lt": cutoff}}
        partial = options.get("partialFilterExpression")
        if isinstance(partial, Mapping) and partial:
            expired = {"$and": [expired, dict(partial)]}
        yield expired


def prune_ttl_by_index(store: Any, db: str, coll: str, *, now: dt.datetime | None = None) -> int:
    """``Storage.prune_ttl``'s replacement: the collection's expired documents deleted;
    returns how many."""
    moment = now if now is not None else dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    pruned = 0
    for expired in expiry_filters(store, db, coll, moment):
        pruned += int(store.delete_matching(db, coll, expired))
    return pruned


def install() -> None:
    secantus_storage.Storage.prune_ttl = prune_ttl_by_index


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_seconds(value: object) -> bool:
    return _is_number(value) and value == value and float(value) >= 0  # type: ignore[arg-type]
