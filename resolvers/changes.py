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
identifier key (``"PHONE:+1…"``, :func:`resolvers.identifiers.key`). On a hot path,
:func:`reserve_ahead` starts reserving the positions while the write sends its own commands
(``record_changes(…, ahead=task)``); :func:`claimed_changes` turns ``claims.reclaim``'s
result into IDENTIFIER_CLAIMED changes.

Order. Each change takes the next position (``seq``) of its org from a per-org counter,
reserved by one atomic increment *outside* the transaction (a counter written inside every
transaction would make every two overlapping writes of an org conflict). Positions therefore
follow real time: a write that commits before another starts has the lower position, and of
two writes touching one document the later one conflicts, retries and reserves anew.
A position whose transaction is still open is a *hole* a reader must not pass; the reader
stops before it (:func:`stable_until`) until it fills, is voided (an aborted attempt marks
its positions void, see :func:`void_reserved`), or is *settled*: a later position was
reserved longer ago than a transaction can live (``change_settle_seconds``), or the org's
counter was quiet that long before a later reservation, so it can never fill.

Reads name both ends of every position range (``org_seq``): the embedded server reads a
whole index range before it applies a limit.

Retention: each change expires ``SCV_CHANGE_RETENTION_DAYS`` after it was recorded (a TTL
index removes it; reads never show an expired one; stretches of removed positions are
stepped over).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, PyMongoError

from resolvers import tasks
from resolvers.clock import now
from resolvers.documents import ChangeDoc, IdentifierValueDoc
from resolvers.errors import BadUserInput
from resolvers.identifiers import split_key
from resolvers.pagination import check_first, decode_cursor, encode_cursor
from resolvers.store import ABORT_HOOKS, Store

CURSOR_KIND: Final = "chg"
MAX_FIRST: Final = 500
SCAN_WINDOW: Final = 1000  # positions examined for holes per read
MAX_EMPTY_WINDOWS: Final = 20  # windows with no position stepped over per read
KINDS_SPAN: Final = 500  # positions a page filtered by kinds reads
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
    """What an attempt's session reserved: positions, and reservations still under way."""

    positions: list[tuple[str, int]] = field(default_factory=list)
    ahead: list[asyncio.Task[int]] = field(default_factory=list)


def _reserved_of(session: AsyncClientSession) -> _Reserved:
    reserved = getattr(session, _RESERVED_ATTR, None)
    if reserved is None:
        reserved = _Reserved()
        setattr(session, _RESERVED_ATTR, reserved)
    return cast(_Reserved, reserved)


def reserve_ahead(
    store: Store, session: AsyncClientSession, org: str, count: int
) -> asyncio.Task[int] | None:
    """Start reserving ``count`` positions now, while the write sends its own commands (the
    round trip overlaps theirs); hand the task to :func:`record_changes` (``ahead=``), which
    then records exactly ``count`` changes. Aborted, the attempt voids them as usual."""
    if not store.config.change_feed:
        return None

    async def reserve() -> int:
        last = await _reserve(store, org, count)
        _reserved_of(session).positions += [(org, seq) for seq in range(last - count + 1, last + 1)]
        return last

    task = asyncio.ensure_future(reserve())
    _reserved_of(session).ahead.append(task)
    return task


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
    ahead: asyncio.Task[int] | None = None,
) -> list[ChangeDoc]:
    """Record ``changes`` (in this order) inside the write's transaction (``session``);
    ``ahead``: their positions, reserved by :func:`reserve_ahead`."""
    if not changes or not store.config.change_feed:
        return []
    if not session.in_transaction:
        raise RuntimeError("changes are recorded inside the write's transaction")
    moment = now()
    if ahead is None:
        last = await _reserve(store, org, len(changes))
        _reserved_of(session).positions += [
            (org, seq) for seq in range(last - len(changes) + 1, last + 1)
        ]
    else:
        last = await ahead
    first = last - len(changes) + 1
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


def claimed_changes(made: Sequence[tuple[str, str]]) -> list[NewChange]:
    """IDENTIFIER_CLAIMED for each (key, contact id) claim made (``claims.reclaim``'s)."""
    return [NewChange(ChangeKind.IDENTIFIER_CLAIMED, holder, identifier=k) for k, holder in made]


