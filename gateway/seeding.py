"""A reproducible, realistic demo data set: contacts, merge sets and conversations.

``seed`` writes, for one org:

- contacts of every type: CURATED (names, phones, emails, social and external ids),
  IDENTIFIED (auto-created by an interaction: a phone, email or social id) and EPHEMERAL
  (a cookie only), each claiming its identifiers exactly as the resolvers would (field
  claims for curated contacts, interaction claims for auto-created ones and cookies);
- merge sets of 3 to 10 members, made by the merge resolver itself (a merge creates a new
  canonical contact, so a set has at least three members: two inputs and the new head);
- conversations over every channel in the retention period, linked the way
  ``recordInteraction`` links them: resolvable channels to a contact (ancestors keep the
  conversations they had before their merge, later ones go to the canonical), the
  unresolved channels (OPEN_MESSAGING, CALLBACK, CAMPAIGN) to none.

Contacts, claims and conversations are bulk-inserted as the documents the resolvers write;
auto-created contacts expire ``retention_days`` after their latest conversation. The same
``seed`` gives the same data (ids included, apart from the merge resolver's new heads).
"""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bson import ObjectId

from resolvers import claims, conversation_counts, merges
from resolvers.clock import now, to_db_precision
from resolvers.contact_fields import ContactType
from resolvers.contacts import new_contact_doc
from resolvers.conversations import UNRESOLVED_CHANNELS, Channel, Direction
from resolvers.documents import (
    ClaimDoc,
    ContactDoc,
    ContactFields,
    ConversationDoc,
    SeenIdentifierDoc,
    field_of,
)
from resolvers.errors import Conflict
from resolvers.identifiers import IdentifierType, key
from resolvers.principal import Permission, Principal
from resolvers.store import Store

Progress = Callable[[int], None]

BATCH = 2000
TWIN_EVERY = 25  # one curated contact in 25 is a planted duplicate of the one before it
HISTORY = timedelta(days=55)  # conversations start within this, inside the retention period
CHANNEL_WEIGHTS: dict[Channel, int] = {
    Channel.VOICE: 30,
    Channel.SMS: 8,
    Channel.EMAIL: 14,
    Channel.WEB_MESSAGING: 10,
    Channel.WEB_CHAT: 6,
    Channel.FACEBOOK: 4,
    Channel.TWITTER: 2,
    Channel.WHATSAPP: 8,
    Channel.LINE: 1,
    Channel.INSTAGRAM: 3,
    Channel.OPEN_MESSAGING: 4,
    Channel.CALLBACK: 5,
    Channel.CAMPAIGN: 5,
}
SOCIAL_CHANNELS: dict[Channel, tuple[IdentifierType, str]] = {
    Channel.FACEBOOK: (IdentifierType.FACEBOOK, "facebookId"),
    Channel.TWITTER: (IdentifierType.TWITTER, "twitterId"),
    Channel.LINE: (IdentifierType.LINE, "lineId"),
    Channel.INSTAGRAM: (IdentifierType.INSTAGRAM, "instagramId"),
}
FIRST_NAMES = [
    "Alexis",
    "Amelia",
    "Ana",
    "Ben",
    "Carlos",
    "Chloe",
    "Daniel",
    "David",
    "Elena",
    "Emma",
    "Fatima",
    "Grace",
    "Hana",
    "Hugo",
    "Ines",
    "Isaac",
    "Jack",
    "James",
    "Julia",
    "Kai",
    "Laura",
    "Leo",
    "Lucas",
    "Maria",
    "Mateo",
    "Mia",
    "Noah",
    "Nora",
    "Olivia",
    "Omar",
    "Priya",
    "Rafael",
    "Sara",
    "Sofia",
    "Tom",
    "Wei",
    "Yara",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Smith",
    "Jones",
    "Garcia",
    "Martin",
    "Muller",
    "Rossi",
    "Silva",
    "Kowalski",
    "Nguyen",
    "Kim",
    "Tanaka",
    "Patel",
    "Khan",
    "Cohen",
    "Dubois",
    "Jansen",
    "Larsen",
    "Novak",
    "Horvat",
    "Ivanova",
    "Brown",
    "Wilson",
    "Taylor",
    "Lopez",
    "Costa",
    "Moreau",
    "Weber",
    "Schmidt",
    "Fischer",
    "Murphy",
]
AREA_CODES = ("803", "704", "919", "212", "415", "312", "617", "206")
QUEUES = ("Sales", "Support", "Billing", "Retention", "Technical")
WRAP_UPS = ("Resolved", "Follow-up", "Escalated", "No answer", "Callback scheduled")
STATUSES = ("completed", "completed", "completed", "abandoned", "transferred")


