"""Web journeys cost a constant number of database commands, whatever the page or batch size.

A person claims three cookies with 60 sessions of 8 events between them, and has 100
conversations; a timeline page, and ``webSessions`` with each session's first five events and
its contact, cost the same commands for a small and a large page. A batch of events over
known cookies costs the same commands for 10 events of 2 cookies and 500 events of 50.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bench.command_log import CommandLog
from resolvers import claims, web_sessions
from resolvers.clock import now
from resolvers.contacts import new_id
from resolvers.identifiers import IdentifierType, key
from resolvers.store import Store
from resolvers.web_documents import WebEventDoc
from schema.scalars import serialize_datetime
from tests.conftest import Api
from tests.factories import add_contact, conversation_doc

TIMELINE = """
query Timeline($id: ID!, $first: Int) {
  journey(contactId: $id) {
    timeline(first: $first) {
      pageInfo { hasNextPage endCursor }
      edges { cursor node {
        ... on Conversation { id startedAt channel }
        ... on WebSession { id startedAt eventCount }
      } }
    }
  }
}
"""

SESSIONS = """
query Sessions($id: ID!, $first: Int) {
  journey(contactId: $id) {
    webSessionCount
    webSessions(first: $first) {
      totalCount
      edges { node {
        id startedAt pageViews contact { id }
        events(first: 5) { totalCount edges { node { id type at url } } }
      } }
    }
  }
}
"""

RECORD = """
mutation Web($events: [WebEventInput!]!) { recordWebEvents(events: $events) { accepted } }
"""


def event_doc(cookie: str, at: Any, n: int, retention_days: int) -> WebEventDoc:
    event_id = new_id()
    return {
        "_id": event_id,
        "eventId": event_id,
        "org": "acme",
        "cookie": cookie,
        "type": "PAGE_VIEW",
        "at": at,
        "url": f"/page/{n}",
        "title": None,
        "referrer": None,
        "name": None,
        "attributes": [],
        "expiresAt": at + timedelta(days=retention_days),
    }


async def seed_person(store: Store, sessions: int = 60, conversations: int = 100) -> str:
    """A curated person claiming three cookies with ``sessions`` sessions of 8 events, and
    ``conversations`` conversations."""
    person = await add_contact(store)
    cookies = [f"device-{n}" for n in range(3)]
    for cookie in cookies:
        claim = claims.claim_doc("acme", key(IdentifierType.COOKIE, cookie), person, "interaction")
        await store.identifiers.insert_one(claim)
    start = now() - timedelta(days=20)
    events: list[WebEventDoc] = []
    for s in range(sessions):
        begins = start + timedelta(hours=3 * s)
        cookie = cookies[s % 3]
        events.extend(
            event_doc(cookie, begins + timedelta(minutes=2 * n), n, store.config.retention_days)
            for n in range(8)
        )
    await store.web_events.insert_many(events)
    await web_sessions.rebuild(store, "acme", events)
    await store.conversations.insert_many(
        [
            conversation_doc(store, f"conv-{n}", start + timedelta(hours=3 * n + 1), person["_id"])
            for n in range(conversations)
        ]
    )
    return person["_id"]


async def commands(api: Api, log: CommandLog, query: str, variables: dict[str, Any]) -> list[str]:
    log.clear()
    data = await api.gql(query, variables)
    assert data
    return log.names(get_more=False)


async def test_a_timeline_page_costs_the_same_commands_for_5_and_200_items(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    api, log = counted
    person = await seed_person(store)
    small = await commands(api, log, TIMELINE, {"id": person, "first": 5})
    large = await commands(api, log, TIMELINE, {"id": person, "first": 150})
    print(f"\ntimeline of 5: {small}\ntimeline of 150: {large}")
    assert small == large
    assert len(large) <= 4, large  # the contact, its conversations, its cookies, their sessions


async def test_sessions_with_their_events_cost_the_same_commands_for_5_and_50_sessions(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    api, log = counted
    person = await seed_person(store)
    small = await commands(api, log, SESSIONS, {"id": person, "first": 5})
    large = await commands(api, log, SESSIONS, {"id": person, "first": 50})
    print(f"\nsessions of 5: {small}\nsessions of 50: {large}")
    assert small == large
    assert len(large) <= 8, large


async def test_a_batch_of_known_cookies_costs_the_same_commands_for_10_and_500_events(
    counted: tuple[Api, CommandLog], store: Store
) -> None:
    api, log = counted
    start = now() - timedelta(hours=5)

    def batch(cookies: int, events: int, offset: int) -> list[dict[str, Any]]:
        return [
            {
                "cookie": f"visitor-{n % cookies}",
                "type": "PAGE_VIEW",
                "at": serialize_datetime(start + timedelta(seconds=offset + n)),
                "url": f"/p/{n}",
            }
            for n in range(events)
        ]

    await api.gql(RECORD, {"events": batch(50, 50, 0)})  # every visitor known from now on
    small = await commands(api, log, RECORD, {"events": batch(2, 10, 100)})
    large = await commands(api, log, RECORD, {"events": batch(50, 500, 200)})
    print(f"\nbatch of 10: {small}\nbatch of 500: {large}")
    assert small == large
    assert large == [
        "find:identity_settings",  # the org's blocked identifiers
        "aggregate:identifiers",  # the cookies' holders
        "find:web_sessions",  # the cookies' sessions (in the transaction from here)
        "update:web_sessions",  # their rewrites (no claim touched: the sessions guard)
        "insert:web_events",
        "commitTransaction:1",
    ]
