"""recordWebEvents, web sessions and the journey timeline over HTTP (contract section 8)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from resolvers import blocked_identifiers
from resolvers.clock import now
from resolvers.store import Store
from schema.scalars import serialize_datetime
from tests.conftest import Api, codes

RECORD = """
mutation Web($events: [WebEventInput!]!) {
  recordWebEvents(events: $events) { accepted contactIds }
}
"""

CREATE = """
mutation Create($input: ContactInput!) { createContact(input: $input) { id } }
"""

INTERACTION = """
mutation Interaction($input: InteractionInput!) {
  recordInteraction(input: $input) { contact { id type } created }
}
"""

CHANGES = """query Feed { changes(first: 100) { edges { node {
  kind contactId contactIds identifier { type value } } } } }"""

MERGE = "mutation Merge($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"
UNMERGE = "mutation Unmerge($id: ID!) { unmergeContacts(contactId: $id) { id } }"
DELETE = "mutation Delete($id: ID!) { deleteContact(id: $id) }"

SESSIONS = """
query Sessions($id: ID!, $first: Int, $after: String, $since: DateTime, $until: DateTime) {
  journey(contactId: $id) {
    webSessionCount
    webSessions(first: $first, after: $after, since: $since, until: $until) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node {
        id startedAt endedAt pageViews eventCount landingUrl exitUrl referrer
        contact { id }
        events(first: 50) { totalCount edges { node { id type at url name
                                                      attributes { key value } } } }
      } }
    }
  }
}
"""

TIMELINE = """
query Timeline($id: ID!, $first: Int, $after: String) {
  journey(contactId: $id) {
    timeline(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node {
        __typename
        ... on Conversation { id startedAt }
        ... on WebSession { id startedAt eventCount landingUrl }
      } }
    }
  }
}
"""

T0 = now().replace(microsecond=0) - timedelta(days=3)


def at(minutes: float) -> str:
    return serialize_datetime(T0 + timedelta(minutes=minutes))


def view(cookie: str, minutes: float, url: str = "/", **extra: Any) -> dict[str, Any]:
    return {"cookie": cookie, "type": "PAGE_VIEW", "at": at(minutes), "url": url, **extra}


def form(cookie: str, minutes: float, **provided: Any) -> dict[str, Any]:
    return {
        "cookie": cookie,
        "type": "FORM_SUBMIT",
        "at": at(minutes),
        "url": "/contact-us",
        "provided": provided,
    }


async def record(api: Api, *events: dict[str, Any], org: str = "acme") -> list[str]:
    data = await api.gql(RECORD, {"events": list(events)}, org=org)
    assert data["recordWebEvents"]["accepted"] == len(events)
    ids: list[str] = data["recordWebEvents"]["contactIds"]
    return ids


async def sessions(api: Api, contact_id: str, **args: Any) -> dict[str, Any]:
    data = await api.gql(SESSIONS, {"id": contact_id, **args})
    journey: dict[str, Any] = data["journey"]
    return journey


def session_shapes(journey: dict[str, Any]) -> list[tuple[str, int]]:
    """(startedAt, eventCount) of each session, newest first."""
    return [
        (e["node"]["startedAt"], e["node"]["eventCount"]) for e in journey["webSessions"]["edges"]
    ]


async def timeline(api: Api, contact_id: str, first: int = 50) -> list[dict[str, Any]]:
    data = await api.gql(TIMELINE, {"id": contact_id, "first": first})
    nodes: list[dict[str, Any]] = [e["node"] for e in data["journey"]["timeline"]["edges"]]
    return nodes


async def test_unknown_cookie_creates_an_ephemeral_contact_with_its_session(
    api: Api, store: Store
) -> None:
    ids = await record(
        api,
        view("c-1", 0, "/home", referrer="https://search.example/"),
        view("c-1", 5, "/pricing"),
        {
            "cookie": "c-1",
            "type": "CUSTOM",
            "at": at(6),
            "name": "added_to_cart",
            "attributes": [{"key": "sku", "value": "A-1"}],
        },
    )
    assert len(set(ids)) == 1
    contact = await store.contacts.find_one({"_id": ids[0]})
    assert contact is not None and contact["type"] == "EPHEMERAL"
    claim = await store.identifiers.find_one({"org": "acme", "key": "COOKIE:c-1"})
    assert claim is not None and claim["contactId"] == ids[0]
    journey = await sessions(api, ids[0])
    assert journey["webSessionCount"] == 1
    node = journey["webSessions"]["edges"][0]["node"]
    assert (node["pageViews"], node["eventCount"]) == (2, 3)
    assert (node["landingUrl"], node["exitUrl"]) == ("/home", "/pricing")
    assert node["referrer"] == "https://search.example/"
    assert node["startedAt"] == at(0) and node["endedAt"] == at(6)
    assert node["contact"] == {"id": ids[0]}
    events = node["events"]["edges"]
    assert [e["node"]["type"] for e in events] == ["PAGE_VIEW", "PAGE_VIEW", "CUSTOM"]
    assert events[2]["node"]["attributes"] == [{"key": "sku", "value": "A-1"}]
    # the same cookie again resolves to the same contact
    assert await record(api, view("c-1", 200)) == ids[:1]
    assert (await sessions(api, ids[0]))["webSessionCount"] == 2


async def test_sessions_follow_the_gap_whatever_order_and_calls_events_come_in(
    api: Api,
) -> None:
    [contact] = await record(api, view("c-2", 0))
    await record(api, view("c-2", 40))  # 40 minutes later: a second session
    assert session_shapes(await sessions(api, contact)) == [(at(40), 1), (at(0), 1)]
    await record(api, view("c-2", 20))  # fills the gap: one session of three
    assert session_shapes(await sessions(api, contact)) == [(at(0), 3)]
    await record(api, view("c-2", 69.9), view("c-2", 100), view("c-2", -29.5))
    assert session_shapes(await sessions(api, contact)) == [(at(100), 1), (at(-29.5), 5)]
    await record(api, view("c-2", 130))  # exactly the gap apart: a new session
    assert session_shapes(await sessions(api, contact)) == [
        (at(130), 1),
        (at(100), 1),
        (at(-29.5), 5),
    ]


async def test_an_event_id_is_stored_once(api: Api, store: Store) -> None:
    batch = [view("c-3", 0, eventId="e-1"), view("c-3", 1, eventId="e-2")]
    [contact, _] = await record(api, *batch)
    await record(api, *batch)
    await record(api, view("c-3", 2, eventId="e-3"), view("c-3", 2, eventId="e-3"))
    assert await store.web_events.count_documents({"org": "acme"}) == 3
    assert session_shapes(await sessions(api, contact)) == [(at(0), 3)]


async def test_bad_input_writes_nothing(api: Api, store: Store) -> None:
    good = view("c-4", 0)
    future = serialize_datetime(now() + timedelta(days=2))
    cases = [
        [],
        [good] * 501,
        [good, view("", 1)],
        [good, view("   ", 1)],
        [good, view("anonymous", 1)],
        [good, view("c-4", 1, url="x" * 1001)],
        [good, view("c-4", 1, title="x" * 1001)],
        [
            good,
            {**view("c-4", 1), "attributes": [{"key": f"k{i}", "value": "v"} for i in range(21)]},
        ],
        [good, {**view("c-4", 1), "attributes": [{"key": "k", "value": "v" * 1001}]}],
        [good, {**view("c-4", 1), "at": future}],
        [good, {**view("c-4", 1), "provided": {"personalEmail": "ann@example.com"}}],
        [good, form("c-4", 1, personalEmail="not an email")],
    ]
    for events in cases:
        _, errors = await api.gql_error(RECORD, {"events": events})
        assert codes(errors) == ["BAD_USER_INPUT"], (len(events), errors)
    assert await store.web_events.count_documents({}) == 0
    assert await store.contacts.count_documents({}) == 0
    assert await store.identifiers.count_documents({}) == 0
    assert await store.web_sessions.count_documents({}) == 0


async def test_recording_needs_the_ingest_permission(api: Api, store: Store) -> None:
    _, errors = await api.gql_error(
        RECORD, {"events": [view("c-5", 0)]}, permissions=["externalContacts:contact:view"]
    )
    assert codes(errors) == ["FORBIDDEN"]
    assert await store.web_events.count_documents({}) == 0


async def create_curated(api: Api, **fields: Any) -> str:
    data = await api.gql(CREATE, {"input": {"firstName": "Ann", "lastName": "Lee", **fields}})
    contact_id: str = data["createContact"]["id"]
    return contact_id


async def test_a_form_fill_moves_an_ephemeral_visitors_cookie_to_the_person(
    api: Api, store: Store
) -> None:
    person = await create_curated(api, workEmail="ann@example.com")
    [visitor, again] = await record(api, view("laptop", 0), view("laptop", 5))
    assert again == visitor
    assert visitor != person
    ids = await record(api, form("laptop", 10, workEmail="ANN@example.com"), view("laptop", 12))
    assert ids == [person, person]
    claim = await store.identifiers.find_one({"org": "acme", "key": "COOKIE:laptop"})
    assert claim is not None and claim["contactId"] == person
    journey = await sessions(api, person)
    assert session_shapes(journey) == [(at(0), 4)]  # the visits before the form fill too
    feed = await api.gql(CHANGES)
    assert [
        (c["kind"], c["contactId"], c["contactIds"], c["identifier"])
        for c in (e["node"] for e in feed["changes"]["edges"])
        if c["kind"] != "CONTACT_CREATED" or c["contactId"] == visitor
    ] == [
        ("CONTACT_CREATED", visitor, [visitor], None),
        ("IDENTIFIER_CLAIMED", visitor, [visitor], {"type": "COOKIE", "value": "laptop"}),
        ("IDENTIFIER_CLAIMED", person, [person, visitor], {"type": "COOKIE", "value": "laptop"}),
    ]
    assert (await sessions(api, visitor))["webSessionCount"] == 0
    ephemeral = await store.contacts.find_one({"_id": visitor})
    assert ephemeral is not None  # kept; it expires as usual


async def test_a_cookie_held_by_an_identified_contact_never_moves(api: Api, store: Store) -> None:
    person = await create_curated(api, workEmail="ann@example.com")
    interaction = {
        "conversationId": "chat-1",
        "channel": "WEB_MESSAGING",
        "startedAt": at(0),
        "identifiers": [
            {"type": "COOKIE", "value": "shared"},
            {"type": "PHONE", "value": "+18035550100"},
        ],
    }
    data = await api.gql(INTERACTION, {"input": interaction})
    holder = data["recordInteraction"]["contact"]
    assert holder["type"] == "IDENTIFIED"
    ids = await record(api, form("shared", 10, workEmail="ann@example.com"), view("shared", 11))
    assert ids == [person, holder["id"]]  # the form resolves by email; the cookie stays
    claim = await store.identifiers.find_one({"org": "acme", "key": "COOKIE:shared"})
    assert claim is not None and claim["contactId"] == holder["id"]


async def test_a_web_messaging_form_fill_adopts_the_cookie_too(api: Api, store: Store) -> None:
    person = await create_curated(api, workEmail="ann@example.com")
    [visitor] = await record(api, view("tablet", 0))
    interaction = {
        "conversationId": "chat-2",
        "channel": "WEB_MESSAGING",
        "startedAt": at(3),
        "identifiers": [{"type": "COOKIE", "value": "tablet"}],
        "provided": {"personalEmail": "ann@example.com"},
    }
    data = await api.gql(INTERACTION, {"input": interaction})
    assert data["recordInteraction"]["contact"]["id"] == person
    claim = await store.identifiers.find_one({"org": "acme", "key": "COOKIE:tablet"})
    assert claim is not None and claim["contactId"] == person
    feed = await api.gql(CHANGES)
    moved = [
        e["node"] for e in feed["changes"]["edges"] if e["node"]["kind"] == "IDENTIFIER_CLAIMED"
    ]
    cookie = {"type": "COOKIE", "value": "tablet"}
    assert moved == [
        {  # the visitor's first claim
            "kind": "IDENTIFIER_CLAIMED",
            "contactId": visitor,
            "contactIds": [visitor],
            "identifier": cookie,
        },
        {  # the cookie moved to the person
            "kind": "IDENTIFIER_CLAIMED",
            "contactId": person,
            "contactIds": [person, visitor],
            "identifier": cookie,
        },
    ]
    kinds = [n["__typename"] for n in await timeline(api, person)]
    assert kinds == ["Conversation", "WebSession"]
    assert visitor != person


async def test_cross_device_journey_and_unmerge(api: Api, store: Store) -> None:
    """A person browses on a laptop and a phone, fills a form on each, and sees both devices'
    visits, before and after the form fills, in one timeline; unmerging separates them."""
    by_email = await create_curated(api, workEmail="ann@example.com")
    call = {
        "conversationId": "call-1",
        "channel": "VOICE",
        "startedAt": at(500),
        "identifiers": [{"type": "PHONE", "value": "+18035550111"}],
    }
    by_phone = (await api.gql(INTERACTION, {"input": call}))["recordInteraction"]["contact"]["id"]
    await record(api, view("laptop", 0), view("phone", 100))
    assert await record(api, form("laptop", 10, workEmail="ann@example.com")) == [by_email]
    assert await record(api, form("phone", 110, cellPhone="(803) 555-0111")) == [by_phone]
    await record(api, view("laptop", 300), view("phone", 400))
    assert session_shapes(await sessions(api, by_email)) == [(at(300), 1), (at(0), 2)]
    assert session_shapes(await sessions(api, by_phone)) == [(at(400), 1), (at(100), 2)]

    stored = await store.web_events.find({}).sort("_id").to_list()
    merged = (await api.gql(MERGE, {"ids": [by_email, by_phone]}))["mergeContacts"]["id"]
    items = await timeline(api, by_email)  # an ancestor's journey is its set's
    assert [(n["__typename"], n["startedAt"]) for n in items] == [
        ("Conversation", at(500)),
        ("WebSession", at(400)),
        ("WebSession", at(300)),
        ("WebSession", at(100)),
        ("WebSession", at(0)),
    ]
    journey = await sessions(api, merged)
    assert journey["webSessionCount"] == 4
    assert {e["node"]["contact"]["id"] for e in journey["webSessions"]["edges"]} == {merged}

    await api.gql(UNMERGE, {"id": merged})
    assert session_shapes(await sessions(api, by_email)) == [(at(300), 1), (at(0), 2)]
    phone_items = await timeline(api, by_phone)
    assert [n["startedAt"] for n in phone_items] == [at(500), at(400), at(100)]
    assert await store.web_events.find({}).sort("_id").to_list() == stored  # never rewritten


async def test_deletion_releases_the_cookie_and_its_sessions_go_with_it(api: Api) -> None:
    person = await create_curated(api, workEmail="ann@example.com")
    await record(api, view("desk", 0), form("desk", 1, workEmail="ann@example.com"))
    assert (await sessions(api, person))["webSessionCount"] == 1
    await api.gql(DELETE, {"id": person})
    [newcomer] = await record(api, view("desk", 600))
    assert newcomer != person
    assert session_shapes(await sessions(api, newcomer)) == [(at(600), 1), (at(0), 2)]


async def test_timeline_pages_with_one_cursor_across_both_kinds(api: Api) -> None:
    person = await create_curated(api, workEmail="ann@example.com")
    for n in range(4):
        call = {
            "conversationId": f"chat-{n}",
            "channel": "EMAIL",
            "startedAt": at(n * 100 + 50),
            "identifiers": [{"type": "EMAIL", "value": "ann@example.com"}],
        }
        await api.gql(INTERACTION, {"input": call})
    await record(api, form("web", 0, workEmail="ann@example.com"))
    await record(api, *[view("web", n * 100) for n in range(1, 4)])
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        data = await api.gql(TIMELINE, {"id": person, "first": 3, "after": after})
        page = data["journey"]["timeline"]
        assert page["totalCount"] == 8
        seen.extend(e["node"]["startedAt"] for e in page["edges"])
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    expected = sorted([at(n * 100 + 50) for n in range(4)] + [at(n * 100) for n in range(4)])
    assert seen == expected[::-1]
    assert pages == 3
    sessions_page = await api.gql(SESSIONS, {"id": person, "first": 1})
    foreign = sessions_page["journey"]["webSessions"]["pageInfo"]["endCursor"]
    for cursor in (foreign, "not-a-cursor"):
        _, errors = await api.gql_error(TIMELINE, {"id": person, "after": cursor})
        assert codes(errors) == ["BAD_USER_INPUT"]


async def test_expired_events_and_sessions_never_show(api: Api, store: Store) -> None:
    days = store.config.retention_days
    old = now() - timedelta(days=days, minutes=10)
    events = [
        {"cookie": "c-9", "type": "PAGE_VIEW", "at": serialize_datetime(old + timedelta(minutes=m))}
        for m in (0, 5, 20)
    ]
    contact = (await record(api, *events, view("c-9", 0), view("c-9", 1), view("c-9", 100)))[0]
    journey = await sessions(api, contact)
    # the events that expired on arrival make no session; the one still live does
    assert session_shapes(journey) == [
        (at(100), 1),
        (at(0), 2),
        (serialize_datetime(old + timedelta(minutes=20)), 1),
    ]
    # time passes (as seen by the reads): one event of a session and a whole session expire
    gone = now() - timedelta(seconds=1)
    await store.web_events.update_one(
        {"cookie": "c-9", "url": "/", "at": T0}, {"$set": {"expiresAt": gone}}
    )
    await store.web_sessions.update_one(
        {"cookie": "c-9", "startedAt": T0 + timedelta(minutes=100)}, {"$set": {"expiresAt": gone}}
    )
    journey = await sessions(api, contact)
    assert journey["webSessionCount"] == 2
    assert session_shapes(journey)[0] == (at(0), 2)
    node = journey["webSessions"]["edges"][0]["node"]
    assert node["events"]["totalCount"] == 1
    assert [e["node"]["at"] for e in node["events"]["edges"]] == [at(1)]
    assert at(100) not in [n["startedAt"] for n in await timeline(api, contact)]
    # the stored documents are still there: only the reads hide them (before the TTL sweep)
    assert await store.web_events.count_documents({"cookie": "c-9"}) == 6


async def test_an_unknown_contacts_journey_is_null(api: Api) -> None:
    data = await api.gql(SESSIONS, {"id": "000000000000000000000000"})
    assert data["journey"] is None


async def test_a_cookie_the_org_blocked_is_refused(api: Api, store: Store) -> None:
    async def block(session: Any) -> None:
        await blocked_identifiers.add_blocked(
            store, "acme", ["COOKIE:shared-kiosk"], session=session
        )

    await store.in_transaction(block)
    _, errors = await api.gql_error(RECORD, {"events": [view("c-1", 0), view("shared-kiosk", 1)]})
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert await store.web_events.count_documents({}) == 0
    assert await record(api, view("shared-kiosk", 1), org="other")  # another org's list


async def test_concurrent_batches_of_one_cookie_make_one_session(api: Api, store: Store) -> None:
    contact = await create_curated(api, workEmail="ann@example.com")  # never renewed
    chat = {
        "conversationId": "chat-busy",
        "channel": "WEB_MESSAGING",
        "startedAt": at(0),
        "identifiers": [{"type": "COOKIE", "value": "busy"}],
        "provided": {"workEmail": "ann@example.com"},
    }
    await api.gql(INTERACTION, {"input": chat})  # the cookie is the person's, with no visits
    batches = [[view("busy", m), view("busy", m + 40)] for m in (5, 10, 15, 20, 25, 30)]
    await asyncio.gather(*(record(api, *b) for b in batches))
    assert session_shapes(await sessions(api, contact)) == [(at(5), 12)]
    assert await store.web_sessions.count_documents({}) == 1


async def test_concurrent_batches_after_a_stored_session_make_one_more_session(
    api: Api, store: Store
) -> None:
    """The cookie has a session already: each batch starts a new one after it (writing
    nothing of the stored one, and within the hour: no renewal rewrites the visitor's
    claim), so only the guard makes them see each other."""
    [visitor] = await record(api, view("busy", 0))
    batches = [[view("busy", m), view("busy", m + 2)] for m in (35, 38, 41, 44, 47, 50)]
    await asyncio.gather(*(record(api, *b) for b in batches))
    assert session_shapes(await sessions(api, visitor)) == [(at(35), 12), (at(0), 1)]
    assert await store.web_sessions.count_documents({}) == 2


async def test_concurrent_late_batches_join_an_older_session_once(api: Api, store: Store) -> None:
    """Late events land between two stored sessions (the newest not written): concurrent
    batches must still see each other's sessions."""
    visitor, _ = await record(api, view("late", 0), view("late", 300))
    batches = [[view("late", m)] for m in (100, 110, 120, 130, 140, 150)]
    await asyncio.gather(*(record(api, *b) for b in batches))
    shapes = session_shapes(await sessions(api, visitor))
    assert shapes == [(at(300), 1), (at(100), 6), (at(0), 1)]
    assert await store.web_sessions.count_documents({}) == 3