@dataclass
class SeedResult:
    """What was written, and handles a benchmark or a demo can use."""

    contacts: int = 0
    conversations: int = 0
    merge_sets: dict[str, int] = field(default_factory=dict)  # set id -> size
    set_heads: dict[str, str] = field(default_factory=dict)  # set id -> canonical id
    phones: list[str] = field(default_factory=list)  # claimed by unmerged curated contacts
    web_events: int = 0  # written by gateway.web_seeding (scv seed)
    stitched_visitors: int = 0


@dataclass
class _Person:
    """A contact as planned, before it is written."""

    doc: ContactDoc
    cookie: str | None = None
    via: str = claims.VIA_FIELD
    unclaimed: frozenset[str] = frozenset()  # values an older twin lists and holds
    conversations: list[datetime] = field(default_factory=list)


def object_id(rng: random.Random, moment: datetime) -> str:
    """A time-ordered ObjectId drawn from the seeded generator (reproducible)."""
    return str(ObjectId(struct.pack(">I", int(moment.timestamp())) + rng.randbytes(8)))


def _cid(number: int) -> str:
    return f"seed-{number:07d}"


def _phone(n: int) -> str:
    area = AREA_CODES[n % len(AREA_CODES)]
    return f"+1{area}{2000000 + n // len(AREA_CODES):07d}"


def _plan_people(
    store: Store, org: str, count: int, rng: random.Random, ids: random.Random, at: datetime
) -> list[_Person]:
    people: list[_Person] = []
    for n in range(count):
        roll = rng.random()
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        cookie: str | None = None
        if roll < 0.4:
            kind = ContactType.CURATED
            fields = _curated_fields(rng, n, first, last)
            created = at - timedelta(days=rng.uniform(60, 700))
            via = claims.VIA_FIELD
        elif roll < 0.85:
            kind = ContactType.IDENTIFIED
            fields = _identified_fields(rng, n, first)
            created = at - timedelta(days=rng.uniform(1, 55))
            cookie = f"gc-{n:06d}" if rng.random() < 0.3 else None
            via = claims.VIA_INTERACTION
        else:
            kind = ContactType.EPHEMERAL
            fields = {}
            created = at - timedelta(days=rng.uniform(1, 55))
            cookie = f"gc-{n:06d}"
            via = claims.VIA_INTERACTION
        created = to_db_precision(created)
        doc = new_contact_doc(store, org, fields, kind, moment=created)
        doc["_id"] = doc["canonicalId"] = object_id(ids, created)
        people.append(_Person(doc=doc, cookie=cookie, via=via))
    return people


def _plant_twins(store: Store, org: str, people: list[_Person], rng: random.Random) -> None:
    """Make every TWIN_EVERY-th curated contact a later duplicate of the curated contact
    before it: the same name and that contact's work email as its personal email (a shared
    identifier and a similar name: a pair duplicateClusters shows at its default 0.9)."""
    curated = [p for p in people if p.doc["type"] == ContactType.CURATED]
    for number in range(TWIN_EVERY - 1, len(curated), TWIN_EVERY):
        original, twin = curated[number - 1], curated[number]
        shared = original.doc["workEmail"]
        fields: ContactFields = {
            "firstName": original.doc["firstName"],
            "lastName": original.doc["lastName"],
            "cellPhone": twin.doc["cellPhone"],
            "workEmail": twin.doc["workEmail"],
            "personalEmail": shared,
        }
        created = to_db_precision(original.doc["createdAt"] + timedelta(days=rng.uniform(1, 30)))
        doc = new_contact_doc(store, org, fields, ContactType.CURATED, moment=created)
        doc["_id"] = doc["canonicalId"] = object_id(rng, created)
        twin.doc = doc
        twin.unclaimed = frozenset(k for k in doc["keys"] if k in original.doc["keys"])


