"""Journeys and BI pulls: merge-set expansion, keyset pages of conversations, summaries.

A journey is every visible conversation linked to any member of a merge set, newest first.
Pages are keyset pages on ``(startedAt, _id)`` descending: a cursor names the last row
returned, so conversations that arrive later (newer, or at the same instant with a larger
id) never shift the pages that follow.

Query shapes are chosen to be exact on MongoDB and fast on the embedded server alike:

- The keyset condition is ``startedAt <= t`` on the server; the rows at exactly ``t`` that
  were already returned are dropped here (the cursor knows how many there were). A top-level
  ``$or`` would be the textbook form, but the embedded server plans no index for it.
- A page filter names only the fields of one compound index, as an equality prefix and one
  trailing operator (the only shape the embedded server plans on an index; one predicate
  more, or a top-level ``$or``, is a collection scan): ``{org, externalContactId, startedAt:
  range}`` for one contact, ``{org, externalContactId: {$in}}`` for a merge set, ``{org,
  startedAt: range}`` for the whole org. The rest (the time range of a set, expiry, channels)
  is checked here on the candidates (``ServerQuery.keep``).
- A pull over a whole org is read in time windows sized from the density seen so far (the
  cursor carries it): the embedded server sorts every candidate of a query before applying
  its limit, so an unbounded ``startedAt <= t`` would cost the whole remaining history per
  page. A page is usually one window: the first page assumes a conversation every five
  minutes, later ones use the spacing of the page before. A short window is followed by one
  sized from the rows it found, an empty one by one eight times wider, and after two empty
  ones the rest of the range is read at once (the tail of a pull). On MongoDB, where the
  limit applies in the index walk, a window is one cheap index range whatever its width.
- Conversations expire ``retention_days`` after they started (the contract's definition),
  so visibility is also a lower bound on ``startedAt``, besides ``expiresAt > now``.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from resolvers import conversation_counts
from resolvers.clock import now, to_db_precision
from resolvers.conversation_counts import RecentDensity
from resolvers.conversations import Channel
from resolvers.documents import ContactDoc, ConversationDoc
from resolvers.errors import BadUserInput
from resolvers.loaders import ContactLink
from resolvers.pagination import (
    Page,
    Total,
    check_first,
    decode_cursor,
    encode_cursor,
    known_total,
)
from resolvers.store import Store, aggregate_rows

JOURNEY_CURSOR = "journey"
CONVERSATIONS_CURSOR = "conversations"
JOURNEY_MAX_FIRST = 1000
CONVERSATIONS_MAX_FIRST = 1000
MAX_CONTACT_IDS = 100

SORT = [("startedAt", -1), ("_id", -1)]
FIRST_SPACING = timedelta(minutes=5)  # assumed gap between conversations before any is seen
MIN_WINDOW = timedelta(seconds=1)
WINDOW_GROWTH = 8
WINDOW_MARGIN = 1.25
# rows a window is sized for beyond a small page's: a window sized from a density holds a
# count that varies (some 5 rows either side of 21), and one command more to make up a
# short window costs more than reading a few dozen rows
WINDOW_SLACK = 30
MAX_WINDOWS = 16
MAX_EMPTY_WINDOWS = 2
MAX_TIES = 1_000_000
ONE_REPLY = 100_000  # batch size for results wanted in one reply (the server caps at 16 MB)

ALWAYS_FETCHED = ("_id", "startedAt", "cid")


def linked_ids(docs: Iterable[ConversationDoc]) -> Iterator[str]:
    """The contact ids the conversations are linked to (unlinked ones skipped)."""
    for doc in docs:
        linked = doc.get("externalContactId")
        if linked:
            yield linked


def projection_for(document_fields: Iterable[str]) -> tuple[str, ...]:
    """A projection of ``document_fields`` plus what keyset pages always read."""
    return tuple(sorted({*ALWAYS_FETCHED, *document_fields}))


@dataclass(frozen=True)
class ConversationFilter:
    """``since`` inclusive, ``until`` exclusive, ``channels`` None for every channel."""

    since: datetime | None = None
    until: datetime | None = None
    channels: frozenset[str] | None = None


def conversation_filter(
    since: datetime | None = None,
    until: datetime | None = None,
    channels: Iterable[str] | None = None,
) -> ConversationFilter:
    if since is not None and until is not None and until < since:
        raise BadUserInput("until is before since")
    wanted: frozenset[str] | None = None
    if channels is not None:
        try:
            wanted = frozenset(str(Channel(c)) for c in channels)
        except ValueError:
            raise BadUserInput("unknown channel") from None
    return ConversationFilter(since=since, until=until, channels=wanted)


@dataclass(frozen=True)
class Position:
    """Where a page ended: its last row, how many rows at that instant were returned so far,
    and the average spacing of the page's rows (sizes the next page's time window)."""

    started_at: datetime
    id: str
    ties: int = 1
    spacing_ms: float = 0.0


def encode_position(kind: str, position: Position) -> str:
    return encode_cursor(
        kind,
        position.started_at,
        position.id,
        str(position.ties),
        f"{position.spacing_ms:.3f}",
    )


def decode_position(kind: str, cursor: str) -> Position:
    """The position of a cursor this server issued for ``kind``; BAD_USER_INPUT otherwise."""
    if not isinstance(cursor, str) or len(cursor) > 1000:
        raise BadUserInput("invalid cursor")
    started_at, doc_id, ties_text, spacing_text = decode_cursor(kind, cursor, 4)
    if not isinstance(started_at, datetime) or not isinstance(doc_id, str):
        raise BadUserInput("invalid cursor")
    if not isinstance(ties_text, str) or not isinstance(spacing_text, str):
        raise BadUserInput("invalid cursor")
    try:
        ties = int(ties_text)
        spacing = float(spacing_text)
    except ValueError:
        raise BadUserInput("invalid cursor") from None
    if not 1 <= ties <= MAX_TIES or not math.isfinite(spacing) or spacing < 0:
        raise BadUserInput("invalid cursor")
    return Position(started_at=started_at, id=doc_id, ties=ties, spacing_ms=spacing)


@dataclass(frozen=True)
class PageRequest:
    """One page of conversations: of a merge set (``members``) or of the whole org (None)."""

    kind: str
    members: tuple[str, ...] | None
    filter: ConversationFilter
    first: int
    after: Position | None = None
    fields: tuple[str, ...] | None = None  # projection; None = whole documents
    # how the latest rows lie (count buckets), sizing a first page's window; none known yet
    density: RecentDensity = field(default_factory=RecentDensity)


def page_request(
    kind: str,
    members: Sequence[str] | None,
    filter: ConversationFilter,
    first: int,
    after: str | None,
    *,
    maximum: int,
    fields: tuple[str, ...] | None = None,
) -> PageRequest:
    """A validated page request: ``first`` within 1..maximum, ``after`` a cursor of ``kind``."""
    check_first(first, maximum)
    position = decode_position(kind, after) if after is not None else None
    return PageRequest(
        kind=kind,
        members=tuple(members) if members is not None else None,
        filter=filter,
        first=first,
        after=position,
        fields=fields,
    )


ConversationPage = Page[ConversationDoc]  # a page of conversations, newest first


# --- time ranges and filters --------------------------------------------------------------


@dataclass(frozen=True)
class TimeRange:
    lower: datetime
    lower_inclusive: bool
    upper: datetime | None
    upper_inclusive: bool

    def ops(self) -> dict[str, datetime]:
        """The range as query operators. An inclusive lower bound is sent as ``$gt`` one
        millisecond earlier (the same set at the database's precision): the embedded server
        drops the rows equal to a ``$gte`` bound on a descending field followed by more
        index fields (secantusdb 0.7.0b3)."""
        ops = {"$gt": self.lower}
        if self.lower_inclusive:
            ops = {"$gt": _minus(to_db_precision(self.lower), timedelta(milliseconds=1))}
        if self.upper is not None:
            ops["$lte" if self.upper_inclusive else "$lt"] = self.upper
        return ops

    def contains(self, moment: datetime) -> bool:
        if moment < self.lower or (moment == self.lower and not self.lower_inclusive):
            return False
        if self.upper is None:
            return True
        return moment < self.upper or (moment == self.upper and self.upper_inclusive)

    @property
    def empty(self) -> bool:
        if self.upper is None:
            return False
        if self.upper == self.lower:
            return not (self.lower_inclusive and self.upper_inclusive)
        return self.upper < self.lower


def time_range(
    store: Store, filter: ConversationFilter, after: Position | None, moment: datetime
) -> TimeRange:
    """Visible (started within the retention period), within since/until, up to the cursor."""
    cutoff = moment - timedelta(days=store.config.retention_days)
    lower, lower_inclusive = cutoff, False
    if filter.since is not None and filter.since > cutoff:
        lower, lower_inclusive = filter.since, True
    upper: datetime | None = None
    upper_inclusive = False
    if filter.until is not None:
        upper = filter.until
    if after is not None and (upper is None or after.started_at < upper):
        upper, upper_inclusive = after.started_at, True
    return TimeRange(lower, lower_inclusive, upper, upper_inclusive)


@dataclass(frozen=True)
class ServerQuery:
    """A filter an index serves exactly (``index``) and what is checked on its candidates
    (the time range, expiry, channels)."""

    index: dict[str, Any]
    span: TimeRange
    moment: datetime
    channels: frozenset[str] | None
    per_channel: bool = False  # read as one index range per channel (``indexes``)

    @property
    def indexes(self) -> list[dict[str, Any]]:
        """The filters sent: ``index``, or one per channel on ``org_channel_page``."""
        if not self.per_channel or self.channels is None:
            return [self.index]
        return [{**self.index, "channel": c} for c in sorted(self.channels)]

    def keep(self, doc: ConversationDoc) -> bool:
        """Visible (the span starts at the retention cutoff; ``expiresAt`` is checked too
        when fetched), of a wanted channel, within the span."""
        expires = doc.get("expiresAt")
        if expires is not None and expires <= self.moment:
            return False
        if self.channels is not None and doc.get("channel") not in self.channels:
            return False
        return self.span.contains(doc["startedAt"])

    @property
    def residual(self) -> dict[str, Any]:
        """``keep`` as a filter, for pipelines (a second ``$match`` after the indexed one)."""
        rest: dict[str, Any] = {"startedAt": self.span.ops(), "expiresAt": {"$gt": self.moment}}
        if self.channels is not None:
            rest["channel"] = {"$in": sorted(self.channels)}
        return rest

    def pipeline(self) -> list[dict[str, Any]]:
        return [{"$match": self.index}, {"$match": self.residual}]


def page_filter(
    org: str,
    members: Sequence[str] | None,
    filter: ConversationFilter,
    span: TimeRange,
    moment: datetime,
) -> ServerQuery:
    """The index-only server filter of a page and the checks left for its candidates.

    A whole-org page of some channels reads each channel's range (``{org, channel,
    startedAt}``) and merges them, rather than reading every channel and dropping most."""
    index: dict[str, Any] = {"org": org}
    if members is None:
        index["startedAt"] = span.ops()
        if filter.channels is not None:
            return ServerQuery(index, span, moment, filter.channels, per_channel=True)
    elif len(members) == 1:
        index["externalContactId"] = members[0]
        index["startedAt"] = span.ops()
    else:
        index["externalContactId"] = {"$in": list(members)}
    return ServerQuery(index=index, span=span, moment=moment, channels=filter.channels)


# A projection is sent only when it keeps a few fields: the embedded server projects each
# document in Python, field by field. Reading a window of 1,250 conversations (18 fields
# each): whole 41.9 ms, 3 fields 36.6, 6 fields 39.9, 8 fields 43.7, 14 fields 55.0 ms.
PROJECTED_FIELDS_MAX = 6


def _projection(fields: tuple[str, ...] | None) -> dict[str, int] | None:
    if fields is None or len(fields) > PROJECTED_FIELDS_MAX:
        return None
    return {name: 1 for name in fields}


def _checked_fields(projection: dict[str, int] | None, query: ServerQuery) -> dict[str, int] | None:
    """``projection`` with what ``query.keep`` checks on each candidate (its channel)."""
    if projection is not None and query.channels is not None:
        return {**projection, "channel": 1}
    return projection


def is_after(doc: ConversationDoc, position: Position | None) -> bool:
    """True when the row comes after the position in page order (newest first)."""
    if position is None:
        return True
    started = doc["startedAt"]
    if started != position.started_at:
        return bool(started < position.started_at)
    return bool(doc["_id"] < position.id)


# --- fetching pages ---------------------------------------------------------------------------


async def _find_after(
    store: Store,
    query: ServerQuery,
    projection: dict[str, int] | None,
    after: Position | None,
    wanted: int,
) -> list[ConversationDoc]:
    """Up to ``wanted`` rows of ``query`` after the position, newest first.

    The server returns the cursor's own instant inclusively, so the limit covers the rows
    already returned at that instant; a tie group bigger than the cursor knew, or rows the
    checks drop, are made up by reading again with a bigger limit.
    """
    limit = wanted + (after.ties if after is not None else 0)
    projection = _checked_fields(projection, query)
    while True:
        replies: list[list[ConversationDoc]] = []
        for index in query.indexes:
            cursor = store.conversations.find(index, projection).sort(SORT).limit(limit)
            replies.append(await cursor.batch_size(limit).to_list())  # one reply: no getMore
        docs = list(heapq.merge(*replies, key=_page_order, reverse=True))
        cut = [reply[-1] for reply in replies if len(reply) >= limit]
        if cut:  # past the last row of a cut-off reply, rows of that reply may be missing
            floor = max(_page_order(d) for d in cut)
            docs = [d for d in docs if _page_order(d) >= floor]
        kept = [d for d in docs if query.keep(d) and is_after(d, after)]
        if len(kept) >= wanted or not cut:
            return kept[:wanted]
        limit += limit - len(kept) + wanted


async def _find_window(
    store: Store,
    query: ServerQuery,
    projection: dict[str, int] | None,
    after: Position | None,
    wanted: int,
) -> list[ConversationDoc]:
    """Up to ``wanted`` rows of a whole-org time window after the position, newest first.

    The window is sized to hold about ``wanted`` rows, so it is read whole and unsorted and
    ordered here: a sorted read has the embedded server sort its candidates in Python (a
    window of 1,250 rows: 49.1 ms sorted and limited, 38.1 ms not). A window holding more
    than ``WINDOW_OVERFLOW`` times the rows it was sized for (a burst), and more than
    ``WINDOW_READ_MIN``, is read sorted and limited instead."""
    cap = max(int(_window_rows(wanted) * WINDOW_OVERFLOW), WINDOW_READ_MIN)
    cap += after.ties if after is not None else 0
    projection = _checked_fields(projection, query)
    docs: list[ConversationDoc] = []
    for index in query.indexes:
        cursor = store.conversations.find(index, projection).limit(cap + 1)
        found = await cursor.batch_size(cap + 1).to_list()  # one reply: no getMore
        if len(found) > cap:
            return await _find_after(store, query, projection, after, wanted)
        docs.extend(d for d in found if query.keep(d) and is_after(d, after))
    docs.sort(key=_page_order, reverse=True)
    return docs[:wanted]


WINDOW_OVERFLOW = 4
# a window of up to this many rows is taken whole whatever it was sized for: ordering them
# here costs less than the server reading them all again, sorted (a burst of 215 rows in a
# window sized for 51 cost a second read of them)
WINDOW_READ_MIN = 2_000


def _page_order(doc: ConversationDoc) -> tuple[datetime, str]:
    return (doc["startedAt"], doc["_id"])


async def fetch_members(
    store: Store, org: str, request: PageRequest, moment: datetime, need: int
) -> list[ConversationDoc]:
    assert request.members is not None
    if not request.members:
        return []
    span = time_range(store, request.filter, request.after, moment)
    if span.empty:
        return []
    query = page_filter(org, request.members, request.filter, span, moment)
    return await _find_after(store, query, _projection(request.fields), request.after, need)


async def _fetch_windowed(
    store: Store, org: str, request: PageRequest, moment: datetime, need: int
) -> list[ConversationDoc]:
    """Rows of the whole org, read in time windows going back until ``need`` are found."""
    span = time_range(store, request.filter, request.after, moment)
    projection = _projection(request.fields)
    after = request.after
    width = FIRST_SPACING * need
    density = RecentDensity(after.spacing_ms) if after is not None else request.density
    spacing = density.spacing_ms
    if spacing > 0:
        width = timedelta(milliseconds=density.window_ms(_window_rows(need)))
    width = max(width, MIN_WINDOW)
    upper, upper_inclusive = span.upper, span.upper_inclusive
    anchor = upper if upper is not None else moment
    collected: list[ConversationDoc] = []
    empty_windows = 0
    for attempt in range(MAX_WINDOWS):
        low = to_db_precision(_minus(anchor, width))  # see resolvers/org_windows._lower_bound
        last = (
            low <= span.lower
            or attempt == MAX_WINDOWS - 1
            or empty_windows == MAX_EMPTY_WINDOWS  # a quiet stretch: read the rest at once
        )
        window = TimeRange(
            lower=span.lower if last else low,
            lower_inclusive=span.lower_inclusive if last else True,
            upper=upper,
            upper_inclusive=upper_inclusive,
        )
        found: list[ConversationDoc] = []
        if not window.empty:
            query = page_filter(org, None, request.filter, window, moment)
            position = after if attempt == 0 else None
            # a window sized from a known density is read whole; the first page's guess sorted
            read = _find_window if spacing > 0 or attempt > 0 else _find_after
            found = await read(store, query, projection, position, need - len(collected))
            collected.extend(found)
        if len(collected) >= need or last:
            break
        if found:
            empty_windows = 0
            seconds = _seconds_per_row(found, low, width) * _window_rows(need - len(collected))
            width = timedelta(seconds=seconds)
        else:
            empty_windows += 1
            width = min(width * WINDOW_GROWTH, MAX_WIDTH)
        width = min(max(width, MIN_WINDOW), MAX_WIDTH)
        upper, upper_inclusive, anchor = low, False, low
    return collected[:need]


MAX_WIDTH = timedelta(days=365 * 1000)


def _seconds_per_row(found: list[ConversationDoc], low: datetime, width: timedelta) -> float:
    """The gap between the rows of a short window (newest first), over the stretch from its
    lower bound to its newest row rather than its whole width: a quiet stretch at its top
    (the night before the day's first calls) made the rest look sparse, and the next window,
    sized from that, held ten times the rows wanted."""
    stretch = (found[0]["startedAt"] - low).total_seconds()
    return (stretch if stretch > 0 else width.total_seconds()) / len(found)


def _window_rows(need: int) -> float:
    """The rows a window for ``need`` more rows is sized to hold."""
    return max(need * WINDOW_MARGIN, need + WINDOW_SLACK)


def _minus(anchor: datetime, width: timedelta) -> datetime:
    """``anchor - width``, stopping at the earliest representable time instead of failing
    (e.g. ``until: "0001-01-01T00:00:00Z"``)."""
    try:
        return anchor - width
    except OverflowError:
        return datetime.min.replace(tzinfo=anchor.tzinfo)


def finish_page(
    request: PageRequest, docs: list[ConversationDoc], total: Total
) -> ConversationPage:
    has_next = len(docs) > request.first
    rows = docs[: request.first]
    spacing = 0.0
    if len(rows) > 1:
        spread = rows[0]["startedAt"] - rows[-1]["startedAt"]
        spacing = spread.total_seconds() * 1000 / (len(rows) - 1)
    cursors: list[str] = []
    after = request.after
    run = after.ties if after is not None else 0
    previous = after.started_at if after is not None else None
    for doc in rows:
        started = doc["startedAt"]
        run = run + 1 if started == previous else 1
        previous = started
        position = Position(started_at=started, id=doc["_id"], ties=run, spacing_ms=spacing)
        cursors.append(encode_position(request.kind, position))
    return ConversationPage(docs=rows, has_next=has_next, cursors=cursors, total=total)


def page_total(store: Store, org: str, request: PageRequest, moment: datetime) -> Total:
    """How to count the whole list the page belongs to (``totalCount``), run only when asked:
    a whole-org list from the conversation count buckets, a merge set's from its
    conversations (an index range of the set)."""
    members = request.members
    if members is not None and not members:
        return known_total(0)
    span = time_range(store, request.filter, None, moment)
    if members is None:

        async def from_buckets() -> int:
            return await conversation_counts.count(
                store,
                org,
                span.lower,
                span.lower_inclusive,
                span.upper,
                span.upper_inclusive,
                request.filter.channels,
            )

        return from_buckets
    query = page_filter(org, members, request.filter, span, moment)

    async def of_the_set() -> int:
        pipeline = [*query.pipeline(), {"$count": "n"}]
        found = await aggregate_rows(store.conversations, pipeline)
        return int(found[0]["n"]) if found else 0

    return of_the_set


async def conversation_page(
    store: Store, org: str, request: PageRequest, *, moment: datetime | None = None
) -> ConversationPage:
    """One page of conversations, newest first, with one cursor per row."""
    moment = moment or now()
    need = request.first + 1
    if request.members is not None:
        docs = await fetch_members(store, org, request, moment, need)
    else:
        docs = await _fetch_windowed(store, org, await _sized(store, org, request), moment, need)
    return finish_page(request, docs, page_total(store, org, request, moment))


async def _sized(store: Store, org: str, request: PageRequest) -> PageRequest:
    """A first whole-org page with the density of the day before its range (the hour count
    buckets, one small read) to size its first window. Guessed instead, the window is as
    likely to hold six times the rows wanted, all of them read and sorted on the embedded
    server (a page of 100 of the benchmark's data set: 910 rows, 30.7 ms)."""
    if request.after is not None or request.density.spacing_ms > 0:
        return request
    filter = request.filter
    density = await conversation_counts.recent_density(
        store, org, filter.until or now(), filter.channels, rows=request.first + 1
    )
    return dataclasses.replace(request, density=density)


async def conversation_pages(
    store: Store, org: str, requests: Sequence[PageRequest]
) -> list[ConversationPage]:
    """Batch function of the "conversations by merge set" DataLoader.

    Merge-set pages of one request (e.g. every contact of a search result with its journey)
    are read with one query over all their members and split here.
    """
    moment = now()
    pages: dict[int, ConversationPage] = {}
    by_set = [(i, r) for i, r in enumerate(requests) if r.members is not None]
    if len(by_set) > 1:
        union = await _fetch_union(store, org, [r for _, r in by_set], moment)
        for (i, request), docs in zip(by_set, union, strict=True):
            pages[i] = finish_page(request, docs, page_total(store, org, request, moment))
    for i, request in enumerate(requests):
        if i not in pages:
            pages[i] = await conversation_page(store, org, request, moment=moment)
    return [pages[i] for i in range(len(requests))]


async def _fetch_union(
    store: Store, org: str, requests: Sequence[PageRequest], moment: datetime
) -> list[list[ConversationDoc]]:
    spans = [time_range(store, r.filter, r.after, moment) for r in requests]
    members = sorted({m for r in requests for m in (r.members or ())})
    lowest = min(spans, key=lambda s: s.lower)
    uppers = [s.upper for s in spans]
    upper = None if any(u is None for u in uppers) else max(u for u in uppers if u is not None)
    union_span = TimeRange(lowest.lower, True, upper, True)
    channel_sets = [r.filter.channels for r in requests]
    channels = (
        None
        if any(c is None for c in channel_sets)
        else frozenset().union(*(c for c in channel_sets if c is not None))
    )
    field_sets = [r.fields for r in requests]
    fields: tuple[str, ...] | None = None
    if all(f is not None for f in field_sets):
        names = {n for f in field_sets if f is not None for n in f}
        fields = tuple(sorted(names | {"externalContactId", "channel"}))
    if not members:
        return [[] for _ in requests]
    query = page_filter(org, members, ConversationFilter(channels=channels), union_span, moment)
    cursor = store.conversations.find(query.index, _projection(fields)).sort(SORT)
    docs = [d for d in await cursor.batch_size(ONE_REPLY).to_list() if query.keep(d)]
    result: list[list[ConversationDoc]] = []
    for request, span in zip(requests, spans, strict=True):
        wanted = set(request.members or ())
        chosen = request.filter.channels
        need = request.first + 1
        rows: list[ConversationDoc] = []
        for doc in docs:
            if doc.get("externalContactId") not in wanted or not span.contains(doc["startedAt"]):
                continue
            if chosen is not None and doc.get("channel") not in chosen:
                continue
            if not is_after(doc, request.after):
                continue
            rows.append(doc)
            if len(rows) == need:
                break
        result.append(rows)
    return result


# --- journeys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class JourneyHead:
    """The canonical contact of a journey and the ids whose conversations it includes."""

    canonical: ContactDoc
    member_ids: tuple[str, ...]


def journey_head(link: ContactLink | None) -> JourneyHead | None:
    """The journey of a contact link (an ancestor's is its canonical's); None when gone."""
    if link is None or link.canonical is None:
        return None
    return JourneyHead(canonical=link.canonical, member_ids=tuple(link.member_ids))


def expand_links(links: Iterable[ContactLink | None]) -> tuple[str, ...]:
    """Every contact id of the merge sets of the linked contacts; unknown ids add nothing."""
    members: dict[str, None] = {}
    for link in links:
        if link is not None:
            members.update(dict.fromkeys(link.member_ids))
    return tuple(members)


def check_contact_ids(contact_ids: Sequence[str]) -> list[str]:
    if len(contact_ids) > MAX_CONTACT_IDS:
        raise BadUserInput(f"at most {MAX_CONTACT_IDS} contactIds")
    return [str(i) for i in contact_ids]


@dataclass(frozen=True)
class JourneySummary:
    count: int = 0
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    channels: tuple[str, ...] = ()


async def journey_summaries(
    store: Store, org: str, member_sets: Sequence[tuple[str, ...]]
) -> list[JourneySummary]:
    """Count, first/last seen and channels of each merge set's visible conversations.

    One aggregate for every set of the batch, grouped by contact and channel, combined here.
    """
    members = sorted({m for members in member_sets for m in members})
    if not members:
        return [JourneySummary() for _ in member_sets]
    query = summary_query(store, org, members, now())
    pipeline: list[dict[str, Any]] = [*query.pipeline(), SUMMARY_GROUP]
    groups = await aggregate_rows(store.conversations, pipeline, batchSize=ONE_REPLY)
    return summaries_of(groups, member_sets)


# a merge set's visible conversations grouped by contact and channel (summaries_of combines
# the groups of each set's members)
SUMMARY_GROUP: dict[str, Any] = {
    "$group": {
        "_id": {"contact": "$externalContactId", "channel": "$channel"},
        "count": {"$sum": 1},
        "first": {"$min": "$startedAt"},
        "last": {"$max": "$startedAt"},
    }
}


def summary_query(store: Store, org: str, members: Sequence[str], moment: datetime) -> ServerQuery:
    """The visible conversations of ``members`` (every channel, the whole retention period)."""
    span = time_range(store, ConversationFilter(), None, moment)
    return page_filter(org, members, ConversationFilter(), span, moment)


def summaries_of(
    groups: list[dict[str, Any]], member_sets: Sequence[tuple[str, ...]]
) -> list[JourneySummary]:
    """Each member set's summary from the ``SUMMARY_GROUP`` rows of its members."""
    by_contact: dict[str, list[dict[str, Any]]] = {}  # $group rows
    for group in groups:
        by_contact.setdefault(group["_id"]["contact"], []).append(group)
    order = {str(c): n for n, c in enumerate(Channel)}
    result: list[JourneySummary] = []
    for member_set in member_sets:
        rows = [g for m in dict.fromkeys(member_set) for g in by_contact.get(m, [])]
        if not rows:
            result.append(JourneySummary())
            continue
        channels = sorted({g["_id"]["channel"] for g in rows}, key=lambda c: order.get(c, 99))
        result.append(
            JourneySummary(
                count=sum(g["count"] for g in rows),
                first_seen_at=min(g["first"] for g in rows),
                last_seen_at=max(g["last"] for g in rows),
                channels=tuple(channels),
            )
        )
    return result
