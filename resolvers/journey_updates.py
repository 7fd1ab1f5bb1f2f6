"""Live journey updates: conversations recorded into, or linked to, a contact's merge set."""

from __future__ import annotations

from collections.abc import AsyncIterator

from resolvers import claims
from resolvers.contacts import get_canonical
from resolvers.store import Doc, Store


async def journey_updates(store: Store, org: str, contact_id: str) -> AsyncIterator[Doc]:
    """Yield each conversation whose link lands in the contact's merge set, as it happens.

    One change stream per subscription, filtered by org on the server; whether a link
    belongs to the set is decided per event against the set as it is then (merges and
    unmerges while subscribed are honoured).
    """
    pipeline = [
        {
            "$match": {
                "operationType": {"$in": ["insert", "update", "replace"]},
                "fullDocument.org": org,
                "fullDocument.externalContactId": {"$ne": None},
            }
        }
    ]
    async with await store.conversations.watch(pipeline, full_document="updateLookup") as stream:
        async for change in stream:
            doc = change.get("fullDocument")
            if doc is None or claims.is_expired(doc):
                continue
            target = await get_canonical(store, org, contact_id)
            if target is None:
                return
            linked = await get_canonical(store, org, doc["externalContactId"])
            if linked is not None and linked["_id"] == target["_id"]:
                yield doc