def _curated_fields(rng: random.Random, n: int, first: str, last: str) -> ContactFields:
    fields: ContactFields = {
        "firstName": first,
        "lastName": last,
        "cellPhone": _phone(n),
        "workEmail": f"{first}.{last}.{n}@example.com".lower(),
    }
    if rng.random() < 0.3:
        fields["title"] = rng.choice(("Ms", "Mr", "Dr"))
    if rng.random() < 0.25:
        fields["twitterId"] = f"@{first.lower()}{n}"
    if rng.random() < 0.1:
        fields["instagramId"] = f"{first.lower()}.{n}"
    if rng.random() < 0.3:
        fields["externalIds"] = [{"source": "crm", "value": f"C-{n:06d}"}]
    if rng.random() < 0.2:
        fields["address"] = {
            "line1": f"{rng.randint(1, 999)} Main St",
            "line2": None,
            "city": "Columbia",
            "state": "SC",
            "postalCode": f"29{rng.randint(100, 999)}",
            "countryCode": "US",
        }
    return fields


def _identified_fields(rng: random.Random, n: int, first: str) -> ContactFields:
    fields: ContactFields = {}
    pick = rng.random()
    if pick < 0.5:
        fields["cellPhone"] = _phone(n)
    elif pick < 0.8:
        fields["personalEmail"] = f"{first}{n}@mail.example".lower()
    else:
        fields["whatsAppId"] = _phone(n)
    if rng.random() < 0.3:
        fields["facebookId"] = f"fb.{n}"
    if rng.random() < 0.1:
        fields["instagramId"] = f"ig.{n}"
    if rng.random() < 0.08:
        fields["lineId"] = f"line.{n}"
    if rng.random() < 0.2:
        fields["firstName"] = first
    return fields


def _identifier_for(person: _Person, channel: Channel) -> SeenIdentifierDoc | None:
    doc = person.doc
    if channel in (Channel.VOICE, Channel.SMS, Channel.CALLBACK):
        phone = doc.get("cellPhone") or doc.get("workPhone") or doc.get("whatsAppId")
        return {"type": "PHONE", "value": phone} if phone else None
    if channel is Channel.EMAIL:
        email = doc.get("workEmail") or doc.get("personalEmail")
        return {"type": "EMAIL", "value": email} if email else None
    if channel is Channel.WHATSAPP:
        number = doc.get("whatsAppId") or doc.get("cellPhone")
        return {"type": "WHATSAPP", "value": number} if number else None
    if channel in SOCIAL_CHANNELS:
        kind, slot = SOCIAL_CHANNELS[channel]
        value = field_of(doc, slot)
        return {"type": str(kind), "value": value} if value else None
    if person.cookie:
        return {"type": "COOKIE", "value": person.cookie}
    return None


def _channel_for(person: _Person, rng: random.Random, channels: Sequence[Channel]) -> Channel:
    """A channel this person can be reached on (any channel for the unresolved ones)."""
    for _ in range(8):
        channel = rng.choices(channels, weights=[CHANNEL_WEIGHTS[c] for c in channels])[0]
        if channel in UNRESOLVED_CHANNELS or _identifier_for(person, channel) is not None:
            return channel
    return Channel.WEB_MESSAGING if person.cookie else Channel.OPEN_MESSAGING


def _conversation_doc(
    store: Store,
    org: str,
    rng: random.Random,
    ids: random.Random,
    number: int,
    channel: Channel,
    started: datetime,
    seen: list[SeenIdentifierDoc],
    contact_id: str | None,
    written: datetime,
) -> ConversationDoc:
    """The document ``recordInteraction`` stores for such an interaction."""
    duration = rng.uniform(20, 1800) if channel is not Channel.CAMPAIGN else rng.uniform(5, 60)
    ended = to_db_precision(started + timedelta(seconds=duration))
    return {
        "_id": object_id(ids, started),
        "org": org,
        "cid": _cid(number),
        "channel": str(channel),
        "direction": str(
            Direction.OUTBOUND
            if channel in (Channel.CAMPAIGN, Channel.CALLBACK) or rng.random() < 0.1
            else Direction.INBOUND
        ),
        "startedAt": started,
        "endedAt": ended,
        "durationSeconds": (ended - started).total_seconds(),
        "identifiers": seen,
        "expiresAt": started + timedelta(days=store.config.retention_days),
        "modifiedAt": written,
        "queue": rng.choice(QUEUES),
        "agent": f"agent-{rng.randint(1, 40):02d}",
        "wrapUpCode": rng.choice(WRAP_UPS),
        "status": rng.choice(STATUSES),
        "notes": "customer asked for a call back" if rng.random() < 0.05 else None,
        "createdAt": written,
        "externalContactId": contact_id,
    }


