"""The gap rule on session summaries, and the expiry renewal of web events (domain level)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from resolvers import web_events, web_sessions
from resolvers.clock import now
from resolvers.store import Store
from resolvers.web_documents import WebEventDoc, WebSessionDoc
from tests.conftest import principal

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
GAP = timedelta(minutes=30)


def event(minutes: float, url: str | None = None, n: int = 0) -> WebEventDoc:
    at = T0 + timedelta(minutes=minutes)
    return {
        "_id": f"e{minutes:08.2f}-{n}",
        "eventId": f"e{minutes}-{n}",
        "org": "acme",
        "cookie": "c",
        "type": "PAGE_VIEW" if url else "CUSTOM",
        "at": at,
        "url": url,
        "title": None,
        "referrer": "https://ref.example/" if url == "/first" else None,
        "name": None,
        "attributes": [],
        "expiresAt": at + timedelta(days=60),
    }


def sessions_of(events: list[WebEventDoc]) -> list[tuple[datetime, datetime, int]]:
    joined = web_sessions.join([web_sessions.piece("acme", e) for e in events], GAP)
    return [(s["startedAt"], s["endedAt"], s["eventCount"]) for s, _ in joined]


def by_brute_force(events: list[WebEventDoc]) -> list[tuple[datetime, datetime, int]]:
    """The gap rule as written: sort, cut where two neighbours are the gap or more apart."""
    ordered = sorted(e["at"] for e in events)
    groups: list[list[datetime]] = []
    for at in ordered:
        if groups and at - groups[-1][-1] < GAP:
            groups[-1].append(at)
        else:
            groups.append([at])
    return [(g[0], g[-1], len(g)) for g in groups]


def test_joining_in_any_order_and_any_batching_equals_the_gap_rule() -> None:
    rng = random.Random(3)
    for _ in range(200):
        events = [event(rng.uniform(0, 600), n=n) for n in range(rng.randint(1, 25))]
        expected = by_brute_force(events)
        rng.shuffle(events)
        # batches joined into the stored sessions, one after the other
        stored: list[WebSessionDoc] = []
        while events:
            size = rng.randint(1, 6)
            batch, events = events[:size], events[size:]
            pieces = [web_sessions.piece("acme", e) for e in batch]
            stored = [s for s, _ in web_sessions.join([*stored, *pieces], GAP)]
        assert [(s["startedAt"], s["endedAt"], s["eventCount"]) for s in stored] == expected


def test_exactly_the_gap_apart_is_two_sessions() -> None:
    assert len(sessions_of([event(0), event(30)])) == 2
    assert len(sessions_of([event(0), event(29.99)])) == 1


def test_landing_exit_and_referrer_come_from_the_events_in_time_order() -> None:
    late_first = [event(10, "/exit"), event(5, "/middle"), event(0, None), event(1, "/first")]
    [(session, _)] = web_sessions.join([web_sessions.piece("acme", e) for e in late_first], GAP)
    assert (session["landingUrl"], session["exitUrl"]) == ("/first", "/exit")
    assert session["referrer"] == "https://ref.example/"
    assert (session["pageViews"], session["eventCount"]) == (3, 4)


async def test_events_renew_an_auto_created_visitor_hourly(store: Store) -> None:
    start = now() - timedelta(days=2)
    record = web_events.record_web_events
    visit = {"cookie": "renewed", "type": "PAGE_VIEW"}
    result = await record(store, principal(), [{**visit, "at": start}])
    [contact_id] = result.contact_ids
    retention = timedelta(days=store.config.retention_days)

    async def expiry() -> datetime | None:
        doc = await store.contacts.find_one({"_id": contact_id})
        assert doc is not None
        claim = await store.identifiers.find_one({"contactId": contact_id})
        assert claim is not None and claim["expiresAt"] == doc["expiresAt"]
        return doc["expiresAt"]

    assert await expiry() == start + retention
    await record(store, principal(), [{**visit, "at": start + timedelta(minutes=20)}])
    assert await expiry() == start + retention  # less than an hour later: not rewritten
    later = start + timedelta(hours=5)
    await record(store, principal(), [{**visit, "at": later}])
    assert await expiry() == later + retention
    await record(store, principal(), [{**visit, "at": start + timedelta(hours=1)}])
    assert await expiry() == later + retention  # an older event never shortens it
