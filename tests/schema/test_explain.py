"""Every command the gateway sends is index-only: a battery of every operation, explained.

An org of 2,000 contacts, 6,000 conversations (``gateway.seeding``, the documents the
resolvers write), a note per contact, and 2,000 merge sets and merge events of a
neighbouring org; then every
query, mutation, subscription set-up, the NDJSON export and the CLI's import, export and
check run once (pages, filters and counts included) through clients whose
``tests.explain.ExplainLog`` captures each read and write filter, transactions included. Each
is explained on the server (``executionStats``); the test fails on a collection scan, on a
command that examines more than ``max(2 * returned, returned + 10)`` documents, or on a count
over more than 1,000, and prints the worst offenders.

A new operation adds its calls to ``battery`` (or a ``battery_*`` helper) below.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from gateway.app import create_app
from gateway.export import ndjson_lines
from gateway.seeding import SeedResult, object_id, seed
from gateway.settings import Settings
from gateway.webhook_delivery import DeliveryConfig, WebhookDeliverer
from resolvers import changes, matching_batch
from resolvers.contact_fields import ContactType
from resolvers.documents import ContactDoc
from resolvers.importer import import_rows
from resolvers.invariants import find_violations
from resolvers.journey_updates import journey_updates
from resolvers.store import Doc, DomainConfig, Store
from tests.conftest import SECRET, Api, principal
from tests.explain import ExplainLog, Probe, Verdict, report, verdict, verdicts

ORG = "acme"
CONTACTS = 2000
CONVERSATIONS = 6000


@pytest.fixture
async def explained(
    mongo_uri: str, settings: Settings, store: Store
) -> AsyncIterator[tuple[Api, Store, ExplainLog]]:
    """The app and a store of its own database, both logging into one ExplainLog."""
    log = ExplainLog()
    app = create_app(settings, uri=mongo_uri, secret=SECRET, ensure_indexes=False, listeners=[log])
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        mongo_uri, tz_aware=True, event_listeners=[log]
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Api(http), Store(client[store.db.name], DomainConfig()), log
    await app.state.runtime.close()
    await client.close()


async def populate(store: Store) -> SeedResult:
    result = await seed(store, ORG, contacts=CONTACTS, merge_sets=30, conversations=CONVERSATIONS)
    rng = random.Random(7)
    at = datetime.now(UTC)
    contact_ids = [d["_id"] async for d in store.contacts.find({"org": ORG}, {"_id": 1})]
    await store.notes.insert_many(
        [
            {
                "_id": object_id(rng, at),
                "org": ORG,
                "contactId": contact_id,
                "text": "asked about the invoice",
                "createdAt": at - timedelta(minutes=n),
                "createdBy": "agent-1",
            }
            for n, contact_id in enumerate(contact_ids)
        ]
    )
    await store.merge_sets.insert_many(
        [
            {
                "_id": object_id(rng, at),
                "org": "neighbour",
                "canonicalId": f"head-{n}",
                "memberIds": [f"a-{n}", f"b-{n}", f"head-{n}"],
                "history": [],
            }
            for n in range(CONTACTS)
        ]
    )
    await store.merge_events.insert_many(
        [
            {
                "_id": object_id(rng, at),
                "org": "neighbour",
                "kind": "MERGE",
                "at": at,
                "by": "agent-1",
                "inputIds": [f"a-{n}", f"b-{n}"],
                "canonicalId": f"head-{n}",
                "contactIds": [f"a-{n}", f"b-{n}", f"head-{n}"],
            }
            for n in range(CONTACTS)
        ]
    )
    return result


CONTACT_FIELDS = """
  id type firstName lastName workPhone cellPhone workEmail personalEmail readOnly expiresAt
  externalIds { source value } address { city }
  canonical { id }
  mergeSet { id contactIds size history { kind at } canonical { id } contacts { id } }
  identifiers { type value claimedAt contact { id } }
  notes { id text createdAt }
  mergeHistory { kind at inputIds canonicalId }
  journey { contactIds conversationCount firstSeenAt lastSeenAt channels
            conversations(first: 5) { totalCount edges { node { id } } } }
