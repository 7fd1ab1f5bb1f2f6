"""Web sessions: a cookie's events less than ``web_session_gap_minutes`` apart, materialised.

Sessions are stored (``web_sessions``) as summaries and kept right per batch of events,
whatever order the events arrive in: new events only ever join sessions (an event between
two sessions within the gap of both bridges them; none splits one), so each new event is a
one-event session joined with the stored sessions of its cookie by the gap rule
(:func:`join`). A summary keeps when its landing, exit and referrer happened, so joining
is exact. That is two commands per batch whatever the number of cookies: the sessions of the
batch's cookies (``{org, cookie: {$in}}``, the one shape the embedded server serves from
the index: a time bound on top would make it a collection scan) and one bulk write, which
also writes each cookie's guard (its latest session) so that concurrent batches of a cookie
conflict; a cookie's first session costs one more update, of its claim. A session belongs
to its cookie, never to a contact: a journey reads the sessions of the cookies its merge
set claims now (:func:`cookies_of_sets`).

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

from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import liveness
from resolvers.clock import now
from resolvers.contacts import new_id
from resolvers.errors import BadUserInput
from resolvers.identifiers import IdentifierType, key
from resolvers.pagination import Page, Total, check_first, decode_cursor, encode_cursor
from resolvers.store import Store, aggregate_rows
from resolvers.web_documents import WebEventDoc, WebSessionDoc

SESSIONS_CURSOR = "webSessions"
EVENTS_CURSOR = "webEvents"
SESSIONS_MAX_FIRST = 200
EVENTS_MAX_FIRST = 500
SORT = [("startedAt", -1), ("_id", -1)]
ONE_REPLY = 100_000
PAGE_VIEW = "PAGE_VIEW"


def through(moment: datetime) -> datetime:
    """An inclusive upper bound sent as ``$lt`` one millisecond later (the same set at the
    database's precision): the embedded server drops the rows equal to a ``$lte`` bound on an
    index field followed by more fields (secantusdb 0.7.0b3)."""
    return moment + timedelta(milliseconds=1)


def gap_of(store: Store) -> timedelta:
    return timedelta(minutes=store.config.web_session_gap_minutes)


# --- the gap rule, on summaries ------------------------------------------------------------


def piece(org: str, event: WebEventDoc) -> WebSessionDoc:
    """A new event as a session of its own (merged with its neighbours by :func:`join`)."""
    url, referrer = event.get("url"), event.get("referrer")
    return {
        "_id": "",
        "org": org,
        "cookie": event["cookie"],
        "startedAt": event["at"],
        "endedAt": event["at"],
        "pageViews": 1 if event["type"] == PAGE_VIEW else 0,
        "eventCount": 1,
        "landingUrl": url,
        "landingAt": event["at"] if url else None,
        "exitUrl": url,
        "exitAt": event["at"] if url else None,
        "referrer": referrer,
        "referrerAt": event["at"] if referrer else None,
        "expiresAt": event["expiresAt"],
    }


Moment = tuple[datetime, str | None]  # when a url or referrer was seen, and the value


def _pick(candidates: list[tuple[datetime | None, str | None]], *, latest: bool) -> Moment | None:
    seen: list[Moment] = [(at, value) for at, value in candidates if at is not None]
    if not seen:
        return None
    return max(seen, key=lambda m: m[0]) if latest else min(seen, key=lambda m: m[0])


def combine(a: WebSessionDoc, b: WebSessionDoc) -> WebSessionDoc:
    """One session of the events of two: exact, as each summary keeps when its landing,
    exit and referrer happened."""
    landing = _pick([(s["landingAt"], s["landingUrl"]) for s in (a, b)], latest=False)
    exit_ = _pick([(s["exitAt"], s["exitUrl"]) for s in (a, b)], latest=True)
    referrer = _pick([(s["referrerAt"], s["referrer"]) for s in (a, b)], latest=False)
    ids = sorted(i for i in (a["_id"], b["_id"]) if i)
    return {
        **a,
        "_id": ids[0] if ids else "",
        "startedAt": min(a["startedAt"], b["startedAt"]),
        "endedAt": max(a["endedAt"], b["endedAt"]),
        "pageViews": a["pageViews"] + b["pageViews"],
        "eventCount": a["eventCount"] + b["eventCount"],
        "landingAt": landing[0] if landing else None,
        "landingUrl": landing[1] if landing else None,
        "exitAt": exit_[0] if exit_ else None,
        "exitUrl": exit_[1] if exit_ else None,
        "referrerAt": referrer[0] if referrer else None,
        "referrer": referrer[1] if referrer else None,
        "expiresAt": max(a["expiresAt"], b["expiresAt"]),
    }


def join(pieces: Iterable[WebSessionDoc], gap: timedelta) -> list[tuple[WebSessionDoc, list[str]]]:
    """Pieces of one cookie (stored sessions and new events) joined by the gap rule: each
    session with the ids of the stored sessions it absorbed. Adding events only ever joins
    sessions (never splits one), so joining summaries is exact."""
    joined: list[tuple[WebSessionDoc, list[str]]] = []
    for part in sorted(pieces, key=lambda p: (p["startedAt"], p["endedAt"])):
        stored = [part["_id"]] if part["_id"] else []
        if joined and part["startedAt"] - joined[-1][0]["endedAt"] < gap:
            current, ids = joined[-1]
            joined[-1] = (combine(current, part), ids + stored)
        else:
            joined.append((part, stored))
    return joined


# --- maintenance, per batch, inside the batch's transaction --------------------------------

SessionWrite = ReplaceOne[WebSessionDoc] | DeleteOne | UpdateOne


async def rebuild(
    store: Store,
    org: str,
    new_events: Sequence[WebEventDoc],
    session: AsyncClientSession | None = None,
) -> None:
    """Join the batch's new (live) events into their cookies' sessions: one read of the
    cookies' sessions, one bulk write (and one update of claims for cookies with no stored
    session yet).

    Two batches of one cookie in flight at once must not both add a session the other
    would have joined: each batch writes its cookie's guard (:func:`_guards`), so the later
    of two conflicts and retries with the other's sessions in view."""
    moment = now()
    live = [e for e in new_events if e["expiresAt"] > moment]
    if not live:
        return
    gap = gap_of(store)
    by_cookie: dict[str, list[WebSessionDoc]] = defaultdict(list)
    for event in live:
        by_cookie[event["cookie"]].append(piece(org, event))
    stored = await store.web_sessions.find(
        {"org": org, "cookie": {"$in": sorted(by_cookie)}}, session=session, batch_size=ONE_REPLY
    ).to_list()
    latest: dict[str, WebSessionDoc] = {}
    for old in stored:
        cookie = old["cookie"]
        if cookie not in latest or _place(old) > _place(latest[cookie]):
            latest[cookie] = old
        pieces = by_cookie[cookie]
        first = min(p["startedAt"] for p in pieces if not p["_id"])
        last = max(p["endedAt"] for p in pieces if not p["_id"])
        if old["endedAt"] > first - gap and old["startedAt"] < last + gap:
            pieces.append(old)
    operations: list[SessionWrite] = []
    for cookie, pieces in by_cookie.items():
        rewrites, written = _rewrites(org, pieces, gap)
        operations.extend(rewrites)
        operations.extend(_guard(org, latest.get(cookie), written))
    if operations:
        await store.web_sessions.bulk_write(operations, ordered=False, session=session)
    unguarded = [key(IdentifierType.COOKIE, c) for c in sorted(by_cookie) if c not in latest]
    if unguarded:  # a cookie's first session: its claim is the guard
        await store.identifiers.update_many(
            {"org": org, "key": {"$in": unguarded}}, {"$inc": {"webSeq": 1}}, session=session
        )


