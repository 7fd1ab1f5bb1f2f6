"""Builders of stored documents, written exactly as the resolvers write them.

Shared by the domain, schema and gateway tests (and typed, so a test that builds a document
with a misspelt key fails ``mypy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from resolvers import claims, contacts
from resolvers.clock import now, to_db_precision
from resolvers.contact_fields import ContactType, clean_input
from resolvers.contacts import new_contact_doc, new_id
from resolvers.documents import ContactDoc, ConversationDoc
from resolvers.store import Store

ORG = "acme"


def build_contact(
    store: Store,
    fields: Mapping[str, Any],
    *,
    org: str = ORG,
    kind: ContactType = ContactType.CURATED,
    moment: datetime | None = None,
    expires_at: datetime | None = None,
) -> ContactDoc:
    """A contact document from input fields (validated as the API does), not yet stored."""
    clean = clean_input(fields, store.config.default_region)
    return contacts.new_contact_doc(store, org, clean, kind, moment=moment, expires_at=expires_at)


async def insert_contact(store: Store, doc: ContactDoc, *, claim: bool = True) -> ContactDoc:
    """Store ``doc``; with ``claim`` it claims what its fields list, by the field rule."""
    await store.contacts.insert_one(doc)
    if claim:
        await claims.claim_all(store, doc["org"], doc["keys"], doc, claims.VIA_FIELD)
    return doc


async def auto_contact(
    store: Store,
    kind: ContactType = ContactType.IDENTIFIED,
    *,
    org: str = ORG,
    expires_at: datetime | None = None,
    **fields: Any,
) -> ContactDoc:
    """An auto-created contact as recordInteraction makes it: it claims what its fields list
    and expires ``retention_days`` from now unless ``expires_at`` says otherwise."""
    expiry = expires_at or now() + timedelta(days=store.config.retention_days)
    doc = build_contact(store, fields, org=org, kind=kind, expires_at=expiry)
    return await insert_contact(store, doc)


async def insert_auto(
    store: Store, kind: ContactType = ContactType.IDENTIFIED, *, org: str = ORG, **fields: Any
) -> str:
    """The id of a new :func:`auto_contact`."""
    return (await auto_contact(store, kind, org=org, **fields))["_id"]


async def add_contact(
    store: Store,
    org: str = ORG,
    *,
    kind: ContactType = ContactType.CURATED,
    expires_at: datetime | None = None,
    doc_id: str | None = None,
    **fields: Any,
) -> ContactDoc:
    """A stored contact (named Ann Lee unless ``fields`` say otherwise) that claims nothing."""
    values: dict[str, Any] = {"firstName": "Ann", "lastName": "Lee", **fields}
    doc = new_contact_doc(store, org, values, kind, expires_at=expires_at)
    if doc_id is not None:
        doc["_id"] = doc["canonicalId"] = doc_id
    await store.contacts.insert_one(doc)
    return doc


def contact_docs(store: Store, count: int, org: str = ORG) -> list[ContactDoc]:
    return [
        new_contact_doc(store, org, {"firstName": f"P{n}", "lastName": "Doe"}, ContactType.CURATED)
        for n in range(count)
    ]


async def add_merge_set(
    store: Store, size: int = 3, org: str = ORG
) -> tuple[ContactDoc, list[ContactDoc]]:
    """A merge set as a merge leaves it: size-1 readOnly ancestors under a new canonical
    contact, every member with ``mergeSetId``, none expiring, and the ``merge_sets`` doc."""
    moment = now()
    set_id = new_id()
    ancestors = [
        new_contact_doc(
            store, org, {"firstName": f"A{n}"}, ContactType.IDENTIFIED, expires_at=moment
        )
        for n in range(size - 1)
    ]
    canonical = new_contact_doc(
        store, org, {"firstName": "Head", "lastName": "Set"}, ContactType.CURATED
    )
    canonical["mergeSetId"] = set_id
    canonical["since"] = min(a["since"] for a in ancestors)
    for ancestor in ancestors:
        ancestor.update(
            {
                "readOnly": True,
                "canonicalId": canonical["_id"],
                "mergeSetId": set_id,
                "expiresAt": None,
            }
        )
    members = [*ancestors, canonical]
    await store.contacts.insert_many(members)
    await store.merge_sets.insert_one(
        {
            "_id": set_id,
            "org": org,
            "canonicalId": canonical["_id"],
            "memberIds": [m["_id"] for m in members],
            "history": [
                {
                    "id": new_id(),
                    "kind": "MERGE",
                    "at": moment,
                    "by": "tester",
                    "inputIds": [a["_id"] for a in ancestors],
                    "canonicalId": canonical["_id"],
                }
            ],
        }
    )
    return canonical, members


def conversation_doc(
    store: Store,
    cid: str,
    started: datetime,
    contact_id: str | None = None,
    *,
    org: str = ORG,
    channel: str = "VOICE",
    doc_id: str | None = None,
    notes: str | None = None,
    expires_at: datetime | None = None,
) -> ConversationDoc:
    """The document recordInteraction stores (expiring retention_days after it started)."""
    started = to_db_precision(started)
    moment = now()
    return {
        "_id": doc_id or new_id(),
        "org": org,
        "cid": cid,
        "channel": channel,
        "direction": "INBOUND",
        "startedAt": started,
        "endedAt": started + timedelta(minutes=3),
        "durationSeconds": 180.0,
        "identifiers": [{"type": "PHONE", "value": "+18031230000"}],
        "expiresAt": expires_at or started + timedelta(days=store.config.retention_days),
        "modifiedAt": moment,
        "queue": "Support",
        "agent": "agent-1",
        "wrapUpCode": None,
        "status": "completed",
        "notes": notes,
        "createdAt": moment,
        "externalContactId": contact_id,
    }
