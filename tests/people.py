"""A person seeded through every path the API offers, for the erasure and export tests.

:func:`seed_person` builds, in org ``acme`` through the GraphQL API:

- a CURATED contact with a name, phones, emails, an external id, an address and two notes;
- two contacts auto-created by interactions (a call from a new phone; a web chat with a cookie
  and a new email), merged with the curated one; then a WhatsApp message auto-creates a
  third, merged into the set again (two MERGE events);
- conversations on several channels linked to members (VOICE, WEB_CHAT, SMS, WHATSAPP) and
  an unlinked CALLBACK that carries the person's phone (a mention, not a link: the
  conversation stays, the phone goes from it).

:class:`Person` remembers every personal value and every id that must not survive an
erasure, and the canonical contact's id. ``bystander`` adds someone else, who must survive.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Api

CREATE = "mutation($i: ContactInput!) { createContact(input: $i) { id } }"
NOTE = "mutation($id: ID!, $t: String!) { addNote(contactId: $id, text: $t) { id } }"
RECORD = """mutation($i: InteractionInput!) {
  recordInteraction(input: $i) { conversation { id } contact { id } created }
}"""
MERGE = "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"
LINK = "mutation($c: ID!, $id: ID!) { linkConversation(conversationId: $c, contactId: $id) { id } }"


@dataclass
class Person:
    canonical_id: str = ""
    contact_ids: list[str] = field(default_factory=list)  # every member ever created
    values: set[str] = field(default_factory=set)  # names, phones, emails, cookies, …
    identifiers: list[tuple[str, str]] = field(default_factory=list)  # (type, normalised value)
    ids: set[str] = field(default_factory=set)  # conversation and note ids

    @property
    def secrets(self) -> set[str]:
        return self.values | self.ids


def _tag() -> str:
    return uuid.uuid4().hex[:8]


async def record(
    api: Api,
    person: Person,
    channel: str,
    identifiers: list[tuple[str, str]],
    *,
    minutes_ago: int = 5,
    **details: Any,
) -> tuple[str, str | None]:
    cid = f"conv-{channel.lower()}-{_tag()}"
    person.ids.add(cid)
    started = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    data = await api.gql(
        RECORD,
        {
            "i": {
                "conversationId": cid,
                "channel": channel,
                "startedAt": started.isoformat(),
                "identifiers": [{"type": t, "value": v} for t, v in identifiers],
                **details,
            }
        },
    )
    contact = data["recordInteraction"]["contact"]
    return cid, contact["id"] if contact else None


async def seed_person(api: Api) -> Person:
    person = Person()
    tag = _tag()
    digits = str(int(tag, 16) % 9_000_000 + 1_000_000)  # 7 digits: collisions are rare
    phone, phone2 = f"+1803{digits}", f"+1843{digits}"
    email, email2 = f"erin.{tag}@example.com", f"erin.chat.{tag}@example.com"
    cookie, whatsapp = f"ck-{tag}", f"+1864{digits}"
    first, last = f"Erin{tag}", f"Vanish{tag}"
    person.values |= {phone, phone2, email, email2, cookie, whatsapp, first, last}
    person.values |= {f"crm-{tag}", f"{tag} Lane", f"Quiet note {tag}", f"Agent remark {tag}"}
    person.identifiers = [
        ("PHONE", phone),
        ("PHONE", phone2),
        ("EMAIL", email),
        ("EMAIL", email2),
        ("COOKIE", cookie),
        ("WHATSAPP", whatsapp),
        ("EXTERNAL_ID", f"crm:crm-{tag}"),
    ]
    curated = await api.gql(
        CREATE,
        {
            "i": {
                "firstName": first,
                "lastName": last,
                "workPhone": phone,
                "workEmail": email,
                "externalIds": [{"source": "crm", "value": f"crm-{tag}"}],
                "address": {"line1": f"{tag} Lane", "city": "Columbia", "postalCode": "29201"},
            }
        },
    )
    curated_id = curated["createContact"]["id"]
    for text in (f"Quiet note {tag}", f"Agent remark {tag}"):
        note = await api.gql(NOTE, {"id": curated_id, "t": text})
        person.ids.add(note["addNote"]["id"])
    _, called = await record(api, person, "VOICE", [("PHONE", phone2)], minutes_ago=50)
    _, chatted = await record(
        api, person, "WEB_CHAT", [("COOKIE", cookie), ("EMAIL", email2)], minutes_ago=40
    )
    assert called is not None and chatted is not None
    merged = await api.gql(MERGE, {"ids": [curated_id, called, chatted]})
    head = merged["mergeContacts"]["id"]
    await record(api, person, "SMS", [("PHONE", phone)], minutes_ago=30, agent=f"agent {tag}")
    _, texted = await record(api, person, "WHATSAPP", [("WHATSAPP", whatsapp)], minutes_ago=20)
    assert texted is not None
    merged = await api.gql(MERGE, {"ids": [head, texted]})
    person.canonical_id = merged["mergeContacts"]["id"]
    person.contact_ids = [curated_id, called, chatted, head, texted, person.canonical_id]
    callback, _ = await record(api, person, "CALLBACK", [("PHONE", phone)], minutes_ago=10)
    person.ids.discard(callback)  # not the person's conversation: it only carries the phone
    return person


async def relink(api: Api, person: Person) -> str:
    """Link the person's SMS conversation to the first ancestor by hand: the feed then
    names the conversation (CONVERSATION_UNLINKED and _LINKED). Returns its id."""
    sms = next(i for i in person.ids if i.startswith("conv-sms"))
    await api.gql(LINK, {"c": sms, "id": person.contact_ids[0]})
    return sms


async def bystander(api: Api) -> tuple[str, set[str]]:
    """Someone else: a curated contact with a phone and one conversation. (id, values)"""
    tag = _tag()
    digits = str(int(tag, 16) % 9_000_000 + 1_000_000)
    phone = f"+1912{digits}"
    data = await api.gql(
        CREATE, {"i": {"firstName": f"Stay{tag}", "lastName": "Here", "cellPhone": phone}}
    )
    contact_id: str = data["createContact"]["id"]
    cid = f"conv-stay-{tag}"
    await api.gql(
        RECORD,
        {
            "i": {
                "conversationId": cid,
                "channel": "VOICE",
                "startedAt": datetime.now(UTC).isoformat(),
                "identifiers": [{"type": "PHONE", "value": phone}],
            }
        },
    )
    return contact_id, {phone, f"Stay{tag}", cid}
