"""Web sessions: a cookie's events less than ``web_session_gap_minutes`` apart, materialised.

Sessions are stored (``web_sessions``) and kept right per batch of events, whatever order the
events arrive in: for each cookie of the batch, the stored sessions within the gap of the
batch's events are read with the events they cover, split again by the gap rule and
written back (kept ids where a session survives, merged ones deleted). That is three
commands per batch whatever the number of cookies: the sessions near the batch, the events
they span, one bulk write. A session belongs to its cookie, never to a contact: a journey
reads the sessions of the cookies its merge set claims now (:func:`cookies_of_sets`).

Reads are keyset pages newest first on ``(startedAt, _id)``, like conversations. A session
is visible while its last event is (``expiresAt``: the last event's ``at`` plus the
retention period), checked here too, before the TTL sweep.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import DeleteOne, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import liveness
from resolvers.clock import now
from resolvers.contacts import new_id
from resolvers.errors import BadUserInput
from resolvers.identifiers import IdentifierType
from resolvers.pagination import Page, check_first, decode_cursor, encode_cursor, known_total
from resolvers.store import Store, aggregate_rows
from resolvers.web_documents import WebEventDoc, WebSessionDoc

SESSIONS_CURSOR = "webSessions"
EVENTS_CURSOR = "webEvents"
SESSIONS_MAX_FIRST = 200
EVENTS_MAX_FIRST = 500
SORT = [("startedAt", -1), ("_id", -1)]
ONE_REPLY = 100_000
PAGE_VIEW = "PAGE_VIEW"

SESSION_FIELDS = {"startedAt": 1, "endedAt": 1, "cookie": 1}
EVENT_FIELDS = {"at": 1, "type": 1, "url": 1, "referrer": 1, "expiresAt": 1, "cookie": 1}


def through(moment: datetime) -> datetime:
    """An inclusive upper bound sent as ``$lt`` one millisecond later (the same set at the
    database's precision): the embedded server drops the rows equal to a ``$lte`` bound on an
    index field followed by more fields (secantusdb 0.7.0b3)."""
    return moment + timedelta(milliseconds=1)


def gap_of(store: Store) -> timedelta:
    return timedelta(minutes=store.config.web_session_gap_minutes)


# --- the gap rule --------------------------------------------------------------------------


def split(events: Iterable[WebEventDoc], gap: timedelta) -> list[list[WebEventDoc]]:
    """Events (of one cookie) grouped into sessions: consecutive ones less than ``gap`` apart."""
    groups: list[list[WebEventDoc]] = []
    for event in sorted(events, key=lambda e: (e["at"], e["_id"])):
        if groups and event["at"] - groups[-1][-1]["at"] < gap:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


def summarise(org: str, cookie: str, session_id: str, group: list[WebEventDoc]) -> WebSessionDoc:
    """The stored session of a group of events (time order)."""
    urls = [e["url"] for e in group if e.get("url")]
    referrers = [e["referrer"] for e in group if e.get("referrer")]
    return {
        "_id": session_id,
        "org": org,
        "cookie": cookie,
        "startedAt": group[0]["at"],
        "endedAt": group[-1]["at"],
        "pageViews": sum(1 for e in group if e["type"] == PAGE_VIEW),
        "eventCount": len(group),
        "landingUrl": urls[0] if urls else None,
        "exitUrl": urls[-1] if urls else None,
        "referrer": referrers[0] if referrers else None,
        "expiresAt": max(e["expiresAt"] for e in group),
    }


# --- maintenance, per batch, inside the batch's transaction --------------------------------


@dataclass(frozen=True)
class Span:
    """The earliest and latest event of one cookie in a batch."""

    first: datetime
    last: datetime

    def widen(self, moment: datetime) -> Span:
        return Span(min(self.first, moment), max(self.last, moment))


def spans_of(events: Iterable[tuple[str, datetime]]) -> dict[str, Span]:
    """Per cookie, the span of its events in a batch (``(cookie, at)`` pairs)."""
    spans: dict[str, Span] = {}
    for cookie, at in events:
        span = spans.get(cookie)
        spans[cookie] = span.widen(at) if span is not None else Span(at, at)
    return spans


async def rebuild(
    store: Store, org: str, spans: dict[str, Span], session: AsyncClientSession | None = None
) -> None:
    """Re-split the sessions of each cookie around its new events (already written)."""
    if not spans:
        return
    gap = gap_of(store)
    cookies = sorted(spans)
    earliest = min(s.first for s in spans.values()) - gap
    near = await store.web_sessions.find(
        {"org": org, "cookie": {"$in": cookies}, "endedAt": {"$gte": earliest}},
        SESSION_FIELDS,
        session=session,
    ).to_list()
    affected: dict[str, list[WebSessionDoc]] = defaultdict(list)
    windows = dict(spans)
    for old in near:
        span = spans[old["cookie"]]
        if old["endedAt"] >= span.first - gap and old["startedAt"] <= span.last + gap:
            affected[old["cookie"]].append(old)
            windows[old["cookie"]] = (
                windows[old["cookie"]].widen(old["startedAt"]).widen(old["endedAt"])
            )
    events = await _events_in(store, org, windows, session)
    operations = _rewrites(org, windows, affected, events, gap)
    if operations:
        await store.web_sessions.bulk_write(operations, ordered=False, session=session)


async def _events_in(
    store: Store, org: str, windows: dict[str, Span], session: AsyncClientSession | None
) -> dict[str, list[WebEventDoc]]:
    """The live events of each cookie within its window, in one read."""
    moment = now()
    low = min(w.first for w in windows.values())
    high = max(w.last for w in windows.values())
    found = await store.web_events.find(
        {"org": org, "cookie": {"$in": sorted(windows)}, "at": {"$gte": low, "$lt": through(high)}},
        EVENT_FIELDS,
        session=session,
        batch_size=ONE_REPLY,
    ).to_list()
    by_cookie: dict[str, list[WebEventDoc]] = defaultdict(list)
    for event in found:
        window = windows[event["cookie"]]
        if window.first <= event["at"] <= window.last and not liveness.is_expired(event, moment):
            by_cookie[event["cookie"]].append(event)
    return by_cookie


def _rewrites(
    org: str,
    windows: dict[str, Span],
    affected: dict[str, list[WebSessionDoc]],
    events: dict[str, list[WebEventDoc]],
    gap: timedelta,
) -> list[ReplaceOne[WebSessionDoc] | DeleteOne]:
    """The writes that turn the affected sessions into the sessions of the events: a new
    session keeps the id of the earliest old one it covers."""
    operations: list[ReplaceOne[WebSessionDoc] | DeleteOne] = []
    for cookie in windows:
        old = sorted(affected.get(cookie, []), key=lambda s: (s["startedAt"], s["_id"]))
        kept: set[str] = set()
        for group in split(events.get(cookie, []), gap):
            start, end = group[0]["at"], group[-1]["at"]
            covered = [
                s["_id"]
                for s in old
                if s["_id"] not in kept and s["startedAt"] <= end and s["endedAt"] >= start
            ]
            session_id = covered[0] if covered else new_id()
            kept.add(session_id)
            doc = summarise(org, cookie, session_id, group)
            operations.append(ReplaceOne({"_id": session_id, "org": org}, doc, upsert=True))
        operations.extend(
            DeleteOne({"_id": s["_id"], "org": org}) for s in old if s["_id"] not in kept
        )
    return operations


# --- which cookies a journey shows ---------------------------------------------------------


async def cookies_of_sets(
    store: Store, org: str, member_sets: Sequence[tuple[str, ...]]
) -> list[tuple[str, ...]]:
    """The cookies each merge set claims now (live claims), one read for the whole batch."""
    members = sorted({m for ids in member_sets for m in ids})
    if not members:
        return [() for _ in member_sets]
    moment = now()
    claims = await store.identifiers.find(
        {"org": org, "contactId": {"$in": members}},
        {"type": 1, "value": 1, "contactId": 1, "expiresAt": 1},
        batch_size=ONE_REPLY,
    ).to_list()
    by_contact: dict[str, list[str]] = defaultdict(list)
    for claim in claims:
        if claim["type"] == IdentifierType.COOKIE and not liveness.is_expired(claim, moment):
            by_contact[claim["contactId"]].append(claim["value"])
    return [tuple(sorted({c for m in ids for c in by_contact.get(m, [])})) for ids in member_sets]


# --- pages of sessions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Keyset:
    """A row's place in a newest-first (or oldest-first) page: its time and id."""

    at: datetime
    id: str


def encode_keyset(kind: str, position: Keyset) -> str:
    return encode_cursor(kind, position.at, position.id)


def decode_keyset(kind: str, cursor: str | None) -> Keyset | None:
    """The position of a cursor this server issued for ``kind``; BAD_USER_INPUT otherwise."""
    if cursor is None:
        return None
    if not isinstance(cursor, str) or len(cursor) > 1000:
        raise BadUserInput("invalid cursor")
    at, row_id = decode_cursor(kind, cursor, 2)
    if not isinstance(at, datetime) or not isinstance(row_id, str):
        raise BadUserInput("invalid cursor")
    return Keyset(at, row_id)


@dataclass(frozen=True)
class SessionRequest:
    """One page of the sessions of some cookies, newest first; ``since`` inclusive and
    ``until`` exclusive on ``startedAt``."""

    cookies: tuple[str, ...]
    first: int
    after: Keyset | None = None
    since: datetime | None = None
    until: datetime | None = None


def session_request(
    cookies: Sequence[str],
    first: int,
    after: str | None,
    since: datetime | None,
    until: datetime | None,
    *,
    kind: str = SESSIONS_CURSOR,
    maximum: int = SESSIONS_MAX_FIRST,
) -> SessionRequest:
    check_first(first, maximum)
    if since is not None and until is not None and until < since:
        raise BadUserInput("until is before since")
    return SessionRequest(tuple(cookies), first, decode_keyset(kind, after), since, until)


def _wanted(request: SessionRequest, row: WebSessionDoc, moment: datetime) -> bool:
    started = row["startedAt"]
    if row["expiresAt"] <= moment:
        return False
    if request.since is not None and started < request.since:
        return False
    if request.until is not None and started >= request.until:
        return False
    after = request.after
    return after is None or (started, row["_id"]) < (after.at, after.id)


def _session_filter(org: str, cookies: Sequence[str], request: SessionRequest | None) -> Any:
    """Index-only: one cookie as an equality with a ``startedAt`` range, several as ``$in``."""
    if len(cookies) != 1 or request is None:
        return {"org": org, "cookie": {"$in": list(cookies)}}
    bounds: dict[str, datetime] = {}
    if request.after is not None:
        bounds["$lt"] = through(request.after.at)
    if request.until is not None and ("$lt" not in bounds or request.until <= bounds["$lt"]):
        bounds = {"$lt": request.until}
    query: dict[str, Any] = {"org": org, "cookie": cookies[0]}
    if bounds:
        query["startedAt"] = bounds
    return query


async def session_rows(
    store: Store, org: str, requests: Sequence[SessionRequest]
) -> list[list[WebSessionDoc]]:
    """Up to ``first + 1`` visible sessions per request, newest first: one read for the batch."""
    cookies = sorted({c for r in requests for c in r.cookies})
    if not cookies:
        return [[] for _ in requests]
    moment = now()
    single = requests[0] if len(requests) == 1 else None
    cursor = store.web_sessions.find(_session_filter(org, cookies, single)).sort(SORT)
    rows: list[list[WebSessionDoc]] = [[] for _ in requests]
    wanted = [set(r.cookies) for r in requests]
    open_requests = set(range(len(requests)))
    async for row in cursor.batch_size(ONE_REPLY):
        for i in list(open_requests):
            if row["cookie"] in wanted[i] and _wanted(requests[i], row, moment):
                rows[i].append(row)
                if len(rows[i]) > requests[i].first:
                    open_requests.discard(i)
        if not open_requests:
            break
    await cursor.close()
    return rows


WebSessionPage = Page[WebSessionDoc]


def session_page(request: SessionRequest, rows: list[WebSessionDoc], total: int) -> WebSessionPage:
    shown = rows[: request.first]
    cursors = [encode_keyset(SESSIONS_CURSOR, Keyset(r["startedAt"], r["_id"])) for r in shown]
    return WebSessionPage(
        docs=shown, has_next=len(rows) > request.first, cursors=cursors, total=known_total(total)
    )


async def session_counts(
    store: Store, org: str, cookie_sets: Sequence[tuple[str, ...]]
) -> list[int]:
    """How many visible sessions each set of cookies has: one aggregate for the batch."""
    cookies = sorted({c for cs in cookie_sets for c in cs})
    if not cookies:
        return [0 for _ in cookie_sets]
    pipeline: list[dict[str, Any]] = [
        {"$match": {"org": org, "cookie": {"$in": cookies}}},
        {"$match": {"expiresAt": {"$gt": now()}}},
        {"$group": {"_id": "$cookie", "n": {"$sum": 1}}},
    ]
    counted = {
        row["_id"]: int(row["n"])
        for row in await aggregate_rows(store.web_sessions, pipeline, batchSize=ONE_REPLY)
    }
    return [sum(counted.get(c, 0) for c in cs) for cs in cookie_sets]