async def holds_data_set(store: Store, org: str) -> bool:
    """Whether :func:`seed` has written its data set into ``org``."""
    return await store.conversations.find_one({"org": org, "cid": _cid(0)}, {"_id": 1}) is not None


async def reset_org(store: Store, org: str) -> int:
    """Delete every document of ``org`` (web events and sessions, contacts, identifiers,
    conversations, merge sets, notes); returns how many. For ``scv seed --reset`` on a development database."""
    deleted = 0
    for collection in (
        store.web_events,
        store.web_sessions,
        store.identifiers,
        store.merge_sets,
        store.notes,
        store.conversations,
        store.contacts,
    ):
        deleted += (await collection.delete_many({"org": org})).deleted_count
    return deleted


async def seed(
    store: Store,
    org: str,
    *,
    contacts: int = 5000,
    merge_sets: int = 200,
    conversations: int = 50_000,
    seed: int = 42,
    progress: Progress | None = None,
) -> SeedResult:
    """Write the data set; ``progress`` is called with the number of items just written
    (contacts, merge sets and conversations: ``contacts + merge_sets + conversations`` in all).
    """
    rng = random.Random(seed)
    ids = random.Random(f"{org}:{seed}")  # the same data set in two orgs needs other ids
    if await holds_data_set(store, org):
        raise Conflict(f"org {org} already holds a seeded data set")
    tick: Progress = progress or (lambda _n: None)
    at = now()
    result = SeedResult()
    people = _plan_people(store, org, contacts, rng, ids, at)
    _plant_twins(store, org, people, random.Random(f"twins:{org}:{seed}"))
    plan = _plan_conversations(people, conversations, rng, at)
    await _write_people(store, org, people, result, tick)
    # merge sets, through the merge resolver
    heads = await _merge(store, org, people, merge_sets, rng, result, tick)
    writer = _ConversationWriter(store, org, rng, ids, result, tick)
    for number, (channel, started, who) in enumerate(plan):
        person = people[who] if who is not None else None
        seen_one = _identifier_for(person, channel) if person is not None else None
        if seen_one is None and channel in UNRESOLVED_CHANNELS:
            seen_one = {"type": "PHONE", "value": _phone(contacts + number)}
        contact_id: str | None = None
        if person is not None:
            contact_id = person.doc["_id"]
            head = heads.get(contact_id)
            if head is not None and rng.random() < 0.3:
                contact_id = head  # recorded after the merge: resolved to the canonical
        await writer.add(number, channel, started, seen_one, contact_id)
    await writer.flush()
    result.phones = [  # curated, never merged: a known customer calling in
        phone
        for p in people
        if p.doc["type"] == ContactType.CURATED
        and p.doc["_id"] not in heads
        and (phone := p.doc["cellPhone"])
    ][:1000]
    return result


Planned = tuple[Channel, datetime, int | None]  # channel, start, index of the linked person


def _plan_conversations(
    people: list[_Person], count: int, rng: random.Random, at: datetime
) -> list[Planned]:
    """Which person each conversation belongs to: a long tail of occasional callers and some
    regulars (up to 25 times as many conversations); each person notes its conversations."""
    weights = list(itertools.accumulate(min(rng.paretovariate(1.2), 25) for _ in people))
    whom: list[int | None] = (
        list(rng.choices(range(len(people)), cum_weights=weights, k=count))
        if people
        else [None] * count
    )
    channels = list(CHANNEL_WEIGHTS)
    plan: list[Planned] = []
    earliest = at - HISTORY
    for who in whom:
        person = people[who] if who is not None else None
        channel = (
            _channel_for(person, rng, channels)
            if person is not None
            else rng.choice([c for c in channels if c in UNRESOLVED_CHANNELS])
        )
        low = earliest
        if person is not None and person.doc["type"] != ContactType.CURATED:
            low = max(low, person.doc["createdAt"])  # auto-created by its first interaction
        started = to_db_precision(low + (at - low) * rng.random())
        linked = who if channel not in UNRESOLVED_CHANNELS else None
        if linked is not None:
            people[linked].conversations.append(started)
        plan.append((channel, started, linked))
    return plan


