"""The seed documents' stories, written through the resolvers exactly as agents and channels
would write them, so a newcomer can find each one in GraphiQL after ``scv seed``.

1. Alexis and David share +1 803-123-0000; a call from it resolves to Alexis (created
   first), with David among ``otherMatches``.
2. A cookie-only web visitor: an EPHEMERAL contact, its expiry renewed by a second visit.
3. A form fill stitches a cookie to a known person: Maria's web chat with her email, after
   which her cookie alone finds her.
4. A WhatsApp contact: the number is a WHATSAPP identifier only, never looked up as a phone.
5. A campaign call to Alexis' number stays unlinked until an agent links it by hand.
6. Merged contacts: Sam Lee (curated) with the contacts his email and his phone
   auto-created, one merge set whose journey holds every channel.
7. Cross-device stitching: Priya browses on her laptop and her phone as an anonymous
   visitor, fills in a form on each (her email on one, her phone on the other), then chats:
   her timeline shows both devices' visits, before and after the form fills, and the chat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from resolvers.clock import now
from resolvers.contacts import create_contact, get_canonical
from resolvers.conversations import link_conversation
from resolvers.documents import ContactDoc
from resolvers.interactions import Resolution, record_interaction
from resolvers.merges import merge_contacts
from resolvers.principal import Principal
from resolvers.store import Store
from resolvers.web_events import record_web_events

STORY_PREFIX = "story-"


@dataclass(frozen=True)
class Story:
    title: str
    contact_id: str
    look_at: str  # what to query in GraphiQL


class _Writer:
    def __init__(self, store: Store, principal: Principal) -> None:
        self.store = store
        self.principal = principal
        self.at = now()

    async def contact(self, **fields: Any) -> ContactDoc:
        return await create_contact(self.store, self.principal, fields)

    async def interaction(
        self,
        cid: str,
        channel: str,
        days_ago: float,
        identifiers: list[tuple[str, str]],
        provided: Mapping[str, Any] | None = None,
        **details: Any,
    ) -> Resolution:
        raw: dict[str, Any] = {
            "conversationId": STORY_PREFIX + cid,
            "channel": channel,
            "startedAt": self.at - timedelta(days=days_ago),
            "identifiers": [{"type": t, "value": v} for t, v in identifiers],
            "provided": provided,
            **details,
        }
        if channel in ("CAMPAIGN", "CALLBACK"):
            raw["direction"] = "OUTBOUND"
        return await record_interaction(self.store, self.principal, raw)


def _id(resolution: Resolution) -> str:
    assert resolution.contact is not None
    contact_id: str = resolution.contact["_id"]
    return contact_id


async def write_stories(store: Store, principal: Principal) -> list[Story]:
    """Write the seven stories into ``principal.org``; returns where to find each."""
    w = _Writer(store, principal)
    shared = "+1 803-123-0000"

    alexis = await w.contact(firstName="Alexis", lastName="Smith", cellPhone=shared)
    await w.contact(firstName="David", lastName="Jones", cellPhone=shared)
    await w.interaction(
        "alexis-call", "VOICE", 2, [("PHONE", shared)], queue="Billing", agent="agent-07"
    )

    await w.interaction("visitor-1", "WEB_MESSAGING", 9, [("COOKIE", "gc-visitor")])
    await w.interaction("visitor-2", "WEB_MESSAGING", 2, [("COOKIE", "gc-visitor")])

    await w.contact(firstName="Maria", lastName="Garcia", workEmail="maria.garcia@example.com")
    await w.interaction(
        "maria-form",
        "WEB_CHAT",
        5,
        [("COOKIE", "gc-maria")],
        provided={"firstName": "Maria", "workEmail": "Maria.Garcia@example.com"},
        notes="filled in the contact form",
    )
    await w.interaction("maria-return", "WEB_MESSAGING", 1, [("COOKIE", "gc-maria")])

    await w.interaction("whatsapp-1", "WHATSAPP", 3, [("PHONE", "+1 803-555-0142")])

    await w.interaction("campaign-1", "CAMPAIGN", 4, [("PHONE", shared)], queue="Renewals")
    await link_conversation(store, principal, STORY_PREFIX + "campaign-1", alexis["_id"])

    sam = await w.contact(firstName="Sam", lastName="Lee", workEmail="sam.lee@example.com")
    by_email = await w.interaction("sam-email", "EMAIL", 20, [("EMAIL", "sam@mail.example")])
    by_phone = await w.interaction("sam-sms", "SMS", 12, [("PHONE", "+1 803-555-0177")])
    await w.interaction("sam-call", "VOICE", 6, [("PHONE", "+1 803-555-0177")])
    await merge_contacts(store, principal, [sam["_id"], _id(by_email), _id(by_phone)])
    await w.interaction("sam-after-merge", "EMAIL", 1, [("EMAIL", "sam@mail.example")])

    await _cross_device(w)
    return await told_stories(store, principal.org)


async def _cross_device(w: _Writer) -> None:
    """Story 7: two anonymous devices, a form fill on each, one person's timeline."""
    await w.contact(
        firstName="Priya",
        lastName="Patel",
        workEmail="priya.patel@example.com",
        cellPhone="+1 803-555-0190",
    )

    def visit(cookie: str, days_ago: float, *urls: str) -> list[dict[str, Any]]:
        start = w.at - timedelta(days=days_ago)
        return [
            {
                "cookie": cookie,
                "type": "PAGE_VIEW",
                "at": start + timedelta(minutes=3 * n),
                "url": url,
            }
            for n, url in enumerate(urls)
        ]

    def form(cookie: str, days_ago: float, **provided: str) -> dict[str, Any]:
        at = w.at - timedelta(days=days_ago)
        return {
            "cookie": cookie,
            "type": "FORM_SUBMIT",
            "at": at,
            "url": "/contact-us",
            "provided": provided,
        }

    laptop, phone = "gc-priya-laptop", "gc-priya-phone"
    batches = [
        visit(laptop, 6, "/", "/pricing", "/products/phones"),  # anonymous: EPHEMERAL
        visit(phone, 4, "/", "/products/phones"),
        [form(laptop, 3, firstName="Priya", workEmail="Priya.Patel@example.com")],
        [form(phone, 2, cellPhone="(803) 555-0190")],
        visit(laptop, 1, "/checkout"),
    ]
    for batch in batches:
        await record_web_events(w.store, w.principal, batch)
    await w.interaction("priya-chat", "WEB_MESSAGING", 0.5, [("COOKIE", phone)])


