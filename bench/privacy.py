"""The privacy rows of `make bench`: erasing a heavy person, and that person's export.

A *heavy person* is a CURATED contact with a phone and an email, merged with an
auto-created contact, with :data:`CONVERSATIONS` conversations linked to its members (the
documents ``recordInteraction`` stores, and their count buckets) and :data:`WEB_EVENTS` web
events on two cookies it claims (the documents ``recordWebEvents`` stores, 500 a batch, and
the sessions it keeps: sessions of 10 events). Each round seeds two such
people, then, interleaved:

- ``GET /export/person/{id}.json`` of one (streamed to the end; its size is reported) against
  the raw driver reading the same documents (members, claims, conversations by the journey's
  index, the cookies' sessions and events) and writing them with orjson;
- ``eraseContact`` of one over HTTP (one transaction) against the raw driver deleting the
  other's documents with the same indexed ``delete_many`` calls, without a transaction, a
  receipt, the merge history or the count buckets.

The best time of the rounds counts (the machine's other work only ever slows a run down).
The erasure's target is the embedded server's transaction lifetime (5 s): one
transaction must finish well inside it.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import orjson

from gateway.embedded_daemon import TRANSACTION_LIFETIME_S
from resolvers import claims, conversation_counts, web_events, web_sessions
from resolvers.clock import now
from resolvers.contact_fields import ContactType
from resolvers.contacts import new_contact_doc, new_id
from resolvers.documents import ContactDoc, ConversationDoc
from resolvers.identifiers import IdentifierType, key
from resolvers.store import Store

CONVERSATIONS = 1000
WEB_EVENTS = 5000
WEB_BATCH = 500  # recordWebEvents' largest batch
SESSION_EVENTS = 20  # events of one visit, across the two cookies: 10 a session
CHANNELS = ("VOICE", "SMS", "EMAIL", "WEB_CHAT")
ERASE = """mutation($id: ID!) {
  eraseContact(id: $id, reason: "bench") { conversations webEvents } }"""

Row = tuple[str, str, str, str, str, bool | None]  # measure, gateway, raw, ratio, target, met


async def heavy_person(store: Store, org: str, n: int) -> list[str]:
    """A curated contact and an auto-created one, merged by hand as a merge leaves them, with
    :data:`CONVERSATIONS` conversations; returns the member ids (canonical first)."""
    moment = now()
    phone, email = f"+1919{5_000_000 + n:07d}", f"heavy.{n}.{new_id()}@example.com"
    head = new_contact_doc(
        store,
        org,
        {"firstName": f"Heavy{n}", "lastName": "Person", "workPhone": phone, "workEmail": email},
        ContactType.CURATED,
    )
    other = new_contact_doc(
        store, org, {"cellPhone": f"+1929{5_000_000 + n:07d}"}, ContactType.IDENTIFIED
    )
    set_id = new_id()
    head["mergeSetId"] = set_id
    other.update({"readOnly": True, "canonicalId": head["_id"], "mergeSetId": set_id})
    await store.contacts.insert_many([head, other])
    await store.merge_sets.insert_one(
        {
            "_id": set_id,
            "org": org,
            "canonicalId": head["_id"],
            "memberIds": [other["_id"], head["_id"]],
            "history": [],
        }
    )
    await claims.claim_all(store, org, head["keys"] + other["keys"], head, claims.VIA_MERGE)
    docs = [
        _conversation(store, org, [head, other][i % 2], i, moment) for i in range(CONVERSATIONS)
    ]
    await store.conversations.insert_many(docs)
    await conversation_counts.record(store, org, [(d["startedAt"], d["channel"], 1) for d in docs])
    await web_visits(store, org, head, moment)
    return [head["_id"], other["_id"]]


async def web_visits(store: Store, org: str, head: ContactDoc, moment: Any) -> None:
    """:data:`WEB_EVENTS` page views on two cookies ``head`` claims, stored as
    ``recordWebEvents`` stores them (its documents, its session rebuild), a batch at a time."""
    cookies = [f"heavy-{head['_id']}-{device}" for device in ("laptop", "phone")]
    keys = [key(IdentifierType.COOKIE, c) for c in cookies]
    await claims.claim_all(store, org, keys, head, claims.VIA_INTERACTION)
    events = [_page_view(cookies[i % 2], i, moment) for i in range(WEB_EVENTS)]
    for start in range(0, WEB_EVENTS, WEB_BATCH):
        batch = events[start : start + WEB_BATCH]
        docs = [web_events.event_doc(org, e, store.config.retention_days) for e in batch]
        await store.web_events.insert_many(docs)
        await web_sessions.rebuild(store, org, docs)


def _page_view(cookie: str, i: int, moment: Any) -> web_events.WebEvent:
    visit, step = divmod(i, SESSION_EVENTS)  # a visit every 2 hours, a page a minute
    return web_events.WebEvent(
        cookie=cookie,
        event_id=None,
        type=web_events.WebEventType.PAGE_VIEW,
        at=moment - timedelta(hours=2 * visit, minutes=SESSION_EVENTS - step),
        details={"url": f"/products/{i % 40}", "title": "Products", "referrer": None, "name": None},
        attributes=[],
        provided={},
    )


def _conversation(
    store: Store, org: str, contact: ContactDoc, i: int, moment: Any
) -> ConversationDoc:
    started = moment - timedelta(minutes=7 * i + 1)
    phone = contact["workPhone"] or contact["cellPhone"] or ""
    return {
        "_id": new_id(),
        "org": org,
        "cid": f"heavy-{contact['_id']}-{i}",
        "channel": CHANNELS[i % len(CHANNELS)],
        "direction": "INBOUND",
        "startedAt": started,
        "endedAt": started + timedelta(minutes=3),
        "durationSeconds": 180.0,
        "identifiers": [{"type": "PHONE", "value": phone}],
        "externalContactId": contact["_id"],
        "expiresAt": started + timedelta(days=store.config.retention_days),
        "createdAt": moment,
        "modifiedAt": moment,
        "queue": "support",
        "agent": "agent-7",
        "wrapUpCode": "resolved",
        "status": "closed",
        "notes": "asked about the invoice",
    }


async def export_over_http(http: httpx.AsyncClient, contact_id: str) -> int:
    size = 0
    async with http.stream("GET", f"/export/person/{contact_id}.json") as response:
        assert response.status_code == 200, response.status_code
        async for chunk in response.aiter_bytes():
            size += len(chunk)
    return size


async def export_raw(store: Store, org: str, members: list[str]) -> int:
    contacts = await store.contacts.find({"org": org, "_id": {"$in": members}}).to_list()
    held = await store.identifiers.find({"org": org, "contactId": {"$in": members}}).to_list()
    cursor = store.conversations.find(
        {"org": org, "externalContactId": {"$in": members}}, batch_size=1000
    ).sort([("startedAt", -1), ("_id", -1)])
    conversations = await cursor.to_list()
    cookies = {"$in": _cookies(held)}
    sessions = await store.web_sessions.find({"org": org, "cookie": cookies}).to_list()
    events = await store.web_events.find({"org": org, "cookie": cookies}).to_list()
    return len(orjson.dumps([contacts, held, conversations, sessions, events], default=str))


def _cookies(held: list[Any]) -> list[str]:
    prefix = f"{IdentifierType.COOKIE}:"
    return [h["key"].removeprefix(prefix) for h in held if h["key"].startswith(prefix)]


async def erase_over_http(http: httpx.AsyncClient, contact_id: str) -> None:
    response = await http.post("/graphql", json={"query": ERASE, "variables": {"id": contact_id}})
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["eraseContact"]["conversations"] == CONVERSATIONS
    assert body["data"]["eraseContact"]["webEvents"] == WEB_EVENTS


async def erase_raw(store: Store, org: str, members: list[str]) -> None:
    held = await store.identifiers.find({"org": org, "contactId": {"$in": members}}).to_list()
    cookies = {"$in": _cookies(held)}
    await store.web_events.delete_many({"org": org, "cookie": cookies})
    await store.web_sessions.delete_many({"org": org, "cookie": cookies})
    await store.contacts.delete_many({"org": org, "_id": {"$in": members}})
    await store.identifiers.delete_many({"org": org, "contactId": {"$in": members}})
    linked = {"org": org, "externalContactId": {"$in": members}}
    docs = await store.conversations.find(linked, {"startedAt": 1, "channel": 1}).to_list()
    await store.conversations.delete_many(linked)
    # the count buckets lose them too: the same result, and later rows read those buckets
    await conversation_counts.record(store, org, [(d["startedAt"], d["channel"], -1) for d in docs])
    await store.merge_sets.delete_many({"org": org, "memberIds": {"$in": members}})


async def timed(work: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await work
    return time.perf_counter() - started, result


async def measure_privacy(
    http: httpx.AsyncClient, store: Store, org: str, rounds: int
) -> list[Row]:
    """The two rows: the person export (time and size) and the erasure."""
    best: dict[str, float] = {}
    size = 0
    for n in range(rounds):
        gone = await heavy_person(store, org, 2 * n)
        twin = await heavy_person(store, org, 2 * n + 1)
        took, size = await timed(export_over_http(http, gone[1]))  # through an ancestor
        best["export"] = min(best.get("export", took), took)
        took, _ = await timed(export_raw(store, org, twin))
        best["export raw"] = min(best.get("export raw", took), took)
        took, _ = await timed(erase_over_http(http, gone[1]))
        best["erase"] = min(best.get("erase", took), took)
        took, _ = await timed(erase_raw(store, org, twin))
        best["erase raw"] = min(best.get("erase raw", took), took)
    label = (
        f"a person with {CONVERSATIONS:,} conversations and {WEB_EVENTS:,} web events,"
        f" best of {rounds}"
    )
    return [
        (
            f"person export ({label}; {size / 1024:,.0f} KiB)",
            f"{best['export'] * 1000:.0f} ms",
            f"{best['export raw'] * 1000:.0f} ms (driver reads + orjson)",
            f"{best['export'] / best['export raw']:.1f}x",
            "—",
            None,
        ),
        (
            f"eraseContact ({label})",
            f"{best['erase'] * 1000:.0f} ms (one transaction)",
            f"{best['erase raw'] * 1000:.0f} ms (driver deletes, no transaction)",
            f"{best['erase'] / best['erase raw']:.1f}x",
            f"< {TRANSACTION_LIFETIME_S:.0f} s (transaction lifetime)",
            best["erase"] < TRANSACTION_LIFETIME_S,
        ),
    ]
