"""Contact lifecycle: create, read (with aliases), update, promote, delete, notes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers import bulk, claims, liveness
from resolvers.changes import ChangeKind, record_change
from resolvers.clock import now
from resolvers.contact_fields import (
    ALL_FIELDS,
    ContactType,
    contact_keys,
    name_tokens,
)
from resolvers.documents import (
    ContactDoc,
    ContactFields,
    MergeSetDoc,
    NoteDoc,
    as_contact,
)
from resolvers.errors import BadUserInput, Conflict, NotFound, ReadOnly
from resolvers.identifiers import MAX_STRING
from resolvers.names import match_keys
from resolvers.principal import Principal
from resolvers.store import Store

# the fields derived from a contact's own fields (index_fields)
DERIVED = ("keys", "nameTokens", "matchKeys")
CREATED, UPDATED, DELETED, PROMOTED = (
    ChangeKind.CONTACT_CREATED,
    ChangeKind.CONTACT_UPDATED,
    ChangeKind.CONTACT_DELETED,
    ChangeKind.CONTACT_PROMOTED,
)


def new_id() -> str:
    return str(ObjectId())


def new_contact_doc(
    store: Store,
    org: str,
    fields: Mapping[str, Any],
    kind: ContactType,
    *,
    moment: datetime | None = None,
    expires_at: datetime | None = None,
) -> ContactDoc:
    moment = moment or now()
    contact_id = new_id()
    doc: ContactFields = {field: None for field in ALL_FIELDS}
    doc.update({"externalIds": [], "surveyOptOut": False, "address": None})
    doc.update(fields)
    doc.update(
        {
            "_id": contact_id,
            "org": org,
            "type": str(kind),
            "createdAt": moment,
            "modifiedAt": moment,
            "since": moment,
            "expiresAt": expires_at,
            "canonicalId": contact_id,
            "mergeSetId": None,
            "readOnly": False,
        }
    )
    contact = as_contact(doc)
    index_fields(store, contact)
    return contact


def index_fields(store: Store, doc: ContactDoc) -> None:
    """Refresh the derived ``keys``, ``nameTokens`` and ``matchKeys`` from the contact's fields."""
    doc["keys"] = contact_keys(doc, store.config.default_region)
    doc["nameTokens"] = name_tokens(doc)
    doc["matchKeys"] = match_keys(doc)  # match suggestions' name and address candidates


async def get_exact(
    store: Store, org: str, contact_id: str, *, session: AsyncClientSession | None = None
) -> ContactDoc | None:
    """The contact with exactly this id (ancestors included), unless unknown or expired."""
    if not isinstance(contact_id, str) or len(contact_id) > MAX_STRING:
        return None
    doc = await store.contacts.find_one({"_id": contact_id, "org": org}, session=session)
    if doc is None or liveness.is_expired(doc):
        return None
    return doc


async def get_canonical(
    store: Store, org: str, contact_id: str, *, session: AsyncClientSession | None = None
) -> ContactDoc | None:
    """The contact, or for an ancestor id its merge set's canonical contact (aliases)."""
    doc = await get_exact(store, org, contact_id, session=session)
    if doc is not None and doc["canonicalId"] != doc["_id"]:
        doc = await get_exact(store, org, doc["canonicalId"], session=session)
    return doc


async def canonicals_of(
    load_many: Callable[[list[str]], Awaitable[list[ContactDoc | None]]], ids: list[str]
) -> list[ContactDoc | None]:
    """Each id's contact, or for an ancestor id its merge set's canonical contact; None for
    an unknown id. ``load_many`` reads contacts by exact id (a batch loader), twice in all."""
    exact = await load_many(ids)
    canonical_ids = [d["canonicalId"] if d is not None else None for d in exact]
    heads = await load_many([c for c in canonical_ids if c is not None])
    by_id = {d["_id"]: d for d in heads if d is not None}
    return [by_id.get(c) if c is not None else None for c in canonical_ids]


async def require_canonical(
    store: Store, org: str, contact_id: str, *, session: AsyncClientSession | None = None
) -> ContactDoc:
    doc = await get_canonical(store, org, contact_id, session=session)
    if doc is None:
        raise NotFound(f"no contact with id {contact_id}")
    return doc