# (title, the story's conversation, what to query: {id} is the canonical contact it is about)
STORIES = (
    (
        "Alexis and David share a number; the call goes to Alexis",
        "alexis-call",
        'conversation(id: "story-alexis-call") { contact { firstName } }',
    ),
    (
        "A cookie-only web visitor (EPHEMERAL, renewed by a second visit)",
        "visitor-2",
        'identifier(type: COOKIE, value: "gc-visitor") { contact { type expiresAt } }',
    ),
    (
        "A form fill stitches a cookie to Maria",
        "maria-return",
        'identifier(type: COOKIE, value: "gc-maria") { contact { firstName } }',
    ),
    (
        "A WhatsApp contact (never looked up as a phone)",
        "whatsapp-1",
        'identifier(type: WHATSAPP, value: "+18035550142") { contact { whatsAppId } }',
    ),
    (
        "A campaign call, linked to Alexis by hand",
        "campaign-1",
        'conversation(id: "story-campaign-1") { externalContactId individual { id } }',
    ),
    (
        "Sam Lee merged with the contacts his email and phone created",
        "sam-after-merge",
        'journey(contactId: "{id}") { channels conversations { edges { node { id channel } } } }',
    ),
    (
        "Priya on two devices: a form fill on each stitches both to her",
        "priya-chat",
        'journey(contactId: "{id}") { webSessionCount timeline(first: 10) { edges { node { '
        "__typename ... on WebSession { startedAt landingUrl pageViews } "
        "... on Conversation { channel startedAt } } } } }",
    ),
)


async def told_stories(store: Store, org: str) -> list[Story]:
    """The stories already written into ``org`` (read back: ids as stored), [] before."""
    cids = [STORY_PREFIX + cid for _, cid, _ in STORIES]
    found = store.conversations.find(
        {"org": org, "cid": {"$in": cids}}, {"cid": 1, "externalContactId": 1}
    )
    linked = {doc["cid"]: doc.get("externalContactId") async for doc in found}
    stories: list[Story] = []
    for title, cid, look_at in STORIES:
        contact_id = linked.get(STORY_PREFIX + cid)
        if contact_id is None:
            return []  # not (completely) told
        canonical = await get_canonical(store, org, contact_id)
        contact_id = canonical["_id"] if canonical is not None else contact_id
        stories.append(Story(title, contact_id, look_at.replace("{id}", contact_id)))
    return stories
