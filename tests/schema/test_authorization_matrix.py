"""The authorisation and tenancy matrix: every operation and every guarded field, by table.

Two tables drive the tests:

- ``PERMISSION_CASES``: one row per query, mutation and permission-guarded field, naming the
  GraphQL document, a setup that creates the data it needs (org ``acme``), the permission it
  needs, where the ``FORBIDDEN`` error lands and which collections a successful call writes.
  Each row runs twice: with every permission but its own (``FORBIDDEN`` at that path,
  ``null`` there, the rest of the response intact, not one document changed), and with just
  the permissions it needs (a positive control: it answers, and a mutation does write the
  collections it names, so "nothing changed" above is a real check). The table is checked
  against the permissions the schema declares on its fields (``schema/permissions.py``), so
  no new operation or guarded field escapes it.
- ``TENANCY_CASES``: one row per way an id of another org can reach an operation, directly
  or indirectly (merge sets, journeys, ``contactIds``, links, merges). The data is created
  in ``acme``; the call comes from org ``other`` with every permission. A foreign id must
  behave exactly like an unknown id (the same response, ids aside: ``null``/empty for
  queries, ``NOT_FOUND`` for mutations) and nothing of ``acme`` may change or show.

The subscription runs over a real WebSocket (its own small table), and the NDJSON export
is not GraphQL; their permission and tenancy checks follow the tables.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets
from bson import ObjectId
from graphql import GraphQLObjectType
from strawberry.permission import PermissionExtension

from gateway.auth import ALL_PERMISSIONS
from resolvers.invariants import find_violations
from resolvers.principal import Permission
from resolvers.store import Doc, Store
from schema.permissions import CHECKED_IN_CODE, Needs
from schema.schema import schema
from tests.conftest import Api, codes

ACME = "acme"
OTHER = "other"
COLLECTIONS = (
    "contacts",
    "identifiers",
    "conversations",
    "merge_sets",
    "notes",
    "erasure_receipts",
    "web_events",
    "web_sessions",
    "identity_settings",
    "changes",
    "webhooks",
)

Vars = dict[str, Any]
Path_ = tuple[str | int, ...]

CREATE = "mutation($i: ContactInput!) { createContact(input: $i) { id } }"
RECORD = """mutation($i: InteractionInput!) {
  recordInteraction(input: $i) { conversation { id } contact { id } created }
}"""
MERGE = "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }"
ERASE = "mutation($id: ID!) { eraseContact(id: $id) { id contactIds } }"
LINK = """mutation($conv: ID!, $id: ID!) {
  linkConversation(conversationId: $conv, contactId: $id) { id externalContactId }
}"""


# --- the world the cases run in --------------------------------------------------------------


class World:
    """Creates data through the API (every permission) and remembers each org's secrets."""

    def __init__(self, api: Api, store: Store) -> None:
        self.api = api
        self.store = store
        self._serial = 0
        self.secrets: dict[str, set[str]] = {ACME: set(), OTHER: set()}

    def serial(self) -> int:
        self._serial += 1
        return self._serial

    def phone(self, org: str = ACME) -> str:
        value = f"+1803555{self.serial():04d}"
        self.secrets[org].add(value)
        return value

    def email(self, org: str = ACME) -> str:
        value = f"person{self.serial()}@{org}.example"
        self.secrets[org].add(value)
        return value

    async def contact(self, org: str = ACME, first: str = "Alexis", **fields: Any) -> str:
        """A CURATED contact with a phone and an email of its own."""
        last = f"Zq{org.capitalize()}{self.serial()}"  # a name no other org's query guesses
        self.secrets[org].add(last)
        data = await self.api.gql(
            CREATE,
            {
                "i": {
                    "firstName": first,
                    "lastName": last,
                    "workPhone": self.phone(org),
                    "personalEmail": self.email(org),
                    **fields,
                }
            },
            org=org,
        )
        contact_id: str = data["createContact"]["id"]
        return contact_id

    async def record(
        self,
        org: str = ACME,
        *,
        phone: str | None = None,
        channel: str = "VOICE",
        conversation_id: str | None = None,
    ) -> tuple[str, str | None]:
        """A conversation (id, resolved contact id): with a fresh phone an IDENTIFIED contact
        is auto-created; on OPEN_MESSAGING the conversation is stored unlinked."""
        cid = conversation_id or f"conv-{org}-{uuid.uuid4().hex[:10]}"
        self.secrets[org].add(cid)
        data = await self.api.gql(
            RECORD,
            {
                "i": {
                    "conversationId": cid,
                    "channel": channel,
                    "startedAt": (datetime.now(UTC) - timedelta(minutes=self.serial())).isoformat(),
                    "identifiers": [{"type": "PHONE", "value": phone or self.phone(org)}],
                }
            },
            org=org,
        )
        resolution = data["recordInteraction"]
        contact = resolution["contact"]
        return resolution["conversation"]["id"], contact["id"] if contact else None

    async def auto(self, org: str = ACME) -> str:
        """An auto-created (IDENTIFIED) contact with one linked conversation."""
        _, contact_id = await self.record(org)
        assert contact_id is not None
        return contact_id

    async def merged(self, org: str = ACME) -> tuple[str, str, str]:
        """(canonical, ancestor a, ancestor b): two auto-created contacts merged."""
        a, b = await self.auto(org), await self.auto(org)
        data = await self.api.gql(MERGE, {"ids": [a, b]}, org=org)
        canonical: str = data["mergeContacts"]["id"]
        return canonical, a, b

    async def unlinked(self, org: str = ACME) -> str:
        cid, _ = await self.record(org, channel="OPEN_MESSAGING")
        return cid

    async def ids_of(self, org: str) -> list[str]:
        """Every contact, conversation and webhook id of the org (what a foreign caller must
        not be able to tell from an unknown id)."""
        contact_ids = [d["_id"] for d in await self.store.contacts.find({"org": org}).to_list()]
        cids = [d["cid"] for d in await self.store.conversations.find({"org": org}).to_list()]
        hooks = [d["_id"] for d in await self.store.webhooks.find({"org": org}).to_list()]
        return contact_ids + cids + hooks


async def snapshot(store: Store, org: str | None = None) -> dict[str, list[Doc]]:
    """Every document of every collection (of one org), in a stable order."""
    scope = {} if org is None else {"org": org}
    return {name: await store.db[name].find(scope).sort("_id", 1).to_list() for name in COLLECTIONS}


def at(data: Any, path: Path_) -> Any:
    """The value at a response path; None as soon as a step is null (null propagation)."""
    value = data
    for step in path:
        if value is None:
            return None
        value = value[step]
    return value


def found(value: Any) -> bool:
    """Whether a response part holds anything: a non-empty string, a non-zero count, ..."""
    if isinstance(value, dict):
        return any(found(v) for v in value.values())
    if isinstance(value, list):
        return any(found(v) for v in value)
    return value not in (None, False, 0, "")


@pytest.fixture
def world(api: Api, store: Store) -> World:
    return World(api, store)


# --- the permission table ----------------------------------------------------------------------

Setup = Callable[[World], Awaitable[Vars]]


