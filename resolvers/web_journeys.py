"""Web sessions in journeys: a session's events, the session's current claimant, and the
timeline of conversations and sessions with one keyset cursor across both kinds.

The timeline orders both kinds newest first by ``(startedAt, _id)`` (conversations and
sessions both have ObjectId-string ids, so the order is total). A page reads at most
``first`` conversations (the journey's conversation page, through its DataLoader) and
``first + 1`` sessions and merges them; its cursor is ``(startedAt, _id)`` of the last
item, whichever kind it is, and the next page continues both lists after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from resolvers import journeys, liveness
from resolvers.clock import now
from resolvers.documents import ConversationDoc
from resolvers.identifiers import IdentifierType, key
from resolvers.pagination import Page, check_first, known_total
from resolvers.store import Store
from resolvers.web_documents import WebEventDoc, WebSessionDoc
from resolvers.web_sessions import (
    EVENTS_CURSOR,
    EVENTS_MAX_FIRST,
    ONE_REPLY,
    Keyset,
    SessionRequest,
    decode_keyset,
    encode_keyset,
    through,
)

TIMELINE_CURSOR = "timeline"
TIMELINE_MAX_FIRST = 200

# --- a session's events, oldest first ---------------------------------------------------------


@dataclass(frozen=True)
class EventRequest:
    """A page of one session's events (the cookie's events within the session's span)."""

    cookie: str
    started_at: datetime
    ended_at: datetime
    first: int
    after: Keyset | None = None


def event_request(session: WebSessionDoc, first: int, after: str | None) -> EventRequest:
    check_first(first, EVENTS_MAX_FIRST)
    return EventRequest(
        session["cookie"],
        session["startedAt"],
        session["endedAt"],
        first,
        decode_keyset(EVENTS_CURSOR, after),
    )


WebEventPage = Page[WebEventDoc]


def _spans(requests: Sequence[EventRequest]) -> dict[str, tuple[datetime, datetime]]:
    """Per cookie, the time span of its requested sessions."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for r in requests:
        low, high = spans.get(r.cookie, (r.started_at, r.ended_at))
        spans[r.cookie] = (min(low, r.started_at), max(high, r.ended_at))
    return spans


async def event_pages(
    store: Store, org: str, requests: Sequence[EventRequest]
) -> list[WebEventPage]:
    """Batch function of the "events of a session" DataLoader: one read per cookie for every
    session of the batch (``{org, cookie, at: range}``: the embedded server plans no index for
    a ``$in`` of cookies with a time range), split here; ``totalCount`` counts the session's
    visible events. A page of sessions is one journey's cookies (a person's devices), so the
    reads do not grow with the page."""
    moment = now()
    by_cookie: dict[str, list[WebEventDoc]] = defaultdict(list)
    for cookie, (low, high) in _spans(requests).items():
        found = await store.web_events.find(
            {"org": org, "cookie": cookie, "at": {"$gte": low, "$lt": through(high)}},
            batch_size=ONE_REPLY,
        ).to_list()
        by_cookie[cookie] = sorted(
            (e for e in found if not liveness.is_expired(e, moment)),
            key=lambda e: (e["at"], e["_id"]),
        )
    pages: list[WebEventPage] = []
    for request in requests:
        within = [
            e
            for e in by_cookie.get(request.cookie, [])
            if request.started_at <= e["at"] <= request.ended_at
        ]
        after = request.after
        rows = [e for e in within if after is None or (e["at"], e["_id"]) > (after.at, after.id)]
        shown = rows[: request.first]
        pages.append(
            WebEventPage(
                docs=shown,
                has_next=len(rows) > request.first,
                cursors=[encode_keyset(EVENTS_CURSOR, Keyset(e["at"], e["_id"])) for e in shown],
                total=known_total(len(within)),
            )
        )
    return pages


# --- who claims a session's cookie now -----------------------------------------------------------


async def claimants(store: Store, org: str, cookies: Sequence[str]) -> list[str | None]:
    """The id of the contact claiming each cookie now (None when unclaimed): one read."""
    keys = [key(IdentifierType.COOKIE, c) for c in cookies]
    moment = now()
    found = await store.identifiers.find(
        {"org": org, "key": {"$in": sorted(set(keys))}}, {"key": 1, "contactId": 1, "expiresAt": 1}
    ).to_list()
    holders = {c["key"]: c["contactId"] for c in found if not liveness.is_expired(c, moment)}
    return [holders.get(k) for k in keys]


# --- the timeline ------------------------------------------------------------------------------


TimelineItem = ConversationDoc | WebSessionDoc


@dataclass(frozen=True)
class TimelineRequest:
    members: tuple[str, ...]
    first: int
    after: Keyset | None
    since: datetime | None
    until: datetime | None


def timeline_request(
    members: Sequence[str],
    first: int,
    after: str | None,
    since: datetime | None,
    until: datetime | None,
) -> TimelineRequest:
    check_first(first, TIMELINE_MAX_FIRST)
    journeys.conversation_filter(since, until)  # the same checks as conversations
    return TimelineRequest(
        tuple(members), first, decode_keyset(TIMELINE_CURSOR, after), since, until
    )


def conversations_part(
    request: TimelineRequest, fields: tuple[str, ...] | None = None
) -> journeys.PageRequest:
    """The journey's conversation page behind a timeline page (``fields``: a projection)."""
    after = request.after
    return journeys.PageRequest(
        kind=journeys.JOURNEY_CURSOR,
        members=request.members,
        filter=journeys.conversation_filter(request.since, request.until),
        first=request.first,
        after=journeys.Position(after.at, after.id) if after is not None else None,
        fields=fields,
    )


def sessions_part(request: TimelineRequest, cookies: Sequence[str]) -> SessionRequest:
    return SessionRequest(
        tuple(cookies), request.first, request.after, request.since, request.until
    )


def is_session(item: TimelineItem) -> bool:
    return "cookie" in item


def merge(
    request: TimelineRequest,
    conversations: journeys.ConversationPage,
    sessions: list[WebSessionDoc],
) -> Page[TimelineItem]:
    """Both kinds newest first by ``(startedAt, _id)``; one cursor kind for both."""
    items: list[TimelineItem] = [*conversations.docs, *sessions]
    items.sort(key=lambda i: (i["startedAt"], i["_id"]), reverse=True)
    shown = items[: request.first]
    return Page(
        docs=shown,
        has_next=len(items) > request.first or conversations.has_next,
        cursors=[encode_keyset(TIMELINE_CURSOR, Keyset(i["startedAt"], i["_id"])) for i in shown],
    )
