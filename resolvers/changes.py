"""The change feed: every write records what it changed, atomically with it, in order per org.

Recording (the API every write uses)::

    async def work(session):
        ...  # the write, in Store.in_transaction
        await record_change(store, session, org=org, kind=ChangeKind.CONTACT_UPDATED,
                            by=principal.sub, contact_id=contact_id)

``record_change`` (and :func:`record_changes` for several at once) must be called with the
write's transaction session, preferably as the work's last step: the change document is
inserted in the same transaction, so no change exists without its write and no committed
write lacks its change. ``contact_ids`` defaults to ``[contact_id]``; ``identifier`` is an
identifier key (``"PHONE:+1…"``, :func:`resolvers.identifiers.key`).

Order. Each change takes the next position (``seq``) of its org from a per-org counter,
reserved by one atomic increment *outside* the transaction (a counter written inside every
transaction would make every two overlapping writes of an org conflict). Positions therefore
follow real time: a write that commits before another starts has the lower position, and of
two writes touching one document the later one conflicts, retries and reserves anew.
A position whose transaction is still open is a *hole* a reader must not pass; the reader
stops before it (:func:`stable_until`) until it fills, is voided (an aborted attempt marks
its positions void, see :func:`void_reserved`), or is *settled*: a later position was
reserved longer ago than a transaction can live (``settle_seconds``), so it can never fill.

Retention: each change expires ``SCV_CHANGE_RETENTION_DAYS`` after it was recorded (a TTL
index removes it; reads never show an expired one).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, PyMongoError

from resolvers.clock import now
from resolvers.documents import ChangeDoc, IdentifierValueDoc
from resolvers.errors import BadUserInput
from resolvers.identifiers import split_key
from resolvers.pagination import check_first, decode_cursor, encode_cursor
from resolvers.store import ABORT_HOOKS, Store

CURSOR_KIND: Final = "chg"
MAX_FIRST: Final = 500
SCAN_WINDOW: Final = 1000  # positions examined for holes per read
_RESERVED_ATTR: Final = "_scv_reserved_changes"
_RESERVE_ATTEMPTS: Final = 3


class ChangeKind(enum.StrEnum):
    CONTACT_CREATED = "CONTACT_CREATED"
    CONTACT_UPDATED = "CONTACT_UPDATED"
    CONTACT_DELETED = "CONTACT_DELETED"
    CONTACT_PROMOTED = "CONTACT_PROMOTED"
    CONTACTS_MERGED = "CONTACTS_MERGED"
    CONTACTS_UNMERGED = "CONTACTS_UNMERGED"
    IDENTIFIER_CLAIMED = "IDENTIFIER_CLAIMED"
    IDENTIFIER_RELEASED = "IDENTIFIER_RELEASED"
    CONVERSATION_LINKED = "CONVERSATION_LINKED"
    CONVERSATION_UNLINKED = "CONVERSATION_UNLINKED"
    CONTACT_ERASED = "CONTACT_ERASED"


ALL_KINDS: Final = tuple(str(k) for k in ChangeKind)


@dataclass(frozen=True)
class NewChange:
    """A change a write is about to record."""

    kind: ChangeKind
    contact_id: str
    contact_ids: Sequence[str] = ()
    conversation_id: str | None = None
    identifier: str | None = None  # an identifier key


@dataclass
class _Reserved:
    positions: list[tuple[str, int]] = field(default_factory=list)


async def record_change(
    store: Store,
    session: AsyncClientSession,
    *,
    org: str,
    kind: ChangeKind,
    by: str,
    contact_id: str,
    contact_ids: Sequence[str] = (),
    conversation_id: str | None = None,
    identifier: str | None = None,
) -> ChangeDoc:
    """Record one change inside the write's transaction (``session``)."""
    change = NewChange(kind, contact_id, contact_ids, conversation_id, identifier)
    return (await record_changes(store, session, org=org, by=by, changes=[change]))[0]


async def record_changes(
    store: Store,
    session: AsyncClientSession,
    *,
    org: str,
    by: str,
    changes: Sequence[NewChange],
) -> list[ChangeDoc]:
    """Record ``changes`` (in this order) inside the write's transaction (``session``)."""
    if not changes:
        return []
    if not session.in_transaction:
        raise RuntimeError("changes are recorded inside the write's transaction")
    moment = now()
    last = await _reserve(store, org, len(changes))
    first = last - len(changes) + 1
    reserved = getattr(session, _RESERVED_ATTR, None)
    if reserved is None:
        reserved = _Reserved()
        setattr(session, _RESERVED_ATTR, reserved)
    reserved.positions += [(org, seq) for seq in range(first, last + 1)]
    expires = moment + timedelta(days=store.config.change_retention_days)
    docs = [
        _change_doc(org, by, seq, moment, expires, change)
        for seq, change in zip(range(first, last + 1), changes, strict=True)
    ]
    await store.changes.insert_many(docs, session=session)
    return docs


def _change_doc(
    org: str, by: str, seq: int, moment: datetime, expires: datetime, change: NewChange
) -> ChangeDoc:
    identifier: IdentifierValueDoc | None = None
    if change.identifier is not None:
        kind, value = split_key(change.identifier)
        identifier = {"type": str(kind), "value": value}
    return {
        "_id": str(ObjectId()),
        "org": org,
        "seq": seq,
        "at": moment,
        "expiresAt": expires,
        "kind": str(change.kind),
        "by": by,
        "contactId": change.contact_id,
        "contactIds": list(dict.fromkeys(change.contact_ids or [change.contact_id])),
        "conversationId": change.conversation_id,
        "identifier": identifier,
    }