@dataclass(frozen=True)
class Case:
    op: str  # "Query.contact", "Mutation.createContact", "Contact.journey"
    document: str
    permission: Permission  # what the operation or field needs
    setup: Setup  # creates the data (org acme); returns the variables
    path: Path_  # where FORBIDDEN lands without the permission
    writes: tuple[str, ...] = ()  # collections a successful call changes (write detection)
    needs: tuple[Permission, ...] = ()  # what else the document needs to reach the field
    intact: Path_ | None = None  # a part of the response that stays when the field is denied
    variant: str = ""

    @property
    def id(self) -> str:
        return f"{self.op}{f'[{self.variant}]' if self.variant else ''}"


async def a_contact(w: World) -> Vars:
    return {"id": await w.contact()}


async def an_auto_contact(w: World) -> Vars:
    return {"id": await w.auto()}


async def a_merged_set(w: World) -> Vars:
    canonical, _, _ = await w.merged()
    return {"id": canonical}


async def an_ancestor(w: World) -> Vars:
    _, ancestor, _ = await w.merged()
    return {"id": ancestor}


async def a_linked_conversation(w: World) -> Vars:
    cid, _ = await w.record()
    return {"conv": cid}


async def a_merged_conversation(w: World) -> Vars:
    """A conversation linked to an ancestor: contact and individual are different contacts."""
    cid, contact_id = await w.record()
    assert contact_id is not None
    await w.api.gql(MERGE, {"ids": [contact_id, await w.auto()]})
    return {"conv": cid}


async def two_contacts(w: World) -> Vars:
    return {"ids": [await w.contact(), await w.contact()]}


async def a_phone(w: World) -> Vars:
    phone = w.phone()
    await w.contact(workPhone=phone)
    return {"v": phone}


async def a_name(w: World) -> Vars:
    await w.contact(first="Searchable")
    return {"q": "Searchable"}


async def two_autos(w: World) -> Vars:
    return {"ids": [await w.auto(), await w.auto()]}


async def a_relink(w: World) -> Vars:
    cid, _ = await w.record()
    return {"conv": cid, "id": await w.contact()}


async def a_new_interaction(w: World) -> Vars:
    return {
        "i": {
            "conversationId": f"new-{uuid.uuid4().hex[:10]}",
            "channel": "SMS",
            "startedAt": datetime.now(UTC).isoformat(),
            "identifiers": [{"type": "PHONE", "value": w.phone()}],
        }
    }


async def an_erasure(w: World) -> Vars:
    """A receipt to list: acme erased a contact."""
    await w.api.gql("mutation($id: ID!) { eraseContact(id: $id) { id } }", {"id": await w.auto()})
    return {}


async def new_web_events(w: World) -> Vars:
    at = datetime.now(UTC).isoformat()
    return {"e": [{"cookie": f"ck-{uuid.uuid4().hex[:10]}", "type": "PAGE_VIEW", "at": at}]}


async def a_web_visitor(w: World) -> Vars:
    """A contact (auto-created EPHEMERAL) with one web session."""
    data = await w.api.gql(RECORD_WEB, await new_web_events(w))
    return {"id": data["recordWebEvents"]["contactIds"][0]}


RECORD_WEB = (
    "mutation($e: [WebEventInput!]!) { recordWebEvents(events: $e) { accepted contactIds } }"
)


async def a_probable_duplicate(w: World) -> Vars:
    """Two contacts listing one phone: each is the other's match suggestion."""
    phone = w.phone()
    first = await w.contact(workPhone=phone)
    await w.contact(first="David", cellPhone=phone)
    return {"id": first}


async def a_duplicate_cluster(w: World, org: str = ACME) -> Vars:
    """A caller (phone and email, named on the call) and a curated contact listing both:
    a cluster at 0.9 that the merge rules allow."""
    phone, email = w.phone(org), w.email(org)
    seen = [("PHONE", phone), ("EMAIL", email)]
    await _interaction(w, org, "VOICE", seen, provided={"firstName": "Kim", "lastName": "Park"})
    await w.contact(org, first="Kim", workPhone=phone, personalEmail=email)
    return {}


async def _interaction(
    w: World, org: str, channel: str, seen: list[tuple[str, str]], **more: Any
) -> None:
    """An interaction with these identifiers (and more input fields), as org ``org``."""
    raw = {
        "conversationId": f"conv-{org}-{uuid.uuid4().hex[:10]}",
        "channel": channel,
        "startedAt": datetime.now(UTC).isoformat(),
        "identifiers": [{"type": kind, "value": value} for kind, value in seen],
        **more,
    }
    await w.api.gql(RECORD, {"i": raw}, org=org)


async def a_stitched_cookie(w: World) -> Vars:
    """A cookie an interaction stitched to an auto-created contact (listed in no field)."""
    cookie = f"gc-{uuid.uuid4().hex[:10]}"
    await _interaction(w, ACME, "WEB_CHAT", [("PHONE", w.phone()), ("COOKIE", cookie)])
    return {"v": cookie}


async def a_webhook(w: World) -> Vars:
    data = await w.api.gql('mutation { createWebhook(url: "https://93.184.215.14/hook") { id } }')
    return {"id": data["createWebhook"]["id"]}


async def nothing(w: World) -> Vars:
    await w.contact()  # something to (not) change
    return {}


async def a_note(w: World) -> Vars:
    data = await w.api.gql(
        'mutation($id: ID!) { addNote(contactId: $id, text: "called back") { id } }',
        {"id": await w.contact()},
    )
    return {"id": data["addNote"]["id"]}


UPSERT = """mutation { upsertContact(match: [{type: EMAIL, value: "up@acme.example"}],
  input: {firstName: "Up", lastName: "Sert"}) { created } }"""