CLAIM = """mutation Claim($id: ID!, $v: String!) {
  claimIdentifier(contactId: $id, identifier: {type: COOKIE, value: $v}) { value }
}"""
RELEASE = "mutation Release($v: String!) { releaseIdentifier(type: COOKIE, value: $v) }"


async def test_claiming_and_releasing_a_cookie_by_hand_moves_its_sessions(api: Api) -> None:
    person = await create_curated(api, workEmail="ann@example.com")
    [visitor] = await record(api, view("kiosk", 0))
    assert (await api.gql(RELEASE, {"v": "kiosk"}))["releaseIdentifier"] is True
    assert (await sessions(api, visitor))["webSessionCount"] == 0
    await api.gql(CLAIM, {"id": person, "v": "kiosk"})
    assert session_shapes(await sessions(api, person)) == [(at(0), 1)]


async def test_changes_of_a_batch_name_the_tokens_sub(api: Api, store: Store) -> None:
    """Contract section 7: Change.by is the token's sub, also for what resolving a batch's
    cookies writes: an auto-created visitor, a cookie moved by a form fill, a value handed
    to the contact that lists it (its claim was released without a taker)."""
    person = await create_curated(api, workEmail="ann@example.com")
    lister = await create_curated(api, workEmail="bob@example.com")
    await store.identifiers.delete_one({"org": "acme", "key": "EMAIL:bob@example.com"})
    [visitor] = await record_as(api, "tracker-1", view("phone", 0))
    ids = await record_as(api, "tracker-1", form("phone", 5, workEmail="ann@example.com"))
    assert ids == [person]
    [bob] = await record_as(api, "tracker-1", form("desk", 6, workEmail="bob@example.com"))
    assert bob == lister
    found = await store.changes.find({"org": "acme"}).sort("seq", 1).to_list()
    made = [(c["kind"], c["contactId"], c["by"]) for c in found[2:]]  # after the two creates
    assert made == [
        ("CONTACT_CREATED", visitor, "tracker-1"),
        ("IDENTIFIER_CLAIMED", visitor, "tracker-1"),  # the new visitor's cookie
        ("IDENTIFIER_CLAIMED", person, "tracker-1"),  # the cookie moved
        ("IDENTIFIER_CLAIMED", lister, "tracker-1"),  # bob's email, handed to its lister
        ("IDENTIFIER_CLAIMED", lister, "tracker-1"),  # the desk cookie, stitched
    ]


async def record_as(api: Api, sub: str, *events: dict[str, Any]) -> list[str]:
    data = await api.gql(RECORD, {"events": list(events)}, sub=sub)
    ids: list[str] = data["recordWebEvents"]["contactIds"]
    return ids
