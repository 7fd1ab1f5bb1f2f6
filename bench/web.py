"""Web journeys in ``make bench``: ingest throughput, single-event latency, the timeline's
first page, and memory while a batch is processed, each against raw driver work in one run.

- **ingest**: batches of 500 events (50 known cookies) through ``recordWebEvents`` over HTTP,
  interleaved with the raw driver's ``insert_many`` of the same 500 documents into the same
  collection (another org): events per second each way; target ≥ 0.5x the raw rate;
- **single event**: ``recordWebEvents`` of one event, p50 (raw: ``insert_one``);
- **timeline**: the first page (50) of a person with 200 web sessions on three devices and 100
  conversations, over HTTP, against the least driver work giving the same page (the cookies
  the person claims, their newest 51 sessions, the newest 51 conversations, merged); target
  p50 ≤ 1.5x;
- **memory**: ``tracemalloc`` peak while one 500-event batch is recorded in-process, and
  while ten are, one after the other; flat when ten cost no more than one (≤ 1.2x).
"""

from __future__ import annotations

import random
import statistics
import time
import tracemalloc
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from bench.operations import gql
from resolvers import claims, journeys, web_events, web_sessions
from resolvers.clock import now, to_db_precision
from resolvers.contact_fields import ContactType
from resolvers.contacts import new_contact_doc, new_id
from resolvers.documents import ConversationDoc
from resolvers.identifiers import IdentifierType, key
from resolvers.principal import Principal
from resolvers.store import Store
from resolvers.web_documents import WebEventDoc
from schema.scalars import serialize_datetime

RECORD = "mutation($e: [WebEventInput!]!) { recordWebEvents(events: $e) { accepted } }"
TIMELINE = """query($id: ID!) { journey(contactId: $id) { timeline(first: 50) {
  pageInfo { hasNextPage endCursor }
  edges { cursor node {
    ... on Conversation { id channel startedAt }
    ... on WebSession { id startedAt endedAt pageViews eventCount landingUrl } } } } } }"""
BATCH = 500
COOKIES = 50

# (measure, gateway, raw, ratio, target, met)
WebRow = tuple[str, str, str, str, str, bool | None]


@dataclass
class Clock:
    """A moving 'now' for generated events: each batch a little later, inside the past hour."""

    at: datetime

    def events(self, count: int, cookies: int, tag: str) -> list[dict[str, Any]]:
        batch = [
            {
                "cookie": f"bench-{tag}-{n % cookies}",
                "type": "PAGE_VIEW",
                "at": serialize_datetime(self.at + timedelta(milliseconds=10 * n)),
                "url": f"/page/{n % 17}",
                "attributes": [{"key": "campaign", "value": "spring"}],
            }
            for n in range(count)
        ]
        self.at += timedelta(milliseconds=10 * count)
        return batch


def raw_docs(org: str, events: list[dict[str, Any]], retention: int) -> list[WebEventDoc]:
    """The documents recordWebEvents stores for ``events``."""
    docs: list[WebEventDoc] = []
    for event in events:
        at = to_db_precision(datetime.fromisoformat(event["at"]))
        event_id = new_id()
        docs.append(
            {
                "_id": event_id,
                "eventId": event_id,
                "org": org,
                "cookie": event["cookie"],
                "type": event["type"],
                "at": at,
                "url": event["url"],
                "title": None,
                "referrer": None,
                "name": None,
                "attributes": event["attributes"],
                "expiresAt": at + timedelta(days=retention),
            }
        )
    return docs


async def measure_ingest(http: httpx.AsyncClient, store: Store, batches: int) -> list[WebRow]:
    clock = Clock(now() - timedelta(hours=1))
    await gql(http, RECORD, {"e": clock.events(BATCH, COOKIES, "ingest")})  # known cookies
    gateway: list[float] = []
    raw: list[float] = []
    for n in range(batches):
        events = clock.events(BATCH, COOKIES, "ingest")
        docs = raw_docs("bench-raw", events, store.config.retention_days)
        for side in ("gateway", "raw") if n % 2 else ("raw", "gateway"):
            started = time.perf_counter()
            if side == "gateway":
                await gql(http, RECORD, {"e": events})
                gateway.append(time.perf_counter() - started)
            else:
                await store.web_events.insert_many(docs)
                raw.append(time.perf_counter() - started)
    rate = BATCH / statistics.median(gateway)
    raw_rate = BATCH / statistics.median(raw)
    single, single_raw = await measure_single(http, store, clock)
    return [
        (
            "web events ingest, batches of 500 (events/s, median batch)",
            f"{rate:,.0f}/s",
            f"{raw_rate:,.0f}/s (insert_many)",
            f"{rate / raw_rate:.2f}x",
            "≥ 0.5x",
            rate / raw_rate >= 0.5,
        ),
        (
            "web event, one a call: p50 latency",
            f"{single * 1000:.1f} ms",
            f"{single_raw * 1000:.1f} ms (insert_one)",
            f"{single / single_raw:.1f}x",
            "—",
            None,
        ),
    ]


async def measure_single(
    http: httpx.AsyncClient, store: Store, clock: Clock, calls: int = 50
) -> tuple[float, float]:
    gateway: list[float] = []
    raw: list[float] = []
    for _ in range(calls):
        events = clock.events(1, COOKIES, "ingest")
        [doc] = raw_docs("bench-raw", events, store.config.retention_days)
        started = time.perf_counter()
        await gql(http, RECORD, {"e": events})
        gateway.append(time.perf_counter() - started)
        started = time.perf_counter()
        await store.web_events.insert_one(doc)
        raw.append(time.perf_counter() - started)
    return statistics.median(gateway), statistics.median(raw)