V = Permission
PERMISSION_CASES: list[Case] = [
    # queries
    Case(
        "Query.contact",
        "query($id: ID!) { contact(id: $id) { id } }",
        V.CONTACT_VIEW,
        a_contact,
        ("contact",),
    ),
    Case(
        "Query.contacts",
        "query($ids: [ID!]!) { contacts(ids: $ids) { id } }",
        V.CONTACT_VIEW,
        two_contacts,
        ("contacts",),
    ),
    Case(
        "Query.searchContacts",
        "query($q: String!) { searchContacts(query: $q) { totalCount edges { node { id } } } }",
        V.CONTACT_VIEW,
        a_name,
        ("searchContacts",),
    ),
    Case(
        "Query.identifier",
        "query($v: String!) { identifier(type: PHONE, value: $v) { value } }",
        V.CONTACT_VIEW,
        a_phone,
        ("identifier",),
    ),
    Case(
        "Query.reverseLookup",
        "query($v: String!) { reverseLookup(value: $v) { id } }",
        V.CONTACT_VIEW,
        a_phone,
        ("reverseLookup",),
    ),
    Case(
        "Query.mergeSet",
        "query($id: ID!) { mergeSet(contactId: $id) { id size } }",
        V.CONTACT_VIEW,
        an_ancestor,
        ("mergeSet",),
    ),
    Case(
        "Query.journey",
        "query($id: ID!) { journey(contactId: $id) { contactIds conversationCount } }",
        V.SESSION_VIEW,
        an_auto_contact,
        ("journey",),
    ),
    Case(
        "Query.conversation",
        "query($conv: ID!) { conversation(id: $conv) { id channel } }",
        V.CONVERSATION_VIEW_ALL,
        a_linked_conversation,
        ("conversation",),
    ),
    Case(
        "Query.conversations",
        "query { conversations(first: 10) { totalCount edges { node { id } } } }",
        V.CONVERSATION_VIEW_ALL,
        a_linked_conversation,
        ("conversations",),
    ),
    Case(
        "Query.erasureReceipts",
        "query { erasureReceipts { edges { node { id contactIds } } } }",
        V.CONTACT_ERASE,
        an_erasure,
        ("erasureReceipts",),
    ),
    # mutations
    Case(
        "Mutation.eraseContact",
        'mutation($id: ID!) { eraseContact(id: $id, reason: "asked") { id contactIds } }',
        V.CONTACT_ERASE,
        an_ancestor,
        ("eraseContact",),
        writes=("contacts", "identifiers", "conversations", "merge_sets", "erasure_receipts"),
    ),
    Case(
        "Query.changes",
        "query { changes(first: 10) { edges { node { id kind } } } }",
        V.CONTACT_VIEW,
        a_contact,
        ("changes",),
    ),
    Case(
        "Query.webhooks",
        "query { webhooks { id url } }",
        V.WEBHOOK_MANAGE,
        a_webhook,
        ("webhooks",),
    ),
    # mutations
    Case(
        "Mutation.createWebhook",
        'mutation { createWebhook(url: "https://93.184.215.14/hook") { id secret } }',
        V.WEBHOOK_MANAGE,
        nothing,
        ("createWebhook",),
        writes=("webhooks",),
    ),
    Case(
        "Mutation.deleteWebhook",
        "mutation($id: ID!) { deleteWebhook(id: $id) }",
        V.WEBHOOK_MANAGE,
        a_webhook,
        ("deleteWebhook",),
        writes=("webhooks",),
    ),
    Case(
        "Mutation.createContact",
        'mutation { createContact(input: {firstName: "New", lastName: "Person", '
        'cellPhone: "+18037770001"}) { id } }',
        V.CONTACT_ADD,
        nothing,
        ("createContact",),
        writes=("contacts", "identifiers"),
    ),
    Case(
        "Mutation.updateContact",
        'mutation($id: ID!) { updateContact(id: $id, input: {title: "Dr", '
        'homePhone: "+18037770002"}) { id } }',
        V.CONTACT_EDIT,
        a_contact,
        ("updateContact",),
        writes=("contacts", "identifiers"),
    ),
    Case(
        "Mutation.updateContact",
        'mutation($id: ID!) { updateContact(id: $id, input: {firstName: "Promoted"}) { id } }',
        V.CONTACT_EDIT,
        an_auto_contact,
        ("updateContact",),
        writes=("contacts", "identifiers"),
        variant="auto-created",
    ),
    Case(
        "Mutation.deleteContact",
        "mutation($id: ID!) { deleteContact(id: $id) }",
        V.CONTACT_DELETE,
        a_contact,
        ("deleteContact",),
        writes=("contacts", "identifiers"),
    ),
    Case(
        "Mutation.deleteContact",
        "mutation($id: ID!) { deleteContact(id: $id) }",
        V.CONTACT_DELETE,
        an_ancestor,
        ("deleteContact",),
        writes=("contacts", "identifiers", "merge_sets"),
        variant="merge set",
    ),
    Case(
        "Mutation.promoteContact",
        "mutation($id: ID!) { promoteContact(id: $id) { id type } }",
        V.IDENTITY_PROMOTE,
        an_auto_contact,
        ("promoteContact",),
        writes=("contacts", "identifiers"),
    ),
    Case(
        "Mutation.addNote",
        'mutation($id: ID!) { addNote(contactId: $id, text: "called back") { id } }',
        V.CONTACT_EDIT,
        a_contact,
        ("addNote",),
        writes=("notes",),
    ),
    # integrations (CONTRACT.md section 7)
    Case(
        "Query.scanContacts",
        "query { scanContacts(first: 10) { edges { node { id } } } }",
        V.CONTACT_VIEW,
        a_contact,
        ("scanContacts",),
    ),
    Case(
        "Mutation.bulkCreateContacts",
        'mutation { bulkCreateContacts(inputs: [{firstName: "New", lastName: "Person", '
        'cellPhone: "+18037770011"}]) { index contact { id } } }',
        V.CONTACT_ADD,
        nothing,
        ("bulkCreateContacts",),
        writes=("contacts", "identifiers"),
    ),
    Case(
        "Mutation.bulkUpdateContacts",
        'mutation($id: ID!) { bulkUpdateContacts(updates: [{id: $id, input: {title: "Dr", '
        'homePhone: "+18037770012"}}]) { index contact { id } } }',
        V.CONTACT_EDIT,
        a_contact,
        ("bulkUpdateContacts",),
        writes=("contacts", "identifiers"),
    ),
    Case(
        "Mutation.bulkDeleteContacts",
        "mutation($id: ID!) { bulkDeleteContacts(ids: [$id]) { index contact { id } } }",
        V.CONTACT_DELETE,
        a_contact,
        ("bulkDeleteContacts",),
        writes=("contacts", "identifiers"),
    ),
    Case(
        "Mutation.upsertContact",
        UPSERT,
        V.CONTACT_ADD,
        nothing,
        ("upsertContact",),
        writes=("contacts", "identifiers"),
        needs=(V.CONTACT_EDIT,),
    ),
    Case(
        "Mutation.upsertContact",
        UPSERT,
        V.CONTACT_EDIT,
        nothing,
        ("upsertContact",),
        writes=("contacts", "identifiers"),
        needs=(V.CONTACT_ADD,),
        variant="edit",
    ),
    Case(
        "Mutation.updateNote",
        'mutation($id: ID!) { updateNote(id: $id, text: "edited") { id text } }',
        V.CONTACT_EDIT,
        a_note,
        ("updateNote",),
        writes=("notes",),
    ),
    Case(
        "Mutation.deleteNote",
        "mutation($id: ID!) { deleteNote(id: $id) }",
        V.CONTACT_EDIT,
        a_note,
        ("deleteNote",),
        writes=("notes",),
    ),
    Case(
        "Mutation.mergeContacts",
        "mutation($ids: [ID!]!) { mergeContacts(contactIds: $ids) { id } }",
        V.IDENTITY_MERGE,
        two_autos,
        ("mergeContacts",),
        writes=("contacts", "identifiers", "merge_sets"),
    ),
    Case(
        "Mutation.unmergeContacts",
        "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }",
        V.IDENTITY_MERGE,
        an_ancestor,
        ("unmergeContacts",),
        writes=("contacts", "identifiers", "merge_sets"),
    ),
    Case(
        "Mutation.claimIdentifier",
        "mutation($id: ID!) { claimIdentifier(contactId: $id, "
        'identifier: {type: COOKIE, value: "gc-by-hand"}) { value } }',
        V.CONTACT_EDIT,
        a_contact,
        ("claimIdentifier",),
        writes=("identifiers",),
    ),
    Case(
        "Mutation.releaseIdentifier",
        "mutation($v: String!) { releaseIdentifier(type: COOKIE, value: $v) }",
        V.CONTACT_EDIT,
        a_stitched_cookie,
        ("releaseIdentifier",),
        writes=("identifiers",),
    ),
    Case(
        "Query.duplicateClusters",
        "query { duplicateClusters(minScore: 0.5) { totalCount edges { node { id } } } }",
        V.CONTACT_VIEW,
        a_duplicate_cluster,
        ("duplicateClusters",),
    ),
    Case(
        "Mutation.mergeDuplicateClusters",
        "mutation { mergeDuplicateClusters(minScore: 0.5) { id } }",
        V.IDENTITY_MERGE,
        a_duplicate_cluster,
        ("mergeDuplicateClusters",),
        writes=("contacts", "identifiers", "merge_sets"),
    ),
    Case(
        "Query.identitySettings",
        "query { identitySettings { autoMerge autoMergeMinScore } }",
        V.IDENTITY_CONFIGURE,
        nothing,
        ("identitySettings",),
    ),
    Case(
        "Mutation.updateIdentitySettings",
        "mutation { updateIdentitySettings(input: {autoMerge: true}) { autoMerge } }",
        V.IDENTITY_CONFIGURE,
        nothing,
        ("updateIdentitySettings",),
        writes=("identity_settings",),
    ),
    Case(
        "Mutation.linkConversation",
        LINK,
        V.CONVERSATION_ASSOCIATE,
        a_relink,
        ("linkConversation",),
        writes=("conversations",),
    ),
    Case(
        "Mutation.unlinkConversation",
        "mutation($conv: ID!) { unlinkConversation(conversationId: $conv) { id } }",
        V.CONVERSATION_ASSOCIATE,
        a_linked_conversation,
        ("unlinkConversation",),
        writes=("conversations",),
    ),
    Case(
        "Mutation.recordInteraction",
        "mutation($i: InteractionInput!) { recordInteraction(input: $i) { created } }",
        V.CONVERSATION_INGEST,
        a_new_interaction,
        ("recordInteraction",),
        writes=("conversations", "contacts", "identifiers"),
    ),
    Case(
        # the suggestions are other contacts: asking for them needs contact:view up front
        "Mutation.recordInteraction",
        "mutation($i: InteractionInput!) { recordInteraction(input: $i) { created "
        "otherMatches { id } } }",
        V.CONTACT_VIEW,
        a_new_interaction,
        ("recordInteraction",),
        needs=(V.CONVERSATION_INGEST,),
        writes=("conversations", "contacts", "identifiers"),
        variant="with otherMatches",
    ),
    Case(
        "Mutation.recordWebEvents",
        RECORD_WEB,
        V.CONVERSATION_INGEST,
        new_web_events,
        ("recordWebEvents",),
        writes=("web_events", "web_sessions", "contacts", "identifiers"),
    ),
    # guarded fields
    Case(
        "WebSession.contact",
        "query($id: ID!) { journey(contactId: $id) { webSessionCount "
        "webSessions { edges { node { id contact { id } } } } } }",
        V.CONTACT_VIEW,
        a_web_visitor,
        ("journey", "webSessions", "edges", 0, "node", "contact"),
        needs=(V.SESSION_VIEW,),
        intact=("journey", "webSessionCount"),
    ),
    Case(
        "Contact.journey",
        "query($id: ID!) { contact(id: $id) { id journey { conversationCount } } }",
        V.SESSION_VIEW,
        an_auto_contact,
        ("contact", "journey"),
        needs=(V.CONTACT_VIEW,),
        intact=("contact", "id"),
    ),
    Case(
        "Conversation.contact",
        "query($conv: ID!) { conversation(id: $conv) { id contact { id } } }",
        V.CONTACT_VIEW,
        a_merged_conversation,
        ("conversation", "contact"),
        needs=(V.CONVERSATION_VIEW_ALL,),
        intact=("conversation", "id"),
    ),
    Case(
        "Conversation.contact",
        "query { conversations(first: 5) { edges { node { id contact { id } } } } }",
        V.CONTACT_VIEW,
        a_linked_conversation,
        ("conversations", "edges", 0, "node", "contact"),
        needs=(V.CONVERSATION_VIEW_ALL,),
        intact=("conversations", "edges", 0, "node", "id"),
        variant="in conversations",
    ),
    Case(
        "Conversation.individual",
        "query($conv: ID!) { conversation(id: $conv) { id individual { id } } }",
        V.CONTACT_VIEW,
        a_merged_conversation,
        ("conversation", "individual"),
        needs=(V.CONVERSATION_VIEW_ALL,),
        intact=("conversation", "id"),
    ),
    Case(
        "Conversation.individual",
        "query($id: ID!) { journey(contactId: $id) { contactIds "
        "conversations { edges { node { id individual { id } } } } } }",
        V.CONTACT_VIEW,
        an_auto_contact,
        ("journey", "conversations", "edges", 0, "node", "individual"),
        needs=(V.SESSION_VIEW,),
        intact=("journey", "conversations", "edges", 0, "node", "id"),
        variant="in a journey",
    ),
    Case(
        # Identifier.contact is non-null: the denial nulls the nearest nullable parent
        "Identifier.contact",
        "query($id: ID!) { journey(contactId: $id) { contact { identifiers { value "
        "contact { id } } } } }",
        V.CONTACT_VIEW,
        an_auto_contact,
        ("journey", "contact", "identifiers", 0, "contact"),
        needs=(V.SESSION_VIEW,),
    ),
    Case(
        "Contact.matchSuggestions",
        "query($id: ID!) { journey(contactId: $id) { contactIds contact { id "
        "matchSuggestions { score } } } }",
        V.CONTACT_VIEW,
        a_probable_duplicate,
        ("journey", "contact", "matchSuggestions"),
        needs=(V.SESSION_VIEW,),  # non-null: the denial nulls the journey
    ),
    Case(
        "MergeSet.canonical",
        "query($id: ID!) { journey(contactId: $id) { contactIds contact { id "
        "mergeSet { id canonical { id } } } } }",
        V.CONTACT_VIEW,
        a_merged_set,
        ("journey", "contact", "mergeSet", "canonical"),
        needs=(V.SESSION_VIEW,),
        intact=("journey", "contact", "id"),
    ),
    Case(
        "MergeSet.contacts",
        "query($id: ID!) { journey(contactId: $id) { contactIds contact { id "
        "mergeSet { id contacts { id } } } } }",
        V.CONTACT_VIEW,
        a_merged_set,
        ("journey", "contact", "mergeSet", "contacts"),
        needs=(V.SESSION_VIEW,),
        intact=("journey", "contact", "id"),
    ),
]


