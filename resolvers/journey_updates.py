"""Live journey updates: conversations recorded into, or linked to, a contact's merge set."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

from resolvers import liveness
from resolvers.contacts import get_canonical
from resolvers.documents import ConversationDoc
from resolvers.store import Store


async def journey_updates(
    store: Store, org: str, contact_id: str
) -> AsyncIterator[ConversationDoc]:
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
    async with await store.conversations_watched.watch(
        pipeline, full_document="updateLookup"
    ) as stream:
        async for change in stream:
            # PyMongo types a change event as the collection's document; it holds one
            doc = cast(
                "ConversationDoc | None", cast(Mapping[str, Any], change).get("fullDocument")
            )
            if doc is None or doc["externalContactId"] is None or liveness.is_expired(doc):
                continue
            target = await get_canonical(store, org, contact_id)
            if target is None:
                return
            linked = await get_canonical(store, org, doc["externalContactId"])
            if linked is not None and linked["_id"] == target["_id"]:
                yield doc
