"""After an erasure, no public surface shows anything of the person (CONTRACT section 9).

A person is seeded through every path (``tests/people.py``: curated with notes and an
address, merged with contacts auto-created by a call, a web chat with a cookie and a
WhatsApp message, conversations on four channels and an unlinked callback carrying the
phone), next to a bystander. Subscriptions are opened, the logs are captured (JSON lines,
as ``scv serve`` writes them), the person is erased through an ancestor id, and the
bystander records one more conversation (so live surfaces have something to deliver).

Then every surface is read and searched for each erased value (names, phones, emails,
cookie, WhatsApp id, external id, address, note texts) and id (conversation and note ids),
and for the erased contact ids everywhere except the surfaces that exist to name them
(the receipts, and the raw ``erasure_receipts`` collection) and the log lines (a request
line names the path, and ``/export/person/{id}.json`` holds a contact id; ids are no
personal data, which is why the receipt may keep them).

A surface is one :class:`Surface` entry in :data:`SURFACES`: a name and a function that
returns the surface's whole text. Every root query has an entry in :data:`QUERY_PROBES`
(a test checks it), so a new query cannot escape the search.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import websockets

from gateway.webhook_delivery import WebhookDeliverer
from resolvers.store import Store
from schema.schema import schema
from tests.conftest import Api, json_logs
from tests.gateway.test_webhooks import FAST, Receiver, receiver, until  # noqa: F401
from tests.people import Person, bystander, record, relink, seed_person

ERASE = "mutation($id: ID!) { eraseContact(id: $id) { id contactIds } }"
HOOK = "mutation($u: String!) { createWebhook(url: $u) { id } }"
CONTACT_FIELDS = """id type firstName middleName lastName title workPhone cellPhone homePhone
  otherPhone workEmail personalEmail otherEmail whatsAppId facebookId twitterId lineId
  instagramId externalIds { source value } address { line1 city postalCode }
  identifiers { type value } notes { id text } mergeHistory { inputIds canonicalId }"""
CONVERSATION_FIELDS = """id channel queue agent notes externalContactId
  identifiers { type value } contact { id firstName } individual { id lastName }"""


@dataclass
class Probe:
    """What the surfaces read with: the API, the database, the erased person, and what the
    live surfaces collected."""

    api: Api
    store: Store
    person: Person
    logs: io.StringIO
    messages: list[str] = field(default_factory=list)  # subscription messages after erasure
    receiver: Receiver | None = None  # a webhook's receiver (loopback)

    def receiver_changes(self) -> list[dict[str, Any]]:
        return self.receiver.changes() if self.receiver is not None else []

    @property
    def token(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api.token()}"}

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> str:
        response = await self.api.post(query, variables)
        assert response.status_code == 200, response.text
        return response.text

    async def get(self, path: str, status: int = 200) -> str:
        response = await self.api.http.get(path, headers=self.token)
        assert response.status_code == status, (path, response.text)
        return response.text


Read = Callable[[Probe], Awaitable[str]]


@dataclass(frozen=True)
class Surface:
    name: str
    read: Read
    names_erased_ids: bool = False  # a surface that exists to name them (receipts)


# --- every root query --------------------------------------------------------------------------


async def q_contact(p: Probe) -> str:
    texts = []
    for contact_id in p.person.contact_ids:
        text = await p.gql(
            f"query($id: ID!) {{ contact(id: $id) {{ {CONTACT_FIELDS} }} }}", {"id": contact_id}
        )
        assert json.loads(text)["data"] == {"contact": None}
        texts.append(text)
    return "\n".join(texts)


async def q_contacts(p: Probe) -> str:
    return await p.gql(
        f"query($ids: [ID!]!) {{ contacts(ids: $ids) {{ {CONTACT_FIELDS} }} }}",
        {"ids": p.person.contact_ids},
    )


async def q_search_contacts(p: Probe) -> str:
    query = f"""query($q: String!) {{
      searchContacts(query: $q, types: [CURATED, IDENTIFIED, EPHEMERAL], first: 100) {{
        totalCount edges {{ node {{ {CONTACT_FIELDS} }} }} }} }}"""
    return "\n".join([await p.gql(query, {"q": value}) for value in sorted(p.person.values)])


async def q_identifier(p: Probe) -> str:
    query = """query($t: IdentifierType!, $v: String!) {
      identifier(type: $t, value: $v) { id type value contact { id firstName } } }"""
    texts = [await p.gql(query, {"t": t, "v": v}) for t, v in p.person.identifiers]
    assert all(json.loads(t)["data"] == {"identifier": None} for t in texts)
    return "\n".join(texts)


async def q_reverse_lookup(p: Probe) -> str:
    query = f"query($v: String!) {{ reverseLookup(value: $v) {{ {CONTACT_FIELDS} }} }}"
    values = [v for t, v in p.person.identifiers if t in ("PHONE", "EMAIL")]
    return "\n".join([await p.gql(query, {"v": v}) for v in values])


async def q_merge_set(p: Probe) -> str:
    query = "query($id: ID!) { mergeSet(contactId: $id) { id contactIds history { inputIds } } }"
    return "\n".join([await p.gql(query, {"id": i}) for i in p.person.contact_ids])


async def q_journey(p: Probe) -> str:
    query = f"""query($id: ID!) {{ journey(contactId: $id) {{ contactIds conversationCount
      conversations(first: 1000) {{ edges {{ node {{ {CONVERSATION_FIELDS} }} }} }} }} }}"""
    return "\n".join([await p.gql(query, {"id": i}) for i in p.person.contact_ids])


async def q_conversation(p: Probe) -> str:
    query = f"query($id: ID!) {{ conversation(id: $id) {{ {CONVERSATION_FIELDS} }} }}"
    return "\n".join([await p.gql(query, {"id": i}) for i in sorted(p.person.ids)])


async def q_conversations(p: Probe) -> str:
    query = f"""{{ conversations(first: 1000) {{ totalCount
      edges {{ node {{ {CONVERSATION_FIELDS} }} }} }} }}"""
    text = await p.gql(query)
    assert (
        json.loads(text)["data"]["conversations"]["totalCount"] == 3
    )  # bystander: 2; the callback (scrubbed)
    return text


async def q_erasure_receipts(p: Probe) -> str:
    return await p.gql(
        "{ erasureReceipts(first: 100) { edges { node { id at by reason contactIds "
        "conversations webEvents notes identifiers suppressed } } } }"
    )


async def q_changes(p: Probe) -> str:
    """The whole feed: the person's changes stay, with ids, pseudonyms for the erased values
    and conversation ids, and CONTACT_ERASED (which names the erased contacts)."""
    text = await p.gql(
        "{ changes(first: 500) { edges { node { id kind at by contactId contactIds "
        "conversationId identifier { type value } } } } }"
    )
    assert "CONTACT_ERASED" in text
    return text


async def q_webhooks(p: Probe) -> str:
    return await p.gql("{ webhooks { id url kinds failing lastError } }")


async def q_duplicate_clusters(p: Probe) -> str:
    return await p.gql(
        f"{{ duplicateClusters(minScore: 0.5, first: 100) {{ edges {{ node {{ id score "
        f"reasons {{ kind field value }} contacts {{ {CONTACT_FIELDS} }} }} }} }} }}"
    )


async def q_identity_settings(p: Probe) -> str:
    return await p.gql("{ identitySettings { autoMerge blockedIdentifiers { type value } } }")


async def q_scan_contacts(p: Probe) -> str:
    return await p.gql(
        f"{{ scanContacts(first: 200, types: [CURATED, IDENTIFIED, EPHEMERAL]) "
        f"{{ edges {{ node {{ {CONTACT_FIELDS} }} }} }} }}"
    )


async def contacts_export(p: Probe) -> str:
    return await p.get("/export/contacts.ndjson?types=CURATED,IDENTIFIED,EPHEMERAL")


QUERY_PROBES: dict[str, Read] = {
    "contact": q_contact,
    "contacts": q_contacts,
    "searchContacts": q_search_contacts,
    "identifier": q_identifier,
    "reverseLookup": q_reverse_lookup,
    "mergeSet": q_merge_set,
    "journey": q_journey,
    "conversation": q_conversation,
    "conversations": q_conversations,
    "erasureReceipts": q_erasure_receipts,
    "changes": q_changes,
    "webhooks": q_webhooks,
    "duplicateClusters": q_duplicate_clusters,
    "identitySettings": q_identity_settings,
    "scanContacts": q_scan_contacts,
}
# surfaces that name the erased contacts by design: the receipts and the feed (its
# CONTACT_ERASED, and the ids of the person's earlier changes; their values are pseudonyms)
NAMING_QUERIES = {"erasureReceipts", "changes"}


# --- the other surfaces -----------------------------------------------------------------------


async def conversations_export(p: Probe) -> str:
    return await p.get("/export/conversations.ndjson")


async def person_exports(p: Probe) -> str:
    for contact_id in p.person.contact_ids:  # gone: 404, whichever member
        await p.get(f"/export/person/{contact_id}.json", status=404)
    return ""


async def bystander_export(p: Probe) -> str:
    found = await p.store.contacts.find_one({"org": "acme", "firstName": {"$regex": "^Stay"}})
    assert found is not None
    return await p.get(f"/export/person/{found['_id']}.json")


async def metrics(p: Probe) -> str:
    response = await p.api.http.get("/metrics")
    assert response.status_code == 200
    return response.text


async def subscriptions(p: Probe) -> str:
    return "\n".join(p.messages)


async def webhook_deliveries(p: Probe) -> str:
    """What a webhook created before the person was seeded receives, delivered only after
    the erasure (the deliverer was down meanwhile): every change, as the feed holds it now."""
    assert p.receiver is not None
    deliverer = WebhookDeliverer(p.store, FAST)
    await deliverer.start()
    try:
        await until(lambda: any(c["kind"] == "CONTACT_ERASED" for c in p.receiver_changes()))
    finally:
        await deliverer.stop()
    return json.dumps(p.receiver_changes())


async def log_lines(p: Probe) -> str:
    text = p.logs.getvalue()
    assert text.count("\n") > 10  # the capture saw the requests
    return text


# collections that name the erased contacts by design (their values are checked all the same)
NAMING_COLLECTIONS = ("erasure_receipts", "changes")


async def _collections(p: Probe, names: list[str]) -> str:
    texts = []
    for name in names:
        docs = await p.store.db[name].find({}).to_list()
        texts.append(f"{name}: {docs!r}")
    return "\n".join(texts)


async def database(p: Probe) -> str:
    """Every document of every collection but those naming the erased contacts."""
    names = sorted(await p.store.db.list_collection_names())
    return await _collections(p, [n for n in names if n not in NAMING_COLLECTIONS])


async def naming_collections(p: Probe) -> str:
    return await _collections(p, list(NAMING_COLLECTIONS))


SURFACES: list[Surface] = [
    *(Surface(f"Query.{n}", r, n in NAMING_QUERIES) for n, r in QUERY_PROBES.items()),
    Surface("GET /export/conversations.ndjson", conversations_export),
    Surface("GET /export/contacts.ndjson", contacts_export),
    Surface("GET /export/person/{erased}.json", person_exports),
    Surface("GET /export/person/{bystander}.json", bystander_export),
    Surface("GET /metrics", metrics),
    Surface("subscriptions (after the erasure)", subscriptions, names_erased_ids=True),
    Surface("webhook deliveries", webhook_deliveries, names_erased_ids=True),
    # request paths name contact ids (GET /export/person/{id}.json): ids, like a receipt's
    Surface("log lines", log_lines, names_erased_ids=True),
    Surface("database (every other collection)", database),
    Surface("database: erasure_receipts, changes", naming_collections, names_erased_ids=True),
]


def test_every_root_query_is_searched() -> None:
    query_type = schema._schema.query_type
    assert query_type is not None
    assert set(query_type.fields) <= set(QUERY_PROBES), set(query_type.fields) - set(QUERY_PROBES)


# --- the test ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def subscribed(url: str, token: str, person: Person) -> AsyncIterator[list[str]]:
    """Subscriptions open over a real WebSocket before the erasure (the person's journey by
    each member id); every message that arrives is kept."""
    messages: list[str] = []
    async with websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        changes = {
            "query": "subscription { changes { id kind contactId contactIds "
            "conversationId identifier { type value } } }"
        }
        await ws.send(json.dumps({"id": "feed", "type": "subscribe", "payload": changes}))
        for n, contact_id in enumerate(person.contact_ids):
            payload = {
                "query": f"subscription($id: ID!) {{ journeyUpdates(contactId: $id) "
                f"{{ {CONVERSATION_FIELDS} }} }}",
                "variables": {"id": contact_id},
            }
            await ws.send(json.dumps({"id": f"j{n}", "type": "subscribe", "payload": payload}))

        async def collect() -> None:
            async for message in ws:
                messages.append(str(message))

        task = asyncio.create_task(collect())
        await asyncio.sleep(0.5)  # the change streams are open
        try:
            yield messages
            await asyncio.sleep(1.0)  # what the erasure and the bystander's call deliver
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.mark.timeout(300)
async def test_nothing_of_an_erased_person_survives_on_any_surface(
    api: Api,
    store: Store,
    ws_url: str,
    receiver: Receiver,  # noqa: F811 - the fixture of tests/gateway/test_webhooks.py
) -> None:
    with json_logs() as logs:
        await api.gql(HOOK, {"u": receiver.url})  # deliveries wait: no deliverer runs yet
        person = await seed_person(api)
        await relink(api, person)  # the feed names one of the person's conversations
        await bystander(api)
        probe = Probe(api, store, person, logs, receiver=receiver)
        async with subscribed(ws_url, api.token(), person) as messages:
            await api.gql(ERASE, {"id": person.contact_ids[1]})
            await record(api, Person(), "SMS", [("PHONE", "+19125550000")])
        probe.messages = messages
        texts = {surface.name: await surface.read(probe) for surface in SURFACES}

    found = []
    for surface in SURFACES:
        searched = person.secrets
        if not surface.names_erased_ids:
            searched = searched | set(person.contact_ids)
        found += [(surface.name, s) for s in sorted(searched) if s in texts[surface.name]]
    assert found == [], "\n".join(f"{name}: {secret}" for name, secret in found)
    # the search is not vacuous: the receipts name the erased contacts, the database holds
    # the bystander, the logs hold the erasure's request
    assert all(i in texts["Query.erasureReceipts"] for i in person.contact_ids)
    assert "Stay" in texts["database (every other collection)"]
    assert "CONTACT_ERASED" in texts["subscriptions (after the erasure)"]
    deliveries = texts["webhook deliveries"]  # the feed before the erasure, pseudonymised
    assert "CONVERSATION_LINKED" in deliveries and "hmac-sha256:" in deliveries
    assert "eraseContact" not in texts["log lines"] or "/graphql" in texts["log lines"]