def _lacking(permission: Permission) -> list[str]:
    return [p for p in ALL_PERMISSIONS if p != permission]


@pytest.mark.parametrize("case", PERMISSION_CASES, ids=[c.id for c in PERMISSION_CASES])
async def test_without_its_permission_is_forbidden_there_and_writes_nothing(
    api: Api, store: Store, world: World, case: Case
) -> None:
    variables = await case.setup(world)
    before = await snapshot(store)
    response = await api.post(case.document, variables, permissions=_lacking(case.permission))
    assert response.status_code == 200, response.text
    body = response.json()
    errors = body.get("errors") or []
    assert codes(errors) == ["FORBIDDEN"], body
    assert errors[0]["path"] == list(case.path), body
    assert str(case.permission) in errors[0]["message"]
    assert at(body.get("data"), case.path) is None, body
    if case.intact is not None:
        assert at(body["data"], case.intact) is not None, body
    assert await snapshot(store) == before, f"{case.id} wrote without its permission"


@pytest.mark.parametrize("case", PERMISSION_CASES, ids=[c.id for c in PERMISSION_CASES])
async def test_with_just_the_permissions_it_needs_it_answers_and_writes(
    api: Api, store: Store, world: World, case: Case
) -> None:
    """The positive control: the document is valid, the permission suffices, and a mutation
    changes the collections it names (so 'nothing changed' above means something)."""
    variables = await case.setup(world)
    before = await snapshot(store)
    granted = [str(case.permission), *(str(p) for p in case.needs)]
    data = await api.gql(case.document, variables, permissions=granted)
    assert found(at(data, case.path)), data
    after = await snapshot(store)
    for name in case.writes:
        assert after[name] != before[name], f"{case.id} did not change {name}"
    if not case.writes:
        assert after == before
    assert await find_violations(store) == []