async def _write_people(
    store: Store, org: str, people: list[_Person], result: SeedResult, tick: Progress
) -> None:
    """The contacts and their claims, in batches."""
    for start in range(0, len(people), BATCH):
        batch = people[start : start + BATCH]
        docs = [_finish_person(store, p) for p in batch]
        await store.contacts.insert_many(docs)
        claim_docs = [c for p in batch for c in _claims_of(org, p)]
        if claim_docs:
            await store.identifiers.insert_many(claim_docs)
        result.contacts += len(docs)
        tick(len(docs))


@dataclass
class _ConversationWriter:
    """Builds the planned conversations' documents and writes them in batches."""

    store: Store
    org: str
    rng: random.Random
    ids: random.Random
    result: SeedResult
    tick: Progress
    written: datetime = field(default_factory=now)
    batch: list[ConversationDoc] = field(default_factory=list)

    async def add(
        self,
        number: int,
        channel: Channel,
        started: datetime,
        seen_one: SeenIdentifierDoc | None,
        contact_id: str | None,
    ) -> None:
        seen = [seen_one] if seen_one is not None else []
        self.batch.append(
            _conversation_doc(
                self.store,
                self.org,
                self.rng,
                self.ids,
                number,
                channel,
                started,
                seen,
                contact_id,
                self.written,
            )
        )
        if len(self.batch) == BATCH:
            await self.flush()

    async def flush(self) -> None:
        """The conversations and their count buckets, as recordInteraction keeps them."""
        if self.batch:
            await self.store.conversations.insert_many(self.batch)
            changes = [(d["startedAt"], d["channel"], 1) for d in self.batch]
            await conversation_counts.record(self.store, self.org, changes)
            self.result.conversations += len(self.batch)
            self.tick(len(self.batch))
            self.batch = []


def _finish_person(store: Store, person: _Person) -> ContactDoc:
    """Auto-created contacts live until their latest interaction + the retention period."""
    doc = person.doc
    if doc["type"] != ContactType.CURATED:
        last = max(person.conversations, default=doc["createdAt"])
        doc["lastSeenAt"] = last
        doc["expiresAt"] = last + timedelta(days=store.config.retention_days)
    return doc


def _claims_of(org: str, person: _Person) -> list[ClaimDoc]:
    docs = [
        claims.claim_doc(org, k, person.doc, person.via)
        for k in person.doc["keys"]
        if k not in person.unclaimed
    ]
    if person.cookie:
        cookie_key = key(IdentifierType.COOKIE, person.cookie)
        docs.append(claims.claim_doc(org, cookie_key, person.doc, claims.VIA_INTERACTION))
    return docs


async def _merge(
    store: Store,
    org: str,
    people: list[_Person],
    count: int,
    rng: random.Random,
    result: SeedResult,
    tick: Progress,
) -> dict[str, str]:
    """Merge ``count`` groups of 2-9 contacts (at most one curated each); returns each
    ancestor's canonical id. The first set has 10 members (9 inputs and the new head)."""
    principal = Principal(
        org=org, sub="seed", permissions=frozenset({str(Permission.IDENTITY_MERGE)})
    )
    curated = [p for p in people if p.doc["type"] == ContactType.CURATED]
    auto = [p for p in people if p.doc["type"] != ContactType.CURATED]
    rng.shuffle(curated)
    heads: dict[str, str] = {}
    # the first set joins the busiest auto-created contacts: a long journey to page through
    auto.sort(key=lambda p: len(p.conversations))
    busiest, auto = auto[-9:], auto[:-9]
    rng.shuffle(auto)
    for number in range(count):
        inputs_wanted = 9 if number == 0 else rng.randint(2, 9)
        group: list[_Person] = busiest if number == 0 else []
        if number > 0 and curated and rng.random() < 0.6:
            group.append(curated.pop())
        while len(group) < inputs_wanted and auto:
            group.append(auto.pop())
        if len(group) < 2:
            break
        canonical = await merges.merge_contacts(store, principal, [p.doc["_id"] for p in group])
        set_id = canonical["mergeSetId"]
        assert set_id is not None  # a merged canonical heads its set
        for person in group:
            heads[person.doc["_id"]] = canonical["_id"]
            person.doc["mergeSetId"] = set_id
        result.merge_sets[set_id] = len(group) + 1
        result.set_heads[set_id] = canonical["_id"]
        tick(1)
    return heads