async def create_contact(
    store: Store, principal: Principal, patch: Mapping[str, Any]
) -> ContactDoc:
    """A CURATED contact; claims every identifier its fields list that it is the oldest to list
    (a bulk create of one item: resolvers/bulk.py)."""
    (result,) = await bulk.create_contacts(store, principal, [patch])
    return result.unwrap()


async def update_contact(
    store: Store, principal: Principal, contact_id: str, patch: Mapping[str, Any]
) -> ContactDoc:
    """Omitted fields stay, None clears; an auto-created contact becomes CURATED.

    The document write and the claims it implies (released values handed on, new values
    claimed) are one transaction: no interleaving of two edits can leave a claim on a contact
    that no longer lists the value, or a listed value released by an older edit. A bulk
    update of one item (resolvers/bulk.py).
    """
    return (await update_contact_item(store, principal, contact_id, patch)).unwrap()


async def update_contact_item(
    store: Store, principal: Principal, contact_id: str, patch: Mapping[str, Any]
) -> bulk.ItemResult:
    """:func:`update_contact`'s outcome as a bulk item: the contact or the error, and whether
    the edit changed its match evidence."""
    (result,) = await bulk.update_contacts(store, principal, [(contact_id, patch)])
    return result


def edited(store: Store, current: ContactDoc, fields: ContactFields) -> ContactDoc:
    """``current`` with the cleaned ``fields`` applied (None clears), re-indexed, promoted to
    CURATED, and a ``modifiedAt`` that strictly increases."""
    updated = as_contact({**current, **fields})
    if "externalIds" in fields and fields["externalIds"] is None:
        updated["externalIds"] = []
    if "surveyOptOut" in fields and fields["surveyOptOut"] is None:
        updated["surveyOptOut"] = False
    index_fields(store, updated)
    updated["modifiedAt"] = max(now(), current["modifiedAt"] + timedelta(milliseconds=1))
    if current["type"] != ContactType.CURATED:
        updated["type"] = str(ContactType.CURATED)
        updated["expiresAt"] = None
    return updated


async def promote_contact(store: Store, principal: Principal, contact_id: str) -> ContactDoc:
    """Make an auto-created contact CURATED (no expiry). A curated contact is returned as is.
    One transaction: the contact, its claims' expiry and CONTACT_PROMOTED."""
    org = principal.org

    async def work(session: AsyncClientSession) -> ContactDoc:
        doc = await require_canonical(store, org, contact_id, session=session)
        if doc["type"] == ContactType.CURATED:
            return doc
        modified = max(now(), doc["modifiedAt"])
        curated: dict[str, Any] = {
            "type": str(ContactType.CURATED),
            "expiresAt": None,
            "modifiedAt": modified,
        }
        # update_one, not find_one_and_update: the embedded server serves it ~16x faster
        promoted = await store.contacts.update_one(
            {"_id": doc["_id"], "org": org, "readOnly": False}, {"$set": curated}, session=session
        )
        if promoted.matched_count == 0:
            raise Conflict("the contact changed concurrently; try again")
        await claims.set_claims_expiry(store, org, [doc["_id"]], None, session=session)
        await record_change(
            store, session, org=org, kind=PROMOTED, by=principal.sub, contact_id=doc["_id"]
        )
        return as_contact({**doc, **curated})

    return await store.in_transaction(work)


async def delete_contact(store: Store, principal: Principal, contact_id: str) -> bool:
    """Delete the contact (or its whole merge set) and hand its identifiers on (a bulk
    delete of one item: resolvers/bulk.py)."""
    (result,) = await bulk.delete_contacts(store, principal, [contact_id])
    result.unwrap()
    return True


@dataclass(frozen=True)
class RemovedSet:
    """What :func:`remove_merge_set` removed: the members, their released claims (keys, not
    yet re-claimed by anyone) and how many notes went."""

    member_ids: list[str]
    released: list[str]
    notes: int