async def _reserve(store: Store, org: str, count: int) -> int:
    """Reserve ``count`` positions of the org's feed; returns the last one.

    Two first writes of an org race to create its counter: the loser's upsert may answer
    nothing (the embedded server) or a duplicate key (MongoDB); the counter exists then, so
    the increment is simply sent again."""
    for _ in range(_RESERVE_ATTEMPTS):
        with contextlib.suppress(DuplicateKeyError):
            counter = await store.change_counters.find_one_and_update(
                {"_id": org},
                {"$inc": {"seq": count}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            if counter is not None:
                return int(counter["seq"])
    raise RuntimeError("the change counter was not written")


async def void_reserved(store: Store, session: AsyncClientSession) -> None:
    """After an aborted attempt: mark the positions it reserved void, so readers need not
    wait for them to settle. Best effort (a position left open settles in time); a position
    whose change did commit keeps it (the unique ``{org, seq}`` index refuses the void)."""
    reserved = getattr(session, _RESERVED_ATTR, None)
    if reserved is None or not reserved.positions:
        return
    positions, reserved.positions = reserved.positions, []
    moment = now()
    expires = moment + timedelta(days=store.config.change_retention_days)
    voids: list[ChangeDoc] = [
        {"_id": str(ObjectId()), "org": org, "seq": seq, "at": moment, "expiresAt": expires}
        for org, seq in positions
    ]
    with contextlib.suppress(PyMongoError):
        await store.changes.insert_many(voids, ordered=False)


ABORT_HOOKS.append(void_reserved)


# --- reading --------------------------------------------------------------------------------


@dataclass
class FeedPage:
    """Changes after a position, oldest first; ``end``: the position the next page starts
    after (past the page's last change when changes of other kinds or voids follow it)."""

    docs: list[ChangeDoc]
    has_next: bool
    end: int


def parse_after(after: str | None) -> int:
    """The position a cursor stands for (0: the beginning); BAD_USER_INPUT for a cursor this
    server did not issue."""
    if after is None:
        return 0
    (value,) = decode_cursor(CURSOR_KIND, after, 1)
    if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
        raise BadUserInput("invalid cursor")
    return int(value)


def cursor_of(seq: int) -> str:
    return encode_cursor(CURSOR_KIND, str(seq))


def kinds_of(kinds: Sequence[str] | None) -> list[str]:
    return list(dict.fromkeys(str(k) for k in kinds)) if kinds else list(ALL_KINDS)


async def stable_until(store: Store, org: str, after: int) -> tuple[int, bool]:
    """The highest position up to which the org's feed after ``after`` is final (every
    position in between is recorded, voided, or settled: it can never fill any more), and
    whether more positions may be final past it (the scan window was full)."""
    settled_before = now() - timedelta(seconds=store.config.change_settle_seconds)
    rows = (
        await store.changes.find({"org": org, "seq": {"$gt": after}}, {"_id": 0, "seq": 1, "at": 1})
        .sort("seq", 1)
        .limit(SCAN_WINDOW)
        .to_list()
    )
    stable = after
    for row in rows:
        if row["seq"] != stable + 1 and row["at"] > settled_before:
            break  # a hole before a recent position: its write may still commit
        stable = row["seq"]
    return stable, len(rows) == SCAN_WINDOW and stable == rows[-1]["seq"]


async def read_changes(
    store: Store, org: str, *, after: int, first: int, kinds: Sequence[str] | None = None
) -> FeedPage:
    """The org's changes of ``kinds`` after position ``after``, oldest first, up to the
    stable point (never past a position whose write may still commit)."""
    check_first(first, MAX_FIRST)
    stable, more = await stable_until(store, org, after)
    if stable == after:
        return FeedPage(docs=[], has_next=False, end=after)
    query: dict[str, Any] = {
        "org": org,
        "seq": {"$gt": after, "$lte": stable},
        "kind": {"$in": kinds_of(kinds)},
        "expiresAt": {"$gt": now()},
    }
    docs = await store.changes.find(query).sort("seq", 1).limit(first + 1).to_list()
    if len(docs) > first:
        return FeedPage(docs=docs[:first], has_next=True, end=docs[first - 1]["seq"])
    return FeedPage(docs=docs, has_next=more, end=stable)


async def latest_stable(store: Store, org: str) -> int:
    """A position from which following the feed misses nothing final after it."""
    newest = await store.changes.find_one(
        {"org": org, "seq": {"$gte": 0}}, {"_id": 0, "seq": 1}, sort=[("seq", -1)]
    )
    if newest is None:
        return 0
    stable, _ = await stable_until(store, org, max(0, int(newest["seq"]) - SCAN_WINDOW))
    return stable


async def follow(
    store: Store, org: str, kinds: Sequence[str] | None, *, wait_ms: int = 1000
) -> AsyncIterator[ChangeDoc]:
    """Every change of the org from now on, in feed order (the subscription): woken by a
    change stream on inserts into the feed, read through :func:`read_changes`."""
    position = await latest_stable(store, org)
    pipeline = [{"$match": {"operationType": "insert", "fullDocument.org": org}}]
    async with await store.changes.watch(pipeline, max_await_time_ms=wait_ms) as stream:
        while True:
            page = await read_changes(store, org, after=position, first=MAX_FIRST, kinds=kinds)
            for doc in page.docs:
                yield doc
            position = page.end
            if not page.has_next:
                await stream.try_next()  # the next insert, or the await time (holes settle)


def change_json(doc: ChangeDoc) -> dict[str, Any]:
    """A change as GraphQL's ``Change`` shows it (the webhook bodies' items)."""
    at = doc["at"].astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "id": doc["_id"],
        "kind": doc.get("kind"),
        "at": at,
        "by": doc.get("by"),
        "contactId": doc.get("contactId"),
        "contactIds": doc.get("contactIds", []),
        "conversationId": doc.get("conversationId"),
        "identifier": doc.get("identifier"),
    }