# --- the timeline -------------------------------------------------------------------------------


async def seed_person(store: Store, org: str, sessions: int = 200, conversations: int = 100) -> str:
    """A curated person with ``sessions`` web sessions of 5 events over three devices and
    ``conversations`` conversations, all within the retention period."""
    person = new_contact_doc(
        store, org, {"firstName": "Bench", "lastName": "Timeline"}, ContactType.CURATED
    )
    await store.contacts.insert_one(person)
    cookies = [f"bench-device-{n}" for n in range(3)]
    await store.identifiers.insert_many(
        [
            claims.claim_doc(org, key(IdentifierType.COOKIE, c), person, claims.VIA_INTERACTION)
            for c in cookies
        ]
    )
    start = now() - timedelta(days=40)
    events: list[WebEventDoc] = []
    for s in range(sessions):
        begins = start + timedelta(hours=4 * s)
        timed = [
            {
                "cookie": cookies[s % 3],
                "type": "PAGE_VIEW",
                "url": f"/p/{n}",
                "attributes": [],
                "at": serialize_datetime(begins + timedelta(minutes=3 * n)),
            }
            for n in range(5)
        ]
        events.extend(raw_docs(org, timed, store.config.retention_days))
    await store.web_events.insert_many(events)
    await web_sessions.rebuild(store, org, events)
    rng = random.Random(5)
    docs: list[ConversationDoc] = []
    for n in range(conversations):
        started = to_db_precision(start + timedelta(hours=8 * n + rng.random()))
        docs.append(
            {
                "_id": new_id(),
                "org": org,
                "cid": f"bench-timeline-{n}",
                "channel": "VOICE",
                "direction": "INBOUND",
                "startedAt": started,
                "endedAt": None,
                "durationSeconds": None,
                "identifiers": [],
                "externalContactId": person["_id"],
                "expiresAt": started + timedelta(days=store.config.retention_days),
                "createdAt": started,
                "modifiedAt": started,
                "queue": None,
                "agent": None,
                "wrapUpCode": None,
                "status": None,
                "notes": None,
            }
        )
    await store.conversations.insert_many(docs)
    return person["_id"]


async def raw_timeline(store: Store, org: str, person: str) -> int:
    """The same first page with the least driver work: cookies, 51 sessions, 51 conversations."""
    claimed = await store.identifiers.find(
        {"org": org, "contactId": person}, {"type": 1, "value": 1}
    ).to_list()
    cookies = [c["value"] for c in claimed if c["type"] == IdentifierType.COOKIE]
    found = store.web_sessions.find({"org": org, "cookie": {"$in": cookies}})
    sessions = await found.sort([("startedAt", -1), ("_id", -1)]).limit(51).to_list()
    request = journeys.page_request(
        journeys.JOURNEY_CURSOR, [person], journeys.conversation_filter(), 50, None, maximum=50
    )
    page = await journeys.conversation_page(store, org, request)
    items = sorted(
        [*(d["startedAt"] for d in sessions), *(d["startedAt"] for d in page.docs)], reverse=True
    )
    return len(items[:50])


async def measure_timeline(http: httpx.AsyncClient, store: Store, org: str, calls: int) -> WebRow:
    person = await seed_person(store, org)
    gateway: list[float] = []
    raw: list[float] = []
    for n in range(calls + 3):
        for side in ("gateway", "raw") if n % 2 else ("raw", "gateway"):
            started = time.perf_counter()
            if side == "gateway":
                data = await gql(http, TIMELINE, {"id": person})
                assert len(data["journey"]["timeline"]["edges"]) == 50
            else:
                assert await raw_timeline(store, org, person) == 50
            if n >= 3:
                (gateway if side == "gateway" else raw).append(time.perf_counter() - started)
    ratio = statistics.median(gateway) / statistics.median(raw)
    return (
        "timeline first page (50): 200 sessions + 100 conversations, p50",
        f"{statistics.median(gateway) * 1000:.1f} ms",
        f"{statistics.median(raw) * 1000:.1f} ms",
        f"{ratio:.2f}x",
        "≤ 1.5x",
        ratio <= 1.5,
    )


# --- memory ---------------------------------------------------------------------------------------


async def peak_of(store: Store, principal: Principal, clock: Clock, batches: int) -> int:
    """tracemalloc's peak while ``batches`` batches of 500 are recorded in-process."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for _ in range(batches):
            raw = clock.events(BATCH, COOKIES, "memory")
            parsed = [{**e, "at": datetime.fromisoformat(e["at"])} for e in raw]
            await web_events.record_web_events(store, principal, parsed)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def measure_memory(store: Store, org: str) -> WebRow:
    principal = Principal(org=org, sub="bench", permissions=frozenset())
    clock = Clock(now() - timedelta(minutes=30))
    await peak_of(store, principal, clock, 1)  # the cookies are known from here on
    one = await peak_of(store, principal, clock, 1)
    ten = await peak_of(store, principal, clock, 10)
    return (
        "memory while recording 500-event batches (tracemalloc peak)",
        f"{ten / 2**20:.1f} MiB for 10 batches",
        f"{one / 2**20:.1f} MiB for 1 batch",
        f"{ten / one:.2f}x",
        "flat: ≤ 1.2x",
        ten <= 1.2 * one,
    )


async def web_rows(http: httpx.AsyncClient, store: Store, org: str, calls: int) -> list[WebRow]:
    rows = await measure_ingest(http, store, batches=max(calls // 5, 6))
    rows.append(await measure_timeline(http, store, org, calls))
    rows.append(await measure_memory(store, org))
    return rows
