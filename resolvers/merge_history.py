"""Every contact's merge history: the MERGE and UNMERGE events that involved it, oldest first.

A merge set keeps its own history (``merge_sets.history``, with the snapshots an unmerge
needs), but the set document goes when its first merge is undone. So each event is also
written to ``merge_events`` in the same transaction as the merge or unmerge itself, without
snapshots (no personal data, only ids): ``{_id, org, kind, at, by, inputIds, canonicalId,
contactIds}``. ``contactIds`` are the contacts involved: every member of the set the event
changed (a MERGE's new set, canonical included; an UNMERGE's set before the undo), so an
ancestor sees the later merges of its set too. It is read through the multikey index
``{org, contactIds}`` (``Store.ensure_indexes``), one command per batch of contacts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pymongo.asynchronous.client_session import AsyncClientSession

from resolvers.documents import MergeEntryDoc, MergeEventDoc
from resolvers.store import Store


async def record(
    store: Store,
    org: str,
    event: MergeEntryDoc,
    contact_ids: Sequence[str],
    session: AsyncClientSession,
) -> None:
    """Log ``event`` (a merge set history entry) for every contact in ``contact_ids``."""
    entry: MergeEventDoc = {
        "_id": event["id"],
        "org": org,
        "kind": event["kind"],
        "at": event["at"],
        "by": event["by"],
        "inputIds": event["inputIds"],
        "canonicalId": event["canonicalId"],
        "contactIds": list(dict.fromkeys(contact_ids)),
    }
    if "score" in event:  # a merge of probable duplicates keeps its evidence
        entry["score"] = event["score"]
        entry["reasons"] = event.get("reasons", [])
    await store.merge_events.insert_one(entry, session=session)


async def forget(
    store: Store, org: str, contact_ids: Sequence[str], session: AsyncClientSession
) -> None:
    """Deleted contacts leave the events they were in (the other contacts keep them)."""
    ids = list(contact_ids)
    await store.merge_events.update_many(
        {"org": org, "contactIds": {"$in": ids}},
        {"$pull": {"contactIds": {"$in": ids}}},
        session=session,
    )


async def history_by_contact(
    store: Store, org: str, ids: Sequence[str]
) -> list[list[MergeEventDoc]]:
    """Each contact's events, oldest first (one indexed read for the whole batch)."""
    wanted = list(set(ids))
    docs = await store.merge_events.find({"org": org, "contactIds": {"$in": wanted}}).to_list()
    docs.sort(key=lambda d: (d["at"], d["_id"]))
    by_contact: dict[str, list[MergeEventDoc]] = defaultdict(list)
    for doc in docs:
        for contact_id in doc["contactIds"]:
            by_contact[contact_id].append(doc)
    return [by_contact.get(i, []) for i in ids]


ERASED_ID = "erased"  # stands for an erased contact in an event another contact keeps


async def erase(
    store: Store, org: str, contact_ids: Sequence[str], session: AsyncClientSession
) -> int:
    """Erased contacts leave no trace in the history: an event that involved only them goes;
    one that other contacts keep (a merge undone before the erasure) loses their ids from
    ``contactIds`` and ``inputIds``, names :data:`ERASED_ID` where its canonical contact was
    erased, and loses its ``reasons`` (a merge of probable duplicates quotes the values they
    shared; its ``score`` stays). Returns how many events went. Two writes at most, by ``_id``."""
    ids = set(contact_ids)
    events = await store.merge_events.find(
        {"org": org, "contactIds": {"$in": list(ids)}},
        {"contactIds": 1, "canonicalId": 1},
        session=session,
    ).to_list()
    doomed = [e["_id"] for e in events if set(e["contactIds"]) <= ids]
    kept = [e for e in events if not set(e["contactIds"]) <= ids]
    if doomed:
        # by _id alone (the ids come from the org's own read): the _id index serves it
        await store.merge_events.delete_many({"_id": {"$in": doomed}}, session=session)
    if kept:
        erased = list(ids)
        await store.merge_events.update_many(
            {"_id": {"$in": [e["_id"] for e in kept]}},
            [
                {
                    "$set": {
                        "contactIds": {"$setDifference": ["$contactIds", erased]},
                        "inputIds": {
                            "$filter": {
                                "input": "$inputIds",
                                "cond": {"$not": [{"$in": ["$$this", erased]}]},
                            }
                        },
                        "canonicalId": {
                            "$cond": [{"$in": ["$canonicalId", erased]}, ERASED_ID, "$canonicalId"]
                        },
                        # an automatic merge's evidence quotes the erased contact's values
                        "reasons": {"$cond": [{"$isArray": "$reasons"}, [], "$$REMOVE"]},
                    }
                }
            ],
            session=session,
        )
    return len(doomed)
