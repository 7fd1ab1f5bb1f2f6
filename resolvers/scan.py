"""scanContacts and the contact export: every canonical contact of some types, in a stable
keyset order, for a full directory sync.

Order: by type (CURATED, then IDENTIFIED, then EPHEMERAL, the types asked for), then by
``_id``. An edit never changes a contact's id, and the only type change is a promotion to
CURATED, which comes first: a contact modified (or promoted) during a scan is therefore met
at most once. Contacts created during a scan have later ids (ObjectIds) and are met when the
scan gets there. Ancestors (``readOnly``) are never listed; expired contacts are dropped
while reading (their TTL sweep may not have run yet).

Reading: the embedded server sorts every match of a query before applying its limit, so a
keyset page over the whole directory would cost the whole directory. Pages therefore read
**windows of the id line** (``{org, readOnly, type, _id: {$gt: lo, $lt: hi}}`` on the
``org_scan`` index), each read whole and unsorted (ordered here, in one reply), sized from
the density of ids seen so far (the id width per contact, exact after each window read,
grown 16-fold after an empty one): a window is sized for a page and an eighth, and a page
ends with its first window that holds anything (a short page says hasNextPage: a window
sized for the few contacts still missing could hold far more than it returns). When a
window would reach the end of the id line, the page reads the rest of the line instead,
and the type ends with it. The density travels in the cursor. The first page of each type
reads its range unbounded (sorted, with a limit) to learn the density, unless an earlier
scan in this process learnt where the type's id line starts and how dense it is: then the
first page is a window with no lower bound (an older id is still read), sized from that.
Ids that are not ObjectIds (24 hex digits) still fall into exactly one window.
``modifiedSince`` reads ``{org, readOnly, type, modifiedAt >= since}`` instead
(``org_scan_modified``): an incremental sync reads only what changed since, in id order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId

from resolvers import liveness
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.documents import ContactDoc
from resolvers.errors import BadUserInput
from resolvers.pagination import Page, check_first, decode_cursor, encode_cursor
from resolvers.store import Store

SCAN_CURSOR = "scan"
SCAN_MAX_FIRST = 200
TYPE_ORDER = (ContactType.CURATED, ContactType.IDENTIFIED, ContactType.EPHEMERAL)
EMPTY_GROWTH = 16
SECOND = (
    1 << 64
)  # ObjectIds of one second (the timestamp is their first 4 of 12 bytes)  # an empty window's successor (the id line is sparse there, e.g. its end)


def scan_types(types: Sequence[ContactType]) -> list[ContactType]:
    if not types:
        raise BadUserInput("types must not be empty")
    return [t for t in TYPE_ORDER if t in types]


@dataclass
class Position:
    """Where a scan stands: the type being read, the last id read of it (None: none yet),
    and the width of the id line per contact seen so far (0: not learnt yet)."""

    kind: ContactType
    last_id: str | None = None
    width: int = 0


def scan_cursor(doc: ContactDoc, width: int) -> str:
    return encode_cursor(SCAN_CURSOR, doc["type"], doc["_id"], f"{width:x}")


def _position(after: str | None, types: list[ContactType]) -> Position:
    if after is None:
        return Position(types[0])
    kind, last_id, width = decode_cursor(SCAN_CURSOR, after, 3)
    if kind not in types or not isinstance(last_id, str) or not isinstance(width, str):
        raise BadUserInput("invalid cursor")
    try:
        return Position(ContactType(str(kind)), last_id, int(width, 16))
    except ValueError:
        raise BadUserInput("invalid cursor") from None


def _as_number(contact_id: str | None) -> int | None:
    """An ObjectId-shaped id as a point on the id line; None for any other id."""
    if contact_id is None or len(contact_id) != 24:
        return None
    try:
        return int(contact_id, 16)
    except ValueError:
        return None


def _line_end() -> int:
    """The first ObjectId of this second: the open window (ids created since, and ids that
    are not ObjectIds) starts here; it holds only what is that new."""
    return int(str(ObjectId.from_datetime(now())), 16)


def scan_filter(
    org: str, kind: ContactType, id_range: dict[str, str], modified_since: datetime | None
) -> dict[str, Any]:
    query: dict[str, Any] = {"org": org, "readOnly": False, "type": str(kind)}
    if modified_since is not None:
        query["modifiedAt"] = {"$gte": modified_since}
    if id_range:
        query["_id"] = id_range
    return query


async def _find(store: Store, query: dict[str, Any], limit: int) -> list[ContactDoc]:
    """One round trip: the whole page in the first reply (not 101 documents and a getMore)."""
    found = store.contacts.find(query, sort=[("_id", 1)], limit=limit, batch_size=limit)
    return await found.to_list()


async def _read_whole(store: Store, query: dict[str, Any], cap: int) -> list[ContactDoc] | None:
    """Every contact of a window, in id order: read unsorted (the embedded server sorts
    every match of a sorted query before it answers) and ordered here; None when the window
    holds ``cap`` or more (then those read are any of them: the caller reads it sorted)."""
    found = await store.contacts.find(query, limit=cap, batch_size=cap).to_list()
    if len(found) >= cap:
        return None
    return sorted(found, key=lambda d: d["_id"])


async def read_type(
    store: Store, org: str, at: Position, need: int, modified_since: datetime | None
) -> tuple[list[ContactDoc], bool]:
    """Up to ``need`` contacts of ``at.kind`` after ``at.last_id`` (``at`` moves on), and
    whether the type has more."""
    after = {"$gt": at.last_id} if at.last_id is not None else {}
    start = _as_number(at.last_id)
    hint = _HINTS.get((store.db.name, org, at.kind)) if at.last_id is None else None
    if modified_since is None and at.width == 0 and hint is not None:
        # the type's first page, sized from an earlier scan: a window with no lower bound
        at.width = hint[1]
        return await _read_windows(store, org, at, need, hint[0] - 1, bounded=False)
    if modified_since is not None or at.width == 0 or start is None:
        docs = await _find(store, scan_filter(org, at.kind, after, modified_since), need + 1)
        _learn(at, docs[:need], start)
        if docs[:need]:
            at.last_id = docs[:need][-1]["_id"]
            if start is None and modified_since is None:
                _remember(store.db.name, org, at.kind, docs[0]["_id"], at.width)
        return docs[:need], len(docs) > need
    return await _read_windows(store, org, at, need, start)


# Where each (database, org, type)'s id line started and how dense it was, as a scan's first
# page learnt it: the next scan's first page reads a window sized from it instead of the
# type's whole range. Only a size: the window has no lower bound (a contact whose id is
# older than the hint is still read), and ids newer than it are read by the next windows.
_HINTS: dict[tuple[str, str, ContactType], tuple[int, int]] = {}
MAX_HINTS = 4096


def _remember(db: str, org: str, kind: ContactType, first_id: str, width: int) -> None:
    number = _as_number(first_id)
    if number is None or width <= 0:
        return
    if len(_HINTS) >= MAX_HINTS:
        _HINTS.clear()
    _HINTS[(db, org, kind)] = (number, width)


def _learn(at: Position, docs: list[ContactDoc], start: int | None) -> None:
    """The id width per contact of a page read unbounded."""
    numbers = [n for n in (_as_number(d["_id"]) for d in docs) if n is not None]
    low = start if start is not None else (numbers[0] - 1 if numbers else None)
    if numbers and low is not None and numbers[-1] > low:
        at.width = max(1, (numbers[-1] - low) // len(numbers))


async def _read_windows(
    store: Store, org: str, at: Position, need: int, start: int, *, bounded: bool = True
) -> tuple[list[ContactDoc], bool]:
    """Windows of the id line from ``start`` (the first one from the line's beginning when
    not ``bounded``), each sized to hold the contacts still needed (with an eighth more:
    rather a page and a bit than a second read)."""
    docs: list[ContactDoc] = []
    end = _line_end()
    low: dict[str, str] = {"$gt": f"{start:024x}"} if bounded else {}
    while len(docs) < need:
        remaining = need - len(docs)
        high = start + max(1, at.width * remaining * 9 // 8)
        if high >= end:  # the rest of the line, the open window (ids of this second on, and
            # any other ids) with it: one read, and the type ends with the page it fills
            docs += await _find(store, scan_filter(org, at.kind, low, None), remaining + 1)
            start = end
            break
        window = scan_filter(org, at.kind, {**low, "$lt": f"{high:024x}"}, None)
        cap = remaining * 3 // 2 + 1  # a window sized from a wrong density holds far more
        whole = await _read_whole(store, window, cap)
        if whole is None:  # it did: the page's contacts of it, sorted, and a denser guess
            docs += await _find(store, window, remaining)
            at.width = max(1, (high - start) // cap)
            break
        docs += whole
        if whole:
            # the whole window was read: its density is known exactly, and the page ends
            # here (full, or short: a window sized for the few contacts still missing
            # could hold far more)
            at.width = max(1, (high - start) // len(whole))
            break
        # an empty window: wider, and at least a second of ids (within a second, ObjectIds
        # are random bytes and a counter: growing through them one step at a time would
        # take a dozen reads of nothing)
        at.width = max(at.width * EMPTY_GROWTH, SECOND // max(need, 1))
        start, low = high, {"$gte": f"{high:024x}"}
    page = docs[:need]
    if page:
        at.last_id = page[-1]["_id"]
    # more unless the open window was read to its end (a page may end just before the end
    # of the type: the next page then reads the rest of the id line and comes back short)
    return page, len(docs) > need or start < end


async def scan_batches(
    store: Store,
    org: str,
    types: Sequence[ContactType],
    modified_since: datetime | None = None,
    *,
    size: int = SCAN_MAX_FIRST,
) -> AsyncIterator[list[ContactDoc]]:
    """Batches of up to ``size`` live canonical contacts, in scan order (the export)."""
    for kind in scan_types(types):
        at = Position(kind)
        more = True
        while more:
            docs, more = await read_type(store, org, at, size, modified_since)
            moment = now()
            live = [d for d in docs if not liveness.is_expired(d, moment)]
            if live:
                yield live


async def scan_contacts(
    store: Store,
    org: str,
    first: int,
    after: str | None,
    types: Sequence[ContactType],
    modified_since: datetime | None = None,
) -> Page[ContactDoc]:
    """One page of the scan: ``first`` contacts (at most 200) after the cursor."""
    check_first(first, SCAN_MAX_FIRST)
    wanted = scan_types(types)
    at = _position(after, wanted)
    docs: list[tuple[ContactDoc, int]] = []
    more = False
    for kind in wanted[wanted.index(at.kind) :]:
        if kind != at.kind:
            at = Position(kind)
        more = await _read_live(store, org, at, first, docs, modified_since)
        if more:  # the type goes on: the page ends here, full or not
            break
    # a later type is not read ahead: it may turn out empty (the next page says so)
    has_next = more or at.kind != wanted[-1]
    return Page(
        docs=[d for d, _ in docs],
        has_next=has_next,
        cursors=[scan_cursor(d, width) for d, width in docs],
        total=_total(store, org, wanted, modified_since),
    )


async def _read_live(
    store: Store,
    org: str,
    at: Position,
    first: int,
    docs: list[tuple[ContactDoc, int]],
    modified_since: datetime | None,
) -> bool:
    """Reads ``at``'s type into ``docs`` (with the window width of each) until something
    live was read or the type ends; whether the type goes on."""
    more = True
    while more and len(docs) < first:
        found, more = await read_type(store, org, at, first - len(docs), modified_since)
        moment = now()
        live = [(d, at.width) for d in found if not liveness.is_expired(d, moment)]
        docs += live
        if live:
            break
    return more


def _total(store: Store, org: str, types: list[ContactType], since: datetime | None) -> Any:
    async def total() -> int:  # only when asked: every matching contact of the types
        counts = [
            await store.contacts.count_documents(scan_filter(org, kind, {}, since))
            for kind in types
        ]
        return sum(counts)

    return total