def _place(doc: WebSessionDoc) -> tuple[datetime, str]:
    return doc["startedAt"], doc["_id"]


def _guard(org: str, latest: WebSessionDoc | None, written: set[str]) -> list[SessionWrite]:
    """A cookie's guard is its latest stored session (its claim when it has none): every
    batch of the cookie writes it, so of two batches that read the same sessions the later
    writer fails with a write conflict (its transaction retries). Usually a batch rewrites
    that session anyway; otherwise (a new session after it, late events in an older one) it
    is touched."""
    if latest is None or latest["_id"] in written:
        return []
    return [UpdateOne({"org": org, "_id": latest["_id"]}, {"$inc": {"guard": 1}})]


def _rewrites(
    org: str, pieces: list[WebSessionDoc], gap: timedelta
) -> tuple[list[SessionWrite], set[str]]:
    """The writes that store the joined sessions, and the stored sessions they write: each
    keeps the smallest id it absorbed (a new id when it absorbed none) and the other
    absorbed sessions are deleted."""
    operations: list[SessionWrite] = []
    written: set[str] = set()
    for joined, absorbed in join(pieces, gap):
        if len(absorbed) == 1 and joined["eventCount"] == _count(pieces, absorbed[0]):
            continue  # a stored session nothing joined
        doc: WebSessionDoc = {**joined, "_id": joined["_id"] or new_id(), "org": org}
        operations.append(ReplaceOne({"org": org, "_id": doc["_id"]}, doc, upsert=True))
        operations.extend(DeleteOne({"org": org, "_id": i}) for i in absorbed if i != doc["_id"])
        written.update(absorbed)
    return operations, written


def _count(pieces: list[WebSessionDoc], session_id: str) -> int:
    return next(p["eventCount"] for p in pieces if p["_id"] == session_id)


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


def session_page(
    request: SessionRequest, rows: list[WebSessionDoc], total: Total
) -> WebSessionPage:
    """The page of ``rows`` (up to ``first + 1``, newest first); ``total`` counts the list."""
    shown = rows[: request.first]
    cursors = [encode_keyset(SESSIONS_CURSOR, Keyset(r["startedAt"], r["_id"])) for r in shown]
    return WebSessionPage(
        docs=shown, has_next=len(rows) > request.first, cursors=cursors, total=total
    )


async def session_counts(
    store: Store,
    org: str,
    cookie_sets: Sequence[tuple[str, ...]],
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[int]:
    """How many visible sessions (started within ``since``/``until`` when given) each set of
    cookies has: one aggregate for the batch."""
    cookies = sorted({c for cs in cookie_sets for c in cs})
    if not cookies:
        return [0 for _ in cookie_sets]
    residual: dict[str, Any] = {"expiresAt": {"$gt": now()}}
    started: dict[str, datetime] = {}
    if since is not None:
        started["$gte"] = since
    if until is not None:
        started["$lt"] = until
    if started:
        residual["startedAt"] = started
    pipeline: list[dict[str, Any]] = [
        {"$match": {"org": org, "cookie": {"$in": cookies}}},
        {"$match": residual},
        {"$group": {"_id": "$cookie", "n": {"$sum": 1}}},
    ]
    counted = {
        row["_id"]: int(row["n"])
        for row in await aggregate_rows(store.web_sessions, pipeline, batchSize=ONE_REPLY)
    }
    return [sum(counted.get(c, 0) for c in cs) for cs in cookie_sets]