async def _reserve(store: Store, org: str, count: int) -> int:
    """Reserve ``count`` positions of the org's feed; returns the last one.

    Two first writes of an org race to create its counter: the loser's upsert may answer
    nothing (the embedded server) or a duplicate key (MongoDB); the counter exists then, so
    the increment is simply sent again.

    The counter keeps when its latest two positions were reserved (``stamps``). When the one
    before this reservation is longer ago than a transaction can live, every position up to
    it is settled (``settled``): a reader need not wait on a hole among them (an org quiet
    for days, whose last changes expired, shows its next change at once)."""
    moment = now()
    for _ in range(_RESERVE_ATTEMPTS):
        with contextlib.suppress(DuplicateKeyError):
            counter = await store.change_counters.find_one_and_update(
                {"_id": org},
                {"$inc": {"seq": count}, "$push": {"stamps": {"$each": [moment], "$slice": -2}}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            if counter is not None:
                last = int(counter["seq"])
                await _settle_if_quiet(store, org, counter.get("stamps", []), last - count, moment)
                return last
    raise RuntimeError("the change counter was not written")


async def _settle_if_quiet(
    store: Store, org: str, stamps: list[datetime], before: int, moment: datetime
) -> None:
    quiet = timedelta(seconds=store.config.change_settle_seconds)
    if len(stamps) >= 2 and stamps[-2] < moment - quiet:
        await store.change_counters.update_one({"_id": org}, {"$max": {"settled": before}})


async def void_reserved(store: Store, session: AsyncClientSession) -> None:
    """After an aborted attempt: mark the positions it reserved void, so readers need not
    wait for them to settle. Best effort (a position left open settles in time); a position
    whose change did commit keeps it (the unique ``{org, seq}`` index refuses the void)."""
    reserved = getattr(session, _RESERVED_ATTR, None)
    if reserved is None:
        return
    # their positions are the attempt's too; a failed or cancelled one is part of its failure
    await tasks.ended(reserved.ahead, ignoring=(PyMongoError,))
    reserved.ahead = []
    if not reserved.positions:
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


async def stable_until(store: Store, org: str, after: int) -> tuple[int, int, bool]:
    """Where the org's feed after ``after`` holds anything (positions up to it are gone),
    the highest position up to which it is final (every position in between is recorded,
    voided, or settled: it can never fill any more), and whether more may be final past it.

    Every read names both ends of its position range: the embedded server reads a whole
    index range before it applies a limit. A window holding no position at all (expired and
    gone) is stepped over, at most ``MAX_EMPTY_WINDOWS`` per call."""
    settled_before = now() - timedelta(seconds=store.config.change_settle_seconds)
    counter = await store.change_counters.find_one({"_id": org}) or {}
    reserved, settled = int(counter.get("seq", 0)), int(counter.get("settled", 0))
    start = after
    for _ in range(MAX_EMPTY_WINDOWS):
        rows = await _window(store, org, start, start + SCAN_WINDOW, {"_id": 0, "seq": 1, "at": 1})
        if rows:
            break
        if start + SCAN_WINDOW >= reserved:
            return start, start, False  # nothing recorded past it (yet)
        start += SCAN_WINDOW  # never written, or expired and gone: nothing to wait for
    else:
        return start, start, True
    stable = start
    for row in rows:
        hole = row["seq"] != stable + 1
        if hole and row["seq"] - 1 > settled and row["at"] > settled_before:
            break  # a hole before a recent position: its write may still commit
        stable = row["seq"]
    return start, stable, stable == start + SCAN_WINDOW


async def read_changes(
    store: Store, org: str, *, after: int, first: int, kinds: Sequence[str] | None = None
) -> FeedPage:
    """The org's changes of ``kinds`` after position ``after``, oldest first, up to the
    stable point (never past a position whose write may still commit).

    One bounded range of positions: ``first`` + 1 of them, or with ``kinds`` up to
    ``KINDS_SPAN`` (filtered here), so a page may hold fewer than ``first`` changes while
    ``hasNextPage`` is true: read on from its end."""
    check_first(first, MAX_FIRST)
    start, stable, more = await stable_until(store, org, after)
    if stable == start:
        return FeedPage(docs=[], has_next=more, end=start)
    wanted = set(kinds_of(kinds))
    span = first + 1 if len(wanted) == len(ALL_KINDS) else max(first + 1, KINDS_SPAN)
    upper = min(stable, start + span)
    shown = [d for d in _shown(await _window(store, org, start, upper)) if d["kind"] in wanted]
    if len(shown) > first:
        shown = shown[:first]
        return FeedPage(docs=shown, has_next=True, end=shown[-1]["seq"])
    return FeedPage(docs=shown, has_next=upper < stable or more, end=upper)


async def _window(
    store: Store, org: str, after: int, upto: int, projection: dict[str, Any] | None = None
) -> list[ChangeDoc]:
    """The positions in ``(after, upto]``, in order (the ``org_seq`` index, both ends bound)."""
    query = {"org": org, "seq": {"$gt": after, "$lte": upto}}
    return await store.changes.find(query, projection).sort("seq", 1).to_list()


def _shown(docs: list[ChangeDoc]) -> list[ChangeDoc]:
    """Without voided positions and changes that expired (the TTL index lags a minute)."""
    moment = now()
    return [doc for doc in docs if "kind" in doc and doc["expiresAt"] > moment]


async def latest_stable(store: Store, org: str) -> int:
    """A position from which following the feed misses nothing final after it."""
    reserved = await current_reservation(store, org)
    _, stable, _ = await stable_until(store, org, max(0, reserved - SCAN_WINDOW))
    return stable


async def current_reservation(store: Store, org: str) -> int:
    """The org's last reserved position (0: none yet)."""
    counter = await store.change_counters.find_one({"_id": org})
    return int(counter["seq"]) if counter is not None else 0


async def follow(
    store: Store, org: str, kinds: Sequence[str] | None, *, wait_ms: int = 1000
) -> AsyncGenerator[ChangeDoc, None]:
    """Every change of the org from now on, in feed order (the subscription): woken by a
    change stream on inserts into the feed, read through :func:`read_changes`."""
    position = await latest_stable(store, org)
    pipeline = [{"$match": {"operationType": "insert", "fullDocument.org": org}}]
    async with await store.changes_watched.watch(pipeline, max_await_time_ms=wait_ms) as stream:
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