def _declared_in_schema() -> set[tuple[str, str]]:
    """(``Type.field``, permission) of every field of the schema that needs a permission:
    its permission classes (``permission_classes`` and ``stream_permissions`` both become a
    ``PermissionExtension``, checked before its resolver runs) and the checks its resolver
    makes itself when the request needs them (``checked_in_code`` metadata)."""
    declared: set[tuple[str, str]] = set()
    for type_name, named in schema._schema.type_map.items():
        if type_name.startswith("__") or not isinstance(named, GraphQLObjectType):
            continue
        for field_name, field in named.fields.items():
            definition = (field.extensions or {}).get("strawberry-definition")
            if definition is None:
                continue
            op = f"{type_name}.{field_name}"
            for extension in definition.extensions:
                if not isinstance(extension, PermissionExtension):
                    continue
                for permission in extension.permissions:
                    assert isinstance(permission, Needs), (op, permission)
                    declared.add((op, str(permission.permission)))
            for permission in definition.metadata.get(CHECKED_IN_CODE, ()):
                declared.add((op, str(permission)))
    return declared


def test_the_schema_declares_the_permissions_of_the_fields_it_guards() -> None:
    """The reading above is not vacuous: a root field, a guarded field and a check made in
    code are all found, with their permissions."""
    declared = _declared_in_schema()
    assert ("Query.contact", str(V.CONTACT_VIEW)) in declared
    assert ("Mutation.createContact", str(V.CONTACT_ADD)) in declared
    assert ("Contact.journey", str(V.SESSION_VIEW)) in declared
    assert ("Subscription.journeyUpdates", str(V.SESSION_VIEW)) in declared
    assert ("Conversation.contact", str(V.CONTACT_VIEW)) in declared
    assert ("Mutation.recordInteraction", str(V.CONTACT_VIEW)) in declared
    assert not any(op.startswith("Contact.firstName") for op, _ in declared)


def test_the_table_covers_every_operation_and_every_guarded_field() -> None:
    graphql_schema = schema._schema
    assert graphql_schema.query_type is not None
    assert graphql_schema.mutation_type is not None
    roots = {f"Query.{name}" for name in graphql_schema.query_type.fields} | {
        f"Mutation.{name}" for name in graphql_schema.mutation_type.fields
    }
    in_table = {(c.op, str(c.permission)) for c in PERMISSION_CASES}
    assert roots <= {op for op, _ in in_table}, roots - {op for op, _ in in_table}

    # every field that declares a permission is in a table, with that permission
    in_table |= {(c.op, str(c.permission)) for c in SUBSCRIPTION_CASES}
    in_schema = _declared_in_schema()
    assert in_schema <= in_table, in_schema - in_table
    assert graphql_schema.subscription_type is not None
    subscriptions = {f"Subscription.{name}" for name in graphql_schema.subscription_type.fields}
    assert subscriptions <= {c.op for c in SUBSCRIPTION_CASES}
    # and every row of the table is really declared in the schema
    assert in_table <= in_schema, in_table - in_schema


# --- the tenancy table -------------------------------------------------------------------------