"""
CONTACT = f"query($id: ID!) {{ contact(id: $id) {{ {CONTACT_FIELDS} }} }}"
SUGGESTIONS = """query($id: ID!) {
  contact(id: $id) { matchSuggestions(minScore: 0) { score contact { id } reasons { kind } } }
}"""
SETTINGS_Q = "query { identitySettings { autoMerge blockedIdentifiers { value } } }"
UPDATE_SETTINGS = """mutation($i: IdentitySettingsInput!) {
  updateIdentitySettings(input: $i) { autoMerge }
}"""
CLAIM = """mutation($id: ID!, $v: String!) {
  claimIdentifier(contactId: $id, identifier: {type: COOKIE, value: $v}) { value }
}"""
RELEASE = "mutation($v: String!) { releaseIdentifier(type: COOKIE, value: $v) }"
CLUSTERS = """query($min: Float, $after: String, $types: [ContactType!]) {
  duplicateClusters(minScore: $min, first: 5, after: $after, types: $types) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id score contacts { id } } }
  }
}"""
MERGE_CLUSTERS = "mutation { mergeDuplicateClusters(minScore: 0.5, first: 2) { id } }"
CONTACTS_Q = "query($ids: [ID!]!) { contacts(ids: $ids) { id firstName canonical { id } } }"
SEARCH = """query($q: String!, $after: String, $types: [ContactType!]) {
  searchContacts(query: $q, first: 10, after: $after, types: $types) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id firstName } }
  }
}"""
IDENTIFIER = """query($t: IdentifierType!, $v: String!) {
  identifier(type: $t, value: $v) { type value claimedAt contact { id } }
}"""
REVERSE = "query($v: String!) { reverseLookup(value: $v) { id } }"
MERGE_SET = "query($id: ID!) { mergeSet(contactId: $id) { id contactIds contacts { id } } }"
JOURNEY = """query($id: ID!, $first: Int!, $after: String, $since: DateTime, $until: DateTime,
                  $channels: [Channel!]) {
  journey(contactId: $id) {
    contact { id } contactIds conversationCount firstSeenAt lastSeenAt channels
    conversations(first: $first, after: $after, since: $since, until: $until,
                  channels: $channels) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { cursor node { id startedAt channel contact { id } individual { id } } }
    }
  }
}"""
CONVERSATION = """query($id: ID!) {
  conversation(id: $id) { id channel startedAt externalContactId contact { id }
                          individual { id mergeSet { contactIds } } }
}"""
CONVERSATIONS_Q = """query($first: Int!, $after: String, $since: DateTime, $until: DateTime,
                         $channels: [Channel!], $ids: [ID!]) {
  conversations(first: $first, after: $after, since: $since, until: $until,
                channels: $channels, contactIds: $ids) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id startedAt channel contact { id } individual { id } } }
  }
}"""
CREATE = "mutation($i: ContactInput!) { createContact(input: $i) { id } }"
UPDATE = "mutation($id: ID!, $i: ContactInput!) { updateContact(id: $id, input: $i) { id } }"
DELETE = "mutation($id: ID!) { deleteContact(id: $id) }"
PROMOTE = "mutation($id: ID!) { promoteContact(id: $id) { id type } }"
NOTE = "mutation($id: ID!, $t: String!) { addNote(contactId: $id, text: $t) { id } }"
MERGE = "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"
UNMERGE = "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }"
LINK = """mutation($c: ID!, $id: ID!) {
  linkConversation(conversationId: $c, contactId: $id) { id externalContactId }
}"""
UNLINK = "mutation($c: ID!) { unlinkConversation(conversationId: $c) { id } }"
ERASE = "mutation($id: ID!, $r: String) { eraseContact(id: $id, reason: $r) { conversations } }"
RECEIPTS = """query($first: Int!, $after: String) {
  erasureReceipts(first: $first, after: $after) {
    totalCount pageInfo { endCursor } edges { node { id contactIds } }
  }
}"""
RECORD = """mutation($i: InteractionInput!) {
  recordInteraction(input: $i) {
    created conversation { id } contact { id journey { conversationCount } }
    otherMatches { id }
  }
}"""


WEB_RECORD = """mutation($e: [WebEventInput!]!) {
  recordWebEvents(events: $e) { accepted contactIds }
}"""
WEB_JOURNEY = """query($id: ID!, $first: Int!, $after: String, $since: DateTime) {
  journey(contactId: $id) {
    webSessionCount
    webSessions(first: $first, after: $after, since: $since) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node { id startedAt contact { id }
                     events(first: 5) { totalCount edges { node { id at } } } } }
    }
  }
}"""
WEB_TIMELINE = """query($id: ID!, $first: Int!, $after: String, $since: DateTime) {
  journey(contactId: $id) {
    timeline(first: $first, after: $after, since: $since) {
      pageInfo { hasNextPage endCursor }
      edges { node { ... on Conversation { id } ... on WebSession { id eventCount } } }
    }
  }
}"""


def web_event(cookie: str, minutes_ago: float, **extra: Any) -> Doc:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {"cookie": cookie, "type": "PAGE_VIEW", "at": at.isoformat(), "url": "/", **extra}


BULK_CREATE = """mutation($i: [ContactInput!]!) {
  bulkCreateContacts(inputs: $i) { index contact { id } error { code } } }"""
BULK_UPDATE = """mutation($u: [ContactUpdate!]!) {
  bulkUpdateContacts(updates: $u) { index contact { id } error { code } } }"""
BULK_DELETE = "mutation($ids: [ID!]!) { bulkDeleteContacts(ids: $ids) { index error { code } } }"
UPSERT = """mutation($m: [IdentifierInput!]!, $i: ContactInput!, $r: UpsertRule) {
  upsertContact(match: $m, input: $i, rule: $r) { created contact { id } } }"""
UPDATE_NOTE = "mutation($id: ID!, $t: String!) { updateNote(id: $id, text: $t) { id } }"
DELETE_NOTE = "mutation($id: ID!) { deleteNote(id: $id) }"
SCAN = """query($first: Int, $after: String, $types: [ContactType!], $since: DateTime) {
  scanContacts(first: $first, after: $after, types: $types, modifiedSince: $since) {
    pageInfo { hasNextPage endCursor } edges { node { id type } } } }"""


class Battery:
    """Every operation of the API, called on the seeded org."""

    def __init__(self, api: Api, store: Store, plain: Store, seeded: SeedResult) -> None:
        self.api = api
        self.store = store  # logged: what the CLI and subscription code paths use
        self.plain = plain  # not logged: the battery's own look-ups
        self.seeded = seeded
        self.serial = 0

    async def some(self, query: dict[str, Any], n: int) -> list[ContactDoc]:
        return await self.plain.contacts.find(query).limit(n).to_list()

    def cid(self) -> str:
        self.serial += 1
        return f"explain-{self.serial}"

    async def record(
        self, channel: str, identifiers: list[Doc], cid: str | None = None, **extra: Any
    ) -> Doc:
        moment = datetime.now(UTC) - timedelta(minutes=self.serial)
        data = await self.api.gql(
            RECORD,
            {
                "i": {
                    "conversationId": cid or self.cid(),
                    "channel": channel,
                    "startedAt": moment.isoformat(),
                    "identifiers": identifiers,
                    **extra,
                }
            },
        )
        resolution: Doc = data["recordInteraction"]
        return resolution

    async def reads(self) -> None:
        gql = self.api.gql
        curated = await self.some({"org": ORG, "type": "CURATED", "readOnly": False}, 3)
        heads = list(self.seeded.set_heads.values())
        member_sets = await self.plain.merge_sets.find({"org": ORG}).limit(2).to_list()
        ancestor = next(m for m in member_sets[0]["memberIds"] if m != heads[0])
        for contact_id in (curated[0]["_id"], heads[0], ancestor):
            await gql(CONTACT, {"id": contact_id})
        await gql(CONTACTS_Q, {"ids": [c["_id"] for c in curated] + [heads[0], "unknown"]})
        person = curated[0]
        for text in (person["lastName"], person["firstName"], "Ana Sm", "zzzz"):
            page = await gql(SEARCH, {"q": text})
            after = page["searchContacts"]["pageInfo"]["endCursor"]
            if page["searchContacts"]["pageInfo"]["hasNextPage"]:
                await gql(SEARCH, {"q": text, "after": after})
        await gql(SEARCH, {"q": person["lastName"], "types": ["CURATED", "IDENTIFIED"]})
        await gql(SEARCH, {"q": person["cellPhone"]})
        await gql(SEARCH, {"q": person["workEmail"]})
        await gql(IDENTIFIER, {"t": "PHONE", "v": person["cellPhone"]})
        await gql(IDENTIFIER, {"t": "EMAIL", "v": person["workEmail"]})
        await gql(REVERSE, {"v": person["cellPhone"]})
        await gql(REVERSE, {"v": person["workEmail"]})
        await gql(MERGE_SET, {"id": ancestor})
        await self.journeys(heads[0], person["_id"])
        await self.bi_pulls([*heads[:3], person["_id"]])

    async def journeys(self, *contact_ids: str) -> None:
        for contact_id in contact_ids:
            after = None
            for _ in range(3):
                data = await self.api.gql(JOURNEY, {"id": contact_id, "first": 10, "after": after})
                info = data["journey"]["conversations"]["pageInfo"]
                if not info["hasNextPage"]:
                    break
                after = info["endCursor"]
            week = datetime.now(UTC) - timedelta(days=7)
            variables = {"id": contact_id, "first": 5, "since": week.isoformat()}
            await self.api.gql(JOURNEY, variables)
            until = {"id": contact_id, "first": 5, "until": week.isoformat()}
            await self.api.gql(JOURNEY, until)
            await self.api.gql(JOURNEY, {"id": contact_id, "first": 5, "channels": ["VOICE"]})

    async def bi_pulls(self, contact_ids: list[str]) -> None:
        gql = self.api.gql
        after = None
        for _ in range(3):
            data = await gql(CONVERSATIONS_Q, {"first": 100, "after": after})
            after = data["conversations"]["pageInfo"]["endCursor"]
        await gql(CONVERSATIONS_Q, {"first": 1000})
        day = datetime.now(UTC) - timedelta(days=1)
        month = datetime.now(UTC) - timedelta(days=30)
        await gql(CONVERSATIONS_Q, {"first": 50, "since": month.isoformat()})
        await gql(CONVERSATIONS_Q, {"first": 50, "until": day.isoformat()})
        await gql(CONVERSATIONS_Q, {"first": 50, "channels": ["EMAIL", "SMS"]})
        await gql(CONVERSATIONS_Q, {"first": 20, "ids": contact_ids})
        some = await self.plain.conversations.find({"org": ORG}).limit(1).to_list()
        await gql(CONVERSATION, {"id": some[0]["cid"]})

    async def writes(self) -> None:
        gql = self.api.gql
        created = await gql(
            CREATE,
            {"i": {"firstName": "Ines", "lastName": "Quarry", "workPhone": "+18035550101"}},
        )
        new_id = created["createContact"]["id"]
        await gql(UPDATE, {"id": new_id, "i": {"workEmail": "ines.quarry@example.com"}})
        await gql(UPDATE, {"id": new_id, "i": {"workPhone": "+18035550102"}})
        await gql(NOTE, {"id": new_id, "t": "called back"})
        known = await self.some({"org": ORG, "type": "CURATED", "mergeSetId": None}, 1)
        await self.record("VOICE", [{"type": "PHONE", "value": known[0]["cellPhone"]}])
        await self.record("EMAIL", [{"type": "EMAIL", "value": known[0]["workEmail"]}])
        fresh = await self.record("VOICE", [{"type": "PHONE", "value": "+18035550177"}])
        await self.record("SMS", [{"type": "PHONE", "value": "+18035550177"}])
        await self.record("WHATSAPP", [{"type": "PHONE", "value": "+18035550178"}])
        await self.record("FACEBOOK", [{"type": "FACEBOOK", "value": "fb.explain"}])
        await self.record("WEB_MESSAGING", [{"type": "COOKIE", "value": "gc-explain"}])
        await self.record(
            "EMAIL",
            [{"type": "EMAIL", "value": "new.person@example.com"}],
            provided={"firstName": "Nia", "lastName": "New", "cellPhone": "+18035550179"},
        )
        await self.record("OPEN_MESSAGING", [{"type": "PHONE", "value": "+18035550180"}])
        await self.record("CALLBACK", [])
        again = [{"type": "PHONE", "value": known[0]["cellPhone"]}]
        await self.record("SMS", again, cid="explain-1")  # recorded again: moved hour, channel
        auto_id = fresh["contact"]["id"]
        await gql(PROMOTE, {"id": auto_id})
        autos = await self.some({"org": ORG, "type": "IDENTIFIED", "mergeSetId": None}, 3)
        merged = await gql(MERGE, {"ids": [autos[0]["_id"], autos[1]["_id"]]})
        head = merged["mergeContacts"]["id"]
        await gql(MERGE, {"ids": [head, autos[2]["_id"]]})
        conversation = await self.plain.conversations.find_one({"org": ORG, "cid": "explain-1"})
        assert conversation is not None
        await gql(LINK, {"c": "explain-1", "id": autos[0]["_id"]})
        await gql(UNMERGE, {"id": autos[0]["_id"]})
        await gql(UNLINK, {"c": "explain-1"})
        await gql(LINK, {"c": "explain-1", "id": new_id})
        await gql(DELETE, {"id": new_id})

    async def web(self) -> None:
        """recordWebEvents (new and known cookies, out of order, eventIds, form fills) and the
        journey's web fields, paged."""
        gql = self.api.gql
        known = await self.some({"org": ORG, "type": "CURATED", "mergeSetId": None}, 2)
        batch = [web_event(f"explain-web-{n % 20}", 200 - n, eventId=f"ev-{n}") for n in range(200)]
        await gql(WEB_RECORD, {"e": batch})
        await gql(WEB_RECORD, {"e": batch[:50]})  # a retry: stored once
        late = [web_event(f"explain-web-{n}", 300 + n) for n in range(20)]  # out of order
        await gql(WEB_RECORD, {"e": late})
        fill = web_event("explain-web-1", 10, type="FORM_SUBMIT")
        fill["provided"] = {"workEmail": known[0]["workEmail"]}
        await gql(WEB_RECORD, {"e": [fill]})
        fresh = web_event("explain-web-new", 5, type="FORM_SUBMIT")
        fresh["provided"] = {"firstName": "Wen", "personalEmail": "wen@example.com"}
        await gql(WEB_RECORD, {"e": [fresh]})
        await self.record(
            "WEB_MESSAGING",
            [{"type": "COOKIE", "value": "explain-web-2"}],
            provided={"workEmail": known[1]["workEmail"]},
        )
        week = (datetime.now(UTC) - timedelta(days=7)).isoformat()
        for person in known:
            for query, field in ((WEB_JOURNEY, "webSessions"), (WEB_TIMELINE, "timeline")):
                after = None
                for _ in range(2):
                    data = await gql(query, {"id": person["_id"], "first": 5, "after": after})
                    after = data["journey"][field]["pageInfo"]["endCursor"]
                    if after is None:
                        break
                await gql(query, {"id": person["_id"], "first": 20, "since": week})

    async def integrations(self) -> None:
        """Bulk writes, upsert, notes, the scan and the contact export (section 7)."""
        gql = self.api.gql
        people = [
            {"firstName": f"B{n}", "lastName": "Bulk", "cellPhone": f"+1803444{n:04d}"}
            for n in range(20)
        ]
        made = await gql(BULK_CREATE, {"i": people})
        ids = [i["contact"]["id"] for i in made["bulkCreateContacts"]]
        heads = list(self.seeded.set_heads.values())
        member_sets = await self.plain.merge_sets.find({"org": ORG}).limit(1).to_list()
        ancestor = next(m for m in member_sets[0]["memberIds"] if m != heads[0])
        autos = await self.some({"org": ORG, "type": "IDENTIFIED", "mergeSetId": None}, 2)
        updates = [{"id": i, "input": {"cellPhone": None, "title": "Dr"}} for i in ids[:10]]
        updates += [{"id": ancestor, "input": {"title": "Head"}}, {"id": "nope", "input": {}}]
        updates += [{"id": autos[0]["_id"], "input": {"workEmail": "bulk.auto@example.com"}}]
        await gql(BULK_UPDATE, {"u": updates})
        await gql(BULK_DELETE, {"ids": [*ids[10:], heads[5], "nope"]})
        known = await self.some({"org": ORG, "type": "CURATED", "mergeSetId": None}, 1)
        match = [{"type": "PHONE", "value": known[0]["cellPhone"]}]
        await gql(UPSERT, {"m": match, "i": {"title": "Upserted"}, "r": "PREFER_EXISTING"})
        fresh = [{"type": "EXTERNAL_ID", "value": "crm:explain"}]
        await gql(UPSERT, {"m": fresh, "i": {"firstName": "Ext", "lastName": "Ernal"}})
        note = await gql(NOTE, {"id": ids[0], "t": "to edit"})
        await gql(UPDATE_NOTE, {"id": note["addNote"]["id"], "t": "edited"})
        await gql(DELETE_NOTE, {"id": note["addNote"]["id"]})
        await self.scans()

    async def scans(self) -> None:
        gql = self.api.gql
        for variables in (
            {"first": 200},
            {"first": 200, "types": ["CURATED", "IDENTIFIED", "EPHEMERAL"]},
            {"first": 50, "since": (datetime.now(UTC) - timedelta(days=2)).isoformat()},
        ):
            after = None
            for _ in range(4):
                page = (await gql(SCAN, {**variables, "after": after}))["scanContacts"]
                after = page["pageInfo"]["endCursor"]
                if not page["pageInfo"]["hasNextPage"]:
                    break
        token = self.api.token()
        for params in ({}, {"types": "IDENTIFIED,EPHEMERAL"}):
            response = await self.api.http.get(
                "/export/contacts.ndjson",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200
            assert response.text.count("\n") > 0

    async def identity(self) -> None:
        """Section 6: suggestions, settings, claiming and releasing by hand."""
        gql = self.api.gql
        curated = await self.some({"org": ORG, "type": "CURATED", "readOnly": False}, 2)
        heads = list(self.seeded.set_heads.values())
        for contact_id in (curated[0]["_id"], curated[1]["_id"], heads[0]):
            await gql(SUGGESTIONS, {"id": contact_id})
        await gql(SETTINGS_Q)
        blocked = [{"type": "PHONE", "value": curated[1]["cellPhone"]}]
        await gql(UPDATE_SETTINGS, {"i": {"blockedIdentifiers": blocked}})
        await gql(UPDATE_SETTINGS, {"i": {"blockedIdentifiers": []}})
        await gql(CLAIM, {"id": curated[0]["_id"], "v": "gc-by-hand"})
        await gql(RELEASE, {"v": "gc-by-hand"})
        twin = {"firstName": curated[0]["firstName"], "lastName": curated[0]["lastName"]}
        await gql(CREATE, {"i": {**twin, "workPhone": curated[0]["cellPhone"]}})  # a pair
        page = await gql(CLUSTERS, {"min": 0.5})
        if page["duplicateClusters"]["pageInfo"]["hasNextPage"]:
            after = page["duplicateClusters"]["pageInfo"]["endCursor"]
            await gql(CLUSTERS, {"min": 0.5, "after": after})
        await gql(CLUSTERS, {"min": 0.9, "types": ["IDENTIFIED"]})
        await gql(MERGE_CLUSTERS)

    async def subscription(self) -> None:
        heads = list(self.seeded.set_heads.values())
        updates = journey_updates(self.store, ORG, heads[1])
        first = asyncio.ensure_future(anext(updates))
        await asyncio.sleep(0.3)  # the change stream is open
        await self.api.gql(LINK, {"c": "explain-2", "id": heads[1]})
        doc = await asyncio.wait_for(first, 10)
        assert doc["cid"] == "explain-2"
        closing = getattr(updates, "aclose", None)
        if closing is not None:
            with contextlib.suppress(StopAsyncIteration):
                await closing()

    async def change_feed(self) -> None:
        """changes (pages, kinds), webhooks, a delivery pass, the changes subscription."""
        gql = self.api.gql
        page = "query($a: String, $k: [ChangeKind!]) { changes(first: 5, after: $a, kinds: $k) "
        page += "{ edges { node { id } } pageInfo { endCursor } } }"
        first = (await gql(page, {}))["changes"]
        assert first["edges"]
        await gql(page, {"a": first["pageInfo"]["endCursor"]})
        await gql(page, {"k": ["CONTACTS_MERGED"]})
        await gql(page, {"k": ["CONTACT_CREATED", "CONTACT_DELETED"]})
        made = await gql('mutation { createWebhook(url: "https://93.184.215.14/h") { id } }')
        await gql("query { webhooks { id failing } }")
        deliverer = WebhookDeliverer(self.store, DeliveryConfig(timeout=0.2))
        await deliverer.start()
        try:
            assert await deliverer.hold_lease()
            await deliverer.deliver_due()
        finally:
            await deliverer.stop()
        await gql(
            "mutation($id: ID!) { deleteWebhook(id: $id) }", {"id": made["createWebhook"]["id"]}
        )
        follow = changes.follow(self.store, ORG, None)
        upcoming = asyncio.ensure_future(anext(follow))
        await asyncio.sleep(0.3)
        await gql('mutation { createContact(input: {firstName: "F", lastName: "Eed"}) { id } }')
        assert (await asyncio.wait_for(upcoming, 10))["kind"] == "CONTACT_CREATED"
        await follow.aclose()

    async def exports_and_cli(self) -> None:
        token = self.api.token()
        week = (datetime.now(UTC) - timedelta(days=7)).isoformat()
        for params in ({}, {"since": week}, {"channels": "EMAIL"}):
            response = await self.api.http.get(
                "/export/conversations.ndjson",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200
            assert response.text.count("\n") > 0
        lines = [chunk async for chunk in ndjson_lines(self.store, ORG, chunk=1000)]
        assert b"".join(lines).count(b"\n") >= CONVERSATIONS - 100
        rows = [
            (2, {"firstName": "Omar", "lastName": "Import", "workEmail": "omar@import.example"}),
            (3, {"firstName": "Yara", "lastName": "Import", "externalIds": "crm:C-000001"}),
        ]
        someone = principal(ORG, sub="cli-import")
        report_ = await import_rows(self.store, someone, rows)
        assert report_.failed == 0, report_.errors
        again = await import_rows(self.store, someone, rows)
        assert again.unchanged == 2
        # scv import, scv seed and scv pairs: the org's match pairs, batch by batch
        assert await matching_batch.rebuild_org(self.store, ORG, batch=100) > 0
        assert await find_violations(self.store, ORG) == []

    async def privacy(self) -> None:
        """eraseContact (a merge set with conversations, through an ancestor), the receipts
        and the person export."""
        gql = self.api.gql
        heads = list(self.seeded.set_heads.values())
        sets = self.plain.merge_sets.find({"org": ORG, "canonicalId": {"$in": heads[2:4]}})
        members = {s["canonicalId"]: s["memberIds"] for s in await sets.to_list()}
        ancestor = next(m for m in members[heads[2]] if m != heads[2])
        token = {"Authorization": f"Bearer {self.api.token()}"}
        for contact_id in (heads[3], ancestor):
            response = await self.api.http.get(f"/export/person/{contact_id}.json", headers=token)
            assert response.status_code == 200, response.text
        receipt = await gql(ERASE, {"id": ancestor, "reason": "explain"})
        assert receipt["eraseContact"]["conversations"] > 0
        single = await self.some({"org": ORG, "type": "CURATED", "mergeSetId": None}, 2)
        await gql(ERASE, {"id": single[1]["_id"]})
        first = await gql(RECEIPTS, {"first": 1})
        after = first["erasureReceipts"]["pageInfo"]["endCursor"]
        await gql(RECEIPTS, {"first": 1, "after": after})


# The one shape allowed to examine more than it returns, as long as it is an index scan: a
# page of a merge set of several members is one command (the command-count tests hold a
# journey page to one find), ``{org, externalContactId: {$in: members}}``; the embedded
# server plans one operator per index, so that command cannot also bound startedAt and reads
# the set's whole journey (tens to hundreds of rows) for each page. Removing this needs the
# set's key on each conversation (maintained by link, merge and unmerge): not done yet.
#
# The first page of each type of a contact scan (scanContacts, the contact export) reads the
# type's whole range once: the server sorts every match, and nothing tells where the ids
# start or how dense they are until one page has been read. Every later page reads windows
# of the id line sized from that page's density (resolvers/scan.py), which this test holds
# to the ordinary bound. Removing it needs the org's id range kept somewhere: not done yet.
TOLERATED = {
    "find conversations {org: str, externalContactId: {$in: [str]}} "
    "sort(startedAt:-1,_id:-1) limit": "a merge set's page reads the set's journey",
    "find contacts {org: str, readOnly: bool, type: str} sort(_id:1) limit": "a scan's first "
    "page learns the density of ids",
}


def offenders(found: list[Verdict]) -> list[Verdict]:
    return [
        v
        for v in found
        if v.problem is not None and not (v.probe.shape in TOLERATED and v.stage == "IXSCAN")
    ]


@pytest.mark.timeout(600)
async def test_every_command_of_every_operation_is_index_only(
    explained: tuple[Api, Store, ExplainLog], store: Store
) -> None:
    api, logged_store, log = explained
    seeded = await populate(store)
    assert await store.contacts.count_documents({}) >= CONTACTS
    assert await store.identifiers.count_documents({}) >= CONTACTS
    log.clear()
    battery = Battery(api, logged_store, store, seeded)
    await battery.reads()
    await battery.writes()
    await battery.web()
    await battery.integrations()
    await battery.identity()
    await battery.subscription()
    await battery.change_feed()
    await battery.exports_and_cli()
    await battery.privacy()
    log.enabled = False
    assert len({p.shape for p in log.probes}) > 40  # the battery did reach every operation
    found = await verdicts(store.db, log)
    text = report(found)
    print(text)
    assert offenders(found) == [], text
    assert {v.probe.shape for v in found if v.problem} <= set(TOLERATED), text


# --- the harness itself catches what it must -----------------------------------------------


async def test_harness_flags_scans_overreads_and_big_counts(store: Store) -> None:
    await store.db["conversations"].insert_many(  # bare documents: only what the probes read
        [
            {"_id": f"c{n:05d}", "org": ORG, "cid": f"x{n}", "channel": "VOICE", "n": n}
            for n in range(1200)
        ]
    )
    db = store.db
    scan = await verdict(db, Probe("find", "conversations", {"channel": "VOICE"}, None, 0))
    assert scan.problem == "COLLSCAN"
    assert scan.examined == 1200
    limited = await verdict(db, Probe("find", "conversations", {"org": ORG}, None, 5))
    assert (limited.stage, limited.returned, limited.problem) == ("IXSCAN", 5, "examines too many")
    point = await verdict(db, Probe("find", "conversations", {"org": ORG, "cid": "x7"}, None, 1))
    assert point.problem is None
    count = await verdict(db, Probe("count", "conversations", {"org": ORG}, None, 0))
    assert count.problem == "count reads more than 1000"


async def test_harness_captures_transactions_and_write_filters(
    explained: tuple[Api, Store, ExplainLog],
) -> None:
    _, store, log = explained
    await store.db["contacts"].insert_one(
        {"_id": "p1", "org": ORG, "type": str(ContactType.CURATED)}
    )

    async def work(session: Any) -> None:
        await store.contacts.update_one(
            {"_id": "p1", "org": ORG}, {"$set": {"x": 1}}, session=session
        )
        await store.contacts.find_one({"org": ORG, "keys": "PHONE:+1"}, session=session)

    await store.in_transaction(work)
    await store.contacts.delete_many({"org": ORG, "lastName": "Nobody"})
    shapes = [p.shape for p in log.probes]
    assert "update contacts {_id: str, org: str} sort() limit" in shapes
    assert "find contacts {org: str, keys: str} sort() limit" in shapes
    assert "delete contacts {org: str, lastName: str} sort() all" in shapes
    found = await verdicts(store.db, log)
    assert [v.problem for v in found if v.probe.command == "delete"] == ["COLLSCAN"]