async def remove_merge_set(
    store: Store, org: str, canonical_id: str, session: AsyncClientSession
) -> RemovedSet:
    """Inside a transaction: remove the canonical contact's whole merge set (every member, the
    set document, their notes) and release every claim they held. Re-claiming the released
    keys and the merge history are the caller's (deletion and erasure differ there)."""
    current = await store.contacts.find_one({"_id": canonical_id, "org": org}, session=session)
    if current is None:
        raise NotFound(f"no contact with id {canonical_id}")
    member_ids = [current["_id"]]
    if current.get("mergeSetId"):
        merge_set = await store.merge_sets.find_one(
            {"_id": current["mergeSetId"], "org": org}, session=session
        )
        if merge_set is not None:
            member_ids = list(dict.fromkeys([*merge_set["memberIds"], current["_id"]]))
            await store.merge_sets.delete_one({"_id": merge_set["_id"]}, session=session)
    await store.contacts.delete_many({"_id": {"$in": member_ids}, "org": org}, session=session)
    notes = await store.notes.delete_many(
        {"org": org, "contactId": {"$in": member_ids}}, session=session
    )
    released: list[str] = []
    for member_id in member_ids:
        released += await claims.release(store, org, member_id, session=session)
    return RemovedSet(member_ids, released, notes.deleted_count)


def note_owners(contact: ContactDoc, merge_set: MergeSetDoc | None) -> tuple[str, ...]:
    """Whose notes a contact shows: every member's of its merge set, or its own."""
    if merge_set is not None:
        return tuple(merge_set["memberIds"])
    return (contact["_id"],)


def check_note_text(text: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise BadUserInput("a note needs text")
    if len(text) > MAX_STRING * 10:
        raise BadUserInput(f"a note is at most {MAX_STRING * 10} characters")


async def add_note(store: Store, principal: Principal, contact_id: str, text: str) -> NoteDoc:
    check_note_text(text)
    contact = await get_exact(store, principal.org, contact_id)
    if contact is None:
        raise NotFound(f"no contact with id {contact_id}")
    if contact["readOnly"]:
        raise ReadOnly("this contact is an ancestor in a merge set; add the note to its canonical")
    note: NoteDoc = {
        "_id": new_id(),
        "org": principal.org,
        "contactId": contact["_id"],
        "text": text,
        "createdAt": now(),
        "createdBy": principal.sub,
    }

    async def work(session: AsyncClientSession) -> NoteDoc:
        # a note is part of its contact as an integrator sees it: CONTACT_UPDATED
        await store.notes.insert_one(note, session=session)
        await record_change(
            store,
            session,
            org=note["org"],
            kind=UPDATED,
            by=principal.sub,
            contact_id=note["contactId"],
        )
        return note

    return await store.in_transaction(work)


async def _editable_note(
    store: Store, org: str, note_id: str, session: AsyncClientSession
) -> NoteDoc:
    """The note, unless unknown (NOT_FOUND) or on an ancestor (READ_ONLY, as addNote)."""
    note = None
    if isinstance(note_id, str) and len(note_id) <= MAX_STRING:
        note = await store.notes.find_one({"_id": note_id}, session=session)
    if note is None or note["org"] != org:
        raise NotFound(f"no note with id {note_id}")
    contact = await get_exact(store, org, note["contactId"], session=session)
    if contact is None:
        raise NotFound(f"no note with id {note_id}")
    if contact["readOnly"]:
        raise ReadOnly("this note's contact is an ancestor in a merge set; its notes are read-only")
    return note


async def update_note(store: Store, principal: Principal, note_id: str, text: str) -> NoteDoc:
    check_note_text(text)

    async def work(session: AsyncClientSession) -> NoteDoc:
        note = await _editable_note(store, principal.org, note_id, session)
        await store.notes.update_one(
            {"_id": note["_id"]}, {"$set": {"text": text}}, session=session
        )
        note["text"] = text
        await _note_changed(store, session, principal, note)
        return note

    return await store.in_transaction(work)


async def delete_note(store: Store, principal: Principal, note_id: str) -> bool:
    async def work(session: AsyncClientSession) -> bool:
        note = await _editable_note(store, principal.org, note_id, session)
        await store.notes.delete_one({"_id": note["_id"]}, session=session)
        await _note_changed(store, session, principal, note)
        return True

    return await store.in_transaction(work)


async def _note_changed(
    store: Store, session: AsyncClientSession, principal: Principal, note: NoteDoc
) -> None:
    """A note is part of its contact as an integrator sees it: CONTACT_UPDATED (as addNote)."""
    await record_change(
        store,
        session,
        org=principal.org,
        kind=UPDATED,
        by=principal.sub,
        contact_id=note["contactId"],
    )