Check = Callable[[World, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Foreign:
    name: str
    document: str
    setup: Setup  # acme's data (and the caller's own, in org "other"); variables for "other"
    expect: str | Check  # "absent" (null/empty, no error), "NOT_FOUND", or a custom check


async def acme_contact(w: World) -> Vars:
    return {"id": await w.contact()}


async def acme_ancestor(w: World) -> Vars:
    _, ancestor, _ = await w.merged()
    return {"id": ancestor}


async def acme_canonical(w: World) -> Vars:
    canonical, _, _ = await w.merged()
    return {"id": canonical}


async def acme_auto(w: World) -> Vars:
    return {"id": await w.auto()}


async def acme_contacts(w: World) -> Vars:
    canonical, ancestor, _ = await w.merged()
    return {"ids": [await w.contact(), canonical, ancestor]}


async def acme_name(w: World) -> Vars:
    await w.contact(first="Acmeonly")
    return {"q": "Acmeonly"}


async def acme_phone(w: World) -> Vars:
    phone = w.phone()
    await w.contact(workPhone=phone)
    return {"v": phone}


async def acme_email(w: World) -> Vars:
    email = w.email()
    await w.contact(workEmail=email)
    return {"v": email}


async def acme_conversation(w: World) -> Vars:
    cid, _ = await w.record()
    return {"conv": cid}


async def own_and_acme_contacts(w: World) -> Vars:
    return {"ids": [await w.contact(OTHER), await w.auto()]}


async def acme_erasure(w: World) -> Vars:
    await an_erasure(w)
    return {}


async def acme_pair(w: World) -> Vars:
    return {"ids": [await w.auto(), await w.auto()]}


async def own_conversation_acme_contact(w: World) -> Vars:
    return {"conv": await w.unlinked(OTHER), "id": await w.contact()}


async def acme_conversation_own_contact(w: World) -> Vars:
    cid, _ = await w.record()
    return {"conv": cid, "id": await w.contact(OTHER)}


async def conversations_everywhere(w: World) -> tuple[list[str], str]:
    """acme: a merge set and a contact with conversations; other: one of each.
    Returns acme's contact ids and the caller's own contact id."""
    canonical, a, b = await w.merged()
    _, single = await w.record()
    _, own = await w.record(OTHER)
    assert single is not None and own is not None
    return [canonical, a, b, single], own


async def foreign_contact_ids(w: World) -> Vars:
    acme, _ = await conversations_everywhere(w)
    return {"ids": acme}


async def own_and_foreign_contact_ids(w: World) -> Vars:
    acme, own = await conversations_everywhere(w)
    return {"ids": [acme[0], own, *acme[1:]]}


async def no_contact_ids(w: World) -> Vars:
    await conversations_everywhere(w)
    return {}


async def acme_phone_interaction(w: World) -> Vars:
    """acme's conversation id and acme's phone, recorded again by org other."""
    phone = w.phone()
    acme_id = await w.contact(workPhone=phone)
    cid, resolved = await w.record(phone=phone)
    assert resolved == acme_id
    return {
        "i": {
            "conversationId": cid,
            "channel": "VOICE",
            "startedAt": datetime.now(UTC).isoformat(),
            "identifiers": [{"type": "PHONE", "value": phone}],
        }
    }


async def acme_phone_contact(w: World) -> Vars:
    phone = w.phone()
    await w.contact(workPhone=phone)
    return {"i": {"firstName": "Same", "lastName": "Phone", "workPhone": phone}}


CONVERSATIONS = """query($ids: [ID!]) {
  conversations(contactIds: $ids, first: 100) {
    totalCount edges { node { id externalContactId contact { id } individual { id } } }
  }
}"""


async def acme_identity_settings(w: World) -> Vars:
    """acme merges automatically and blocks a value of its own."""
    secret = f"gc-acme-{uuid.uuid4().hex[:8]}"
    w.secrets[ACME].add(secret)
    blocked = f'[{{type: COOKIE, value: "{secret}"}}]'
    await w.api.gql(
        "mutation { updateIdentitySettings(input: {autoMerge: true, autoMergeMinScore: 0.97, "
        f"blockedIdentifiers: {blocked}}}) {{ autoMerge }} }}"
    )
    return {}


async def own_default_settings(w: World, body: dict[str, Any]) -> None:
    assert body["data"]["identitySettings"] == {
        "autoMerge": False,
        "autoMergeMinScore": 0.95,
        "blockedIdentifiers": [],
    }, body


async def own_settings_changed(w: World, body: dict[str, Any]) -> None:
    assert body["data"]["updateIdentitySettings"] == {
        "autoMerge": False,
        "autoMergeMinScore": 0.91,
        "blockedIdentifiers": [],
    }, body
    acme = await w.api.gql("query { identitySettings { autoMerge autoMergeMinScore } }")
    assert acme["identitySettings"] == {"autoMerge": True, "autoMergeMinScore": 0.97}


async def only_own_conversations(w: World, body: dict[str, Any]) -> None:
    """Foreign contactIds are ignored: the pull holds the caller's conversations only."""
    assert "errors" not in body, body
    mine = {d["cid"] for d in await w.store.conversations.find({"org": OTHER}).to_list()}
    got = {e["node"]["id"] for e in body["data"]["conversations"]["edges"]}
    assert got <= mine, got - mine
    assert body["data"]["conversations"]["totalCount"] == len(got)


async def conversations_of_foreign_ids_only(w: World, body: dict[str, Any]) -> None:
    await only_own_conversations(w, body)
    assert body["data"]["conversations"] == {"totalCount": 0, "edges": []}


async def conversations_of_own_and_foreign(w: World, body: dict[str, Any]) -> None:
    await only_own_conversations(w, body)
    (edge,) = body["data"]["conversations"]["edges"]
    own = await w.store.conversations.find_one({"org": OTHER})
    assert own is not None
    assert edge["node"]["id"] == own["cid"]


async def recorded_as_new_in_own_org(w: World, body: dict[str, Any]) -> None:
    """acme's conversation id and phone mean nothing in org other: a new conversation and a
    new auto-created contact of its own; no acme contact among the matches."""
    assert "errors" not in body, body
    resolution = body["data"]["recordInteraction"]
    assert resolution["created"] is True
    assert resolution["otherMatches"] == []
    contact_id = resolution["contact"]["id"]
    doc = await w.store.contacts.find_one({"_id": contact_id})
    assert doc is not None and doc["org"] == OTHER
    conversation = await w.store.conversations.find_one({"org": OTHER})
    assert conversation is not None
    assert conversation["externalContactId"] == contact_id


async def acme_cookie_events(w: World) -> Vars:
    """acme's visitor's cookie, tracked again by org other."""
    events = await new_web_events(w)
    await w.api.gql(RECORD_WEB, events)
    return events


async def visited_as_new_in_own_org(w: World, body: dict[str, Any]) -> None:
    """acme's cookie means nothing in org other: an EPHEMERAL visitor of its own."""
    assert "errors" not in body, body
    [contact_id] = body["data"]["recordWebEvents"]["contactIds"]
    doc = await w.store.contacts.find_one({"_id": contact_id})
    assert doc is not None and doc["org"] == OTHER and doc["type"] == "EPHEMERAL"
    events = await w.store.web_events.find({"org": OTHER}).to_list()
    assert len(events) == 1


async def acme_and_own_changes(w: World) -> Vars:
    """acme's changes (a contact, a merge) and one of the caller's own."""
    await w.merged()
    await w.contact(OTHER)
    return {}


async def only_own_changes(w: World, body: dict[str, Any]) -> None:
    """The feed holds the caller's own changes only."""
    assert "errors" not in body, body
    mine = {d["_id"] for d in await w.store.contacts.find({"org": OTHER}).to_list()}
    got = [e["node"] for e in body["data"]["changes"]["edges"]]
    assert got, body
    assert {c["contactId"] for c in got} <= mine, got


async def webhook_created_in_own_org(w: World, body: dict[str, Any]) -> None:
    assert "errors" not in body, body
    hooks = await w.store.db["webhooks"].find({}).to_list()
    assert [h["org"] for h in hooks] == [ACME, OTHER]


async def created_in_own_org(w: World, body: dict[str, Any]) -> None:
    """The same phone is claimed in both orgs; each org's identifier is its own contact."""
    assert "errors" not in body, body
    contact_id = body["data"]["createContact"]["id"]
    claims = await w.store.identifiers.find({"contactId": contact_id}).to_list()
    assert [c["org"] for c in claims] == [OTHER]


SCAN = "query { scanContacts(first: 200, types: [CURATED, IDENTIFIED]) { edges { node { id } } } }"
BULK_UPDATE = """mutation($id: ID!) {
  bulkUpdateContacts(updates: [{id: $id, input: {firstName: "Hijacked"}}]) {
    index contact { id } error { code } } }"""
BULK_DELETE = """mutation($id: ID!) {
  bulkDeleteContacts(ids: [$id]) { index contact { id } error { code } } }"""
BULK_CREATE = """mutation($i: ContactInput!) {
  bulkCreateContacts(inputs: [$i]) { index contact { id } error { code } } }"""
UPSERT_PHONE = """mutation($phone: String!) {
  upsertContact(match: [{type: PHONE, value: $phone}], input: {firstName: "Same", lastName: "P"})
  { created contact { id } } }"""


async def acme_note(w: World) -> Vars:
    return await a_note(w)


async def acme_phone_match(w: World) -> Vars:
    phone = w.phone()
    await w.contact(workPhone=phone)
    return {"phone": phone}


async def every_item_not_found(w: World, body: dict[str, Any]) -> None:
    """A foreign id in a bulk item is that item's NOT_FOUND, as an unknown id is."""
    assert "errors" not in body, body
    (items,) = body["data"].values()
    assert [(i["contact"], i["error"]["code"]) for i in items] == [(None, "NOT_FOUND")]


async def bulk_created_in_own_org(w: World, body: dict[str, Any]) -> None:
    assert "errors" not in body, body
    (item,) = body["data"]["bulkCreateContacts"]
    assert item["error"] is None, item
    found_claims = await w.store.identifiers.find({"contactId": item["contact"]["id"]}).to_list()
    assert [c["org"] for c in found_claims] == [OTHER]


async def upserted_in_own_org(w: World, body: dict[str, Any]) -> None:
    """acme's phone is unclaimed in org other: the upsert creates other's own contact."""
    assert "errors" not in body, body
    result = body["data"]["upsertContact"]
    assert result["created"] is True
    found_claims = await w.store.identifiers.find({"contactId": result["contact"]["id"]}).to_list()
    assert [c["org"] for c in found_claims] == [OTHER]


F = Foreign
TENANCY_CASES: list[Foreign] = [
    F("contact", "query($id: ID!) { contact(id: $id) { id } }", acme_contact, "absent"),
    F(
        "recordWebEvents(foreign cookie)",
        RECORD_WEB,
        acme_cookie_events,
        visited_as_new_in_own_org,
    ),
    F("contact(ancestor)", "query($id: ID!) { contact(id: $id) { id } }", acme_ancestor, "absent"),
    F("contacts", "query($ids: [ID!]!) { contacts(ids: $ids) { id } }", acme_contacts, "absent"),
    F(
        "searchContacts(name)",
        "query($q: String!) { searchContacts(query: $q, types: [CURATED, IDENTIFIED, "
        "EPHEMERAL]) { totalCount edges { node { id } } } }",
        acme_name,
        "absent",
    ),
    F(
        "searchContacts(phone)",
        "query($v: String!) { searchContacts(query: $v) { totalCount edges { node { id } } } }",
        acme_phone,
        "absent",
    ),
    F(
        "searchContacts(email)",
        "query($v: String!) { searchContacts(query: $v) { totalCount edges { node { id } } } }",
        acme_email,
        "absent",
    ),
    F(
        "identifier(PHONE)",
        "query($v: String!) { identifier(type: PHONE, value: $v) { value contact { id } } }",
        acme_phone,
        "absent",
    ),
    F(
        "identifier(EMAIL)",
        "query($v: String!) { identifier(type: EMAIL, value: $v) { value contact { id } } }",
        acme_email,
        "absent",
    ),
    F(
        "reverseLookup",
        "query($v: String!) { reverseLookup(value: $v) { id } }",
        acme_phone,
        "absent",
    ),
    F(
        "mergeSet(contactId)",
        "query($id: ID!) { mergeSet(contactId: $id) { id contactIds } }",
        acme_ancestor,
        "absent",
    ),
    F(
        "journey(contactId)",
        "query($id: ID!) { journey(contactId: $id) { contactIds conversationCount } }",
        acme_auto,
        "absent",
    ),
    F(
        "journey(ancestor)",
        "query($id: ID!) { journey(contactId: $id) { contactIds conversationCount } }",
        acme_ancestor,
        "absent",
    ),
    F(
        "conversation",
        "query($conv: ID!) { conversation(id: $conv) { id contact { id } } }",
        acme_conversation,
        "absent",
    ),
    F(
        "conversations(contactIds: foreign)",
        CONVERSATIONS,
        foreign_contact_ids,
        conversations_of_foreign_ids_only,
    ),
    F(
        "conversations(contactIds: own + foreign)",
        CONVERSATIONS,
        own_and_foreign_contact_ids,
        conversations_of_own_and_foreign,
    ),
    F("conversations()", CONVERSATIONS, no_contact_ids, only_own_conversations),
    F(
        "updateContact",
        'mutation($id: ID!) { updateContact(id: $id, input: {firstName: "Hijacked"}) { id } }',
        acme_contact,
        "NOT_FOUND",
    ),
    F(
        "updateContact(ancestor)",
        'mutation($id: ID!) { updateContact(id: $id, input: {firstName: "Hijacked"}) { id } }',
        acme_ancestor,
        "NOT_FOUND",
    ),
    F("deleteContact", "mutation($id: ID!) { deleteContact(id: $id) }", acme_contact, "NOT_FOUND"),
    F(
        "identitySettings",
        "query { identitySettings { autoMerge autoMergeMinScore blockedIdentifiers { value } } }",
        acme_identity_settings,
        own_default_settings,
    ),
    F(
        "updateIdentitySettings",
        "mutation { updateIdentitySettings(input: {autoMergeMinScore: 0.91}) "
        "{ autoMerge autoMergeMinScore blockedIdentifiers { value } } }",
        acme_identity_settings,
        own_settings_changed,
    ),
    F(
        "duplicateClusters",
        "query { duplicateClusters(minScore: 0) { totalCount edges { node { id } } } }",
        a_duplicate_cluster,
        "absent",
    ),
    F(
        "mergeDuplicateClusters",
        "mutation { mergeDuplicateClusters(minScore: 0) { id } }",
        a_duplicate_cluster,
        "absent",
    ),
    F(
        "claimIdentifier",
        "mutation($id: ID!) { claimIdentifier(contactId: $id, "
        'identifier: {type: COOKIE, value: "gc-hijack"}) { value } }',
        acme_contact,
        "NOT_FOUND",
    ),
    F(
        "releaseIdentifier",
        "mutation($v: String!) { releaseIdentifier(type: PHONE, value: $v) }",
        acme_phone,
        "NOT_FOUND",
    ),
    F(
        "deleteContact(ancestor)",
        "mutation($id: ID!) { deleteContact(id: $id) }",
        acme_ancestor,
        "NOT_FOUND",
    ),
    F(
        "promoteContact",
        "mutation($id: ID!) { promoteContact(id: $id) { id } }",
        acme_auto,
        "NOT_FOUND",
    ),
    F(
        "addNote",
        'mutation($id: ID!) { addNote(contactId: $id, text: "hello") { id } }',
        acme_contact,
        "NOT_FOUND",
    ),
    F("eraseContact", ERASE, acme_contact, "NOT_FOUND"),
    F("eraseContact(ancestor)", ERASE, acme_ancestor, "NOT_FOUND"),
    F(
        "erasureReceipts",
        "query { erasureReceipts { edges { node { id contactIds } } } }",
        acme_erasure,
        "absent",
    ),
    F("mergeContacts(own + foreign)", MERGE, own_and_acme_contacts, "NOT_FOUND"),
    F("mergeContacts(foreign pair)", MERGE, acme_pair, "NOT_FOUND"),
    F(
        "unmergeContacts",
        "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }",
        acme_canonical,
        "NOT_FOUND",
    ),
    F(
        "unmergeContacts(ancestor)",
        "mutation($id: ID!) { unmergeContacts(contactId: $id) { id } }",
        acme_ancestor,
        "NOT_FOUND",
    ),
    F("linkConversation(foreign contact)", LINK, own_conversation_acme_contact, "NOT_FOUND"),
    F("linkConversation(foreign conversation)", LINK, acme_conversation_own_contact, "NOT_FOUND"),
    F(
        "unlinkConversation",
        "mutation($conv: ID!) { unlinkConversation(conversationId: $conv) { id } }",
        acme_conversation,
        "NOT_FOUND",
    ),
    F(
        "recordInteraction(foreign conversation id and phone)",
        "mutation($i: InteractionInput!) { recordInteraction(input: $i) { created "
        "conversation { id externalContactId } contact { id } otherMatches { id } } }",
        acme_phone_interaction,
        recorded_as_new_in_own_org,
    ),
    F(
        "createContact(foreign phone)",
        CREATE,
        acme_phone_contact,
        created_in_own_org,
    ),
    F("scanContacts", SCAN, acme_contact, "absent"),
    F("bulkUpdateContacts", BULK_UPDATE, acme_contact, every_item_not_found),
    F("bulkUpdateContacts(ancestor)", BULK_UPDATE, acme_ancestor, every_item_not_found),
    F("bulkDeleteContacts", BULK_DELETE, acme_contact, every_item_not_found),
    F("bulkDeleteContacts(ancestor)", BULK_DELETE, acme_ancestor, every_item_not_found),
    F(
        "bulkCreateContacts(foreign phone)",
        BULK_CREATE,
        acme_phone_contact,
        bulk_created_in_own_org,
    ),
    F("upsertContact(foreign phone)", UPSERT_PHONE, acme_phone_match, upserted_in_own_org),
    F(
        "updateNote",
        'mutation($id: ID!) { updateNote(id: $id, text: "x") { id } }',
        acme_note,
        "NOT_FOUND",
    ),
    F("deleteNote", "mutation($id: ID!) { deleteNote(id: $id) }", acme_note, "NOT_FOUND"),
    F(
        "changes()",
        "query { changes { edges { node { id kind contactId contactIds } } } }",
        acme_and_own_changes,
        only_own_changes,
    ),
    F("webhooks", "query { webhooks { id url } }", a_webhook, "absent"),
    F("deleteWebhook", "mutation($id: ID!) { deleteWebhook(id: $id) }", a_webhook, "NOT_FOUND"),
    F(
        "createWebhook",
        'mutation { createWebhook(url: "https://93.184.215.15/hook") { id } }',
        a_webhook,
        webhook_created_in_own_org,
    ),
]


def _unknown(text: str, ids: dict[str, str]) -> str:
    for known, unknown in ids.items():
        text = text.replace(known, unknown)
    return text


def _unknown_ids(acme_ids: list[str]) -> dict[str, str]:
    """A fresh id of the same shape for each acme id (an ObjectId for an ObjectId)."""
    return {
        i: str(ObjectId()) if ObjectId.is_valid(i) else f"conv-unknown-{uuid.uuid4().hex[:10]}"
        for i in acme_ids
    }


@pytest.mark.parametrize("case", TENANCY_CASES, ids=[c.name for c in TENANCY_CASES])
async def test_an_id_of_another_org_behaves_like_an_unknown_id(
    api: Api, store: Store, world: World, case: Foreign
) -> None:
    variables = await case.setup(world)
    acme_before = await snapshot(store, ACME)
    everything_before = await snapshot(store)
    acme_ids = await world.ids_of(ACME)

    response = await api.post(case.document, variables, org=OTHER)
    assert response.status_code == 200, response.text
    body = response.json()

    # nothing of acme changed, and nothing of acme shows (beyond what the caller sent)
    assert await snapshot(store, ACME) == acme_before, f"{case.name} changed acme's data"
    sent = json.dumps(variables)
    for secret in world.secrets[ACME] | set(acme_ids):
        if secret not in sent:
            assert secret not in response.text, f"{case.name} shows acme's {secret}"

    if isinstance(case.expect, str):
        # exactly what an unknown id gets, ids aside
        assert await snapshot(store) == everything_before, f"{case.name} wrote something"
        unknown = _unknown_ids(acme_ids)
        unknown_vars = json.loads(_unknown(sent, unknown))
        baseline = await api.post(case.document, unknown_vars, org=OTHER)
        assert json.loads(_unknown(response.text, unknown)) == baseline.json()
        if case.expect == "absent":
            assert "errors" not in body, body
            assert not found(body["data"]), body
        else:
            assert body["data"] is None, body
            assert codes(body["errors"]) == [case.expect], body
    else:
        await case.expect(world, body)
    assert await find_violations(store) == []


def test_the_tenancy_table_reaches_every_operation_that_takes_an_id() -> None:
    reached = {re.split(r"[( ]", c.name)[0] for c in TENANCY_CASES}
    graphql_schema = schema._schema
    assert graphql_schema.query_type is not None
    assert graphql_schema.mutation_type is not None
    roots = set(graphql_schema.query_type.fields) | set(graphql_schema.mutation_type.fields)
    assert roots <= reached, roots - reached


# --- the NDJSON export -------------------------------------------------------------------------

EXPORT = "/export/conversations.ndjson"


async def _export(api: Api, org: str, permissions: list[str] | tuple[str, ...]) -> httpx.Response:
    token = api.token(org, permissions=permissions)
    return await api.http.get(EXPORT, headers={"Authorization": f"Bearer {token}"})


async def test_the_export_holds_only_the_callers_org(api: Api, store: Store, world: World) -> None:
    await conversations_everywhere(world)
    await world.unlinked()
    acme_ids = await world.ids_of(ACME)
    own = {d["cid"] for d in await store.conversations.find({"org": OTHER}).to_list()}

    response = await _export(api, OTHER, [str(Permission.CONVERSATION_VIEW_ALL)])
    assert response.status_code == 200, response.text
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    assert {line["id"] for line in lines} == own
    for secret in world.secrets[ACME] | set(acme_ids):
        assert secret not in response.text

    # the positive control: acme's own export has all of acme's conversations
    response = await _export(api, ACME, [str(Permission.CONVERSATION_VIEW_ALL)])
    assert response.status_code == 200, response.text
    acme = {d["cid"] for d in await store.conversations.find({"org": ACME}).to_list()}
    assert {json.loads(line)["id"] for line in response.text.splitlines() if line} == acme
    assert len(acme) == 4


async def test_the_export_without_view_all_is_403_forbidden(
    api: Api, store: Store, world: World
) -> None:
    await conversations_everywhere(world)
    for org in (ACME, OTHER):
        response = await _export(api, org, _lacking(Permission.CONVERSATION_VIEW_ALL))
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert codes(body["errors"]) == ["FORBIDDEN"]
        for secret in world.secrets[ACME] | world.secrets[OTHER]:
            assert secret not in response.text


# --- the subscription, over a real WebSocket ---------------------------------------------------


@dataclass(frozen=True)
class SubscriptionCase:
    op: str
    document: str
    permission: Permission
    setup: Setup  # acme's data; the variables
    takes_id: bool = True  # about one of the org's ids (else: the org's whole stream)


SUBSCRIPTION_CASES = [
    SubscriptionCase(
        "Subscription.journeyUpdates",
        "subscription($id: ID!) { journeyUpdates(contactId: $id) { id } }",
        V.SESSION_VIEW,
        acme_auto,
    ),
    SubscriptionCase(
        "Subscription.changes",
        "subscription { changes { id kind } }",
        V.CONTACT_VIEW,
        acme_auto,
        takes_id=False,
    ),
]


async def _first_message(url: str, token: str, document: str, variables: Vars) -> Any:
    """The first message of a graphql-transport-ws subscription (after the ack)."""
    async with websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ack["type"] == "connection_ack", ack
        payload = {"query": document, "variables": variables}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        return json.loads(await asyncio.wait_for(ws.recv(), 5))


@pytest.mark.parametrize("case", SUBSCRIPTION_CASES, ids=[c.op for c in SUBSCRIPTION_CASES])
async def test_a_subscription_without_its_permission_is_forbidden(
    api: Api, world: World, ws_url: str, case: SubscriptionCase
) -> None:
    variables = await case.setup(world)
    token = api.token(ACME, permissions=_lacking(case.permission))
    message = await _first_message(ws_url, token, case.document, variables)
    assert message["type"] == "next", message
    assert message["payload"]["data"] is None
    assert codes(message["payload"]["errors"]) == ["FORBIDDEN"], message


ID_CASES = [c for c in SUBSCRIPTION_CASES if c.takes_id]


@pytest.mark.parametrize("case", ID_CASES, ids=[c.op for c in ID_CASES])
async def test_a_subscription_to_another_orgs_id_is_like_an_unknown_id(
    api: Api, world: World, ws_url: str, case: SubscriptionCase
) -> None:
    variables = await case.setup(world)
    token = api.token(OTHER)
    message = await _first_message(ws_url, token, case.document, variables)
    assert codes(message["payload"]["errors"]) == ["NOT_FOUND"], message
    unknown = _unknown_ids(await world.ids_of(ACME))
    baseline = await _first_message(
        ws_url, token, case.document, json.loads(_unknown(json.dumps(variables), unknown))
    )
    assert json.loads(_unknown(json.dumps(message), unknown)) == baseline
