"""What the gateway holds about a person (GDPR article 15): the reads of the subject-access
export, each section an async iterator of stored documents, read in batches from cursors.

The person is the merge set of a contact (an ancestor id works): its members, the claims they
hold, the notes of the set, the merge events that involved a member, and the visible
conversations linked to any member (the journey's own keyset pages, so the export shows
exactly what ``journey.conversations`` shows, newest first), and the retained changes of the
feed that touched a member. ``gateway/person_export.py``
renders them under their GraphQL field names and streams the document.

Every read names an indexed key: ``{org, mergeSetId}`` (members), ``{org, contactId}``
(claims, notes), ``{org, contactIds}`` (merge events) and the journey's ``{org,
externalContactId, startedAt}`` pages, ``{org, contactIds}`` (changes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pymongo.asynchronous.cursor import AsyncCursor

from resolvers import contacts, journeys, web_journeys
from resolvers import web_sessions as web_sessions_module
from resolvers.clock import now
from resolvers.documents import (
    ChangeDoc,
    ClaimDoc,
    ContactDoc,
    ConversationDoc,
    MergeEventDoc,
    NoteDoc,
)
from resolvers.errors import NotFound
from resolvers.store import Store
from resolvers.web_documents import WebEventDoc, WebSessionDoc

BATCH = 500  # documents per batch of a section's cursor (and per page of conversations)
PERSON_CURSOR = "person"
ALL_EVENTS = 10**9  # a session's events are exported whole
D = TypeVar("D", bound=Mapping[str, Any])


@dataclass(frozen=True)
class Person:
    """The merge set a subject-access export is about."""

    org: str
    head: ContactDoc  # the canonical contact
    member_ids: tuple[str, ...]


async def find_person(store: Store, org: str, contact_id: str) -> Person:
    """The person of any member's id; NOT_FOUND for an unknown id or another org's."""
    head = await contacts.get_canonical(store, org, contact_id)
    if head is None:
        raise NotFound(f"no contact with id {contact_id}")
    member_ids: tuple[str, ...] = (head["_id"],)
    if head.get("mergeSetId"):
        merge_set = await store.merge_sets.find_one({"_id": head["mergeSetId"], "org": org})
        if merge_set is not None:
            member_ids = tuple(dict.fromkeys([*merge_set["memberIds"], head["_id"]]))
    return Person(org, head, member_ids)


async def members(store: Store, person: Person) -> AsyncIterator[list[ContactDoc]]:
    """Every member of the set, the canonical contact first."""
    others = [i for i in person.member_ids if i != person.head["_id"]]
    yield [person.head]
    if others:
        cursor = store.contacts.find({"org": person.org, "_id": {"$in": others}}).sort("_id", 1)
        async for batch in _batches(cursor.batch_size(BATCH)):
            yield batch


async def claims(store: Store, person: Person) -> AsyncIterator[list[ClaimDoc]]:
    cursor = store.identifiers.find(
        {"org": person.org, "contactId": {"$in": list(person.member_ids)}}
    )
    async for batch in _batches(cursor.batch_size(BATCH)):
        yield sorted(batch, key=lambda c: c["key"])


async def notes(store: Store, person: Person) -> AsyncIterator[list[NoteDoc]]:
    """The set's notes, newest first (as ``Contact.notes``)."""
    cursor = store.notes.find(
        {"org": person.org, "contactId": {"$in": list(person.member_ids)}}
    ).sort([("createdAt", -1), ("_id", -1)])
    async for batch in _batches(cursor.batch_size(BATCH)):
        yield batch


async def merge_history(store: Store, person: Person) -> AsyncIterator[list[MergeEventDoc]]:
    """Every merge and unmerge that involved a member, oldest first."""
    cursor = store.merge_events.find(
        {"org": person.org, "contactIds": {"$in": list(person.member_ids)}}
    ).sort([("at", 1), ("_id", 1)])
    async for batch in _batches(cursor.batch_size(BATCH)):
        yield batch


async def conversations(store: Store, person: Person) -> AsyncIterator[list[ConversationDoc]]:
    """The journey's conversations, newest first, in keyset pages of :data:`BATCH`."""
    after: str | None = None
    while True:
        request = journeys.page_request(
            PERSON_CURSOR,
            person.member_ids,
            journeys.conversation_filter(),
            BATCH,
            after,
            maximum=BATCH,
        )
        page = await journeys.conversation_page(store, person.org, request)
        if page.docs:
            yield page.docs
        if not page.has_next or page.end_cursor is None:
            return
        after = page.end_cursor


async def web_sessions(
    store: Store, person: Person
) -> AsyncIterator[list[tuple[WebSessionDoc, list[WebEventDoc]]]]:
    """The web sessions of every cookie the set claims now, newest first (as
    ``journey.webSessions``), each with all its events oldest first (as
    ``WebSession.events``): the sessions in one read, their events in one read per cookie
    per batch (``web_journeys.event_pages``)."""
    (cookies,) = await web_sessions_module.cookies_of_sets(store, person.org, [person.member_ids])
    if not cookies:
        return
    moment = now()
    cursor = store.web_sessions.find({"org": person.org, "cookie": {"$in": list(cookies)}}).sort(
        web_sessions_module.SORT
    )
    async for batch in _batches(cursor.batch_size(BATCH)):
        visible = [s for s in batch if s["expiresAt"] > moment]
        if not visible:
            continue
        requests = [
            web_journeys.EventRequest(s["cookie"], s["startedAt"], s["endedAt"], ALL_EVENTS)
            for s in visible
        ]
        pages = await web_journeys.event_pages(store, person.org, requests)
        yield [(s, page.docs) for s, page in zip(visible, pages, strict=True)]


async def changes(store: Store, person: Person) -> AsyncIterator[list[ChangeDoc]]:
    """The feed's retained changes that touched a member, oldest first (feed order)."""
    cursor = store.changes.find(
        {"org": person.org, "contactIds": {"$in": list(person.member_ids)}}
    ).sort("seq", 1)
    moment = now()
    async for batch in _batches(cursor.batch_size(BATCH)):
        kept = [c for c in batch if c.get("kind") and c["expiresAt"] > moment]
        if kept:
            yield kept


async def _batches(cursor: AsyncCursor[D]) -> AsyncIterator[list[D]]:
    """The cursor's documents in lists of :data:`BATCH` (one server batch each)."""
    batch: list[D] = []
    async for doc in cursor:
        batch.append(doc)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
