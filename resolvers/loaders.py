"""Batch functions behind the per-request DataLoaders: one database command per batch.

The DataLoader objects themselves are made per request by the GraphQL layer; these functions
only know the store, the org and a list of keys, and return one result per key, in order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from resolvers import claims
from resolvers.clock import now
from resolvers.store import Doc, Store


async def contacts_by_id(store: Store, org: str, ids: Sequence[str]) -> list[Doc | None]:
    """Contacts by exact id (ancestors included); None for unknown or expired."""
    moment = now()
    docs = await store.contacts.find({"org": org, "_id": {"$in": list(set(ids))}}).to_list()
    found = {d["_id"]: d for d in docs if not claims.is_expired(d, moment)}
    return [found.get(i) for i in ids]


async def claims_by_contact(store: Store, org: str, ids: Sequence[str]) -> list[list[Doc]]:
    """The identifiers each contact claims, oldest claim first."""
    docs = await store.identifiers.find(
        {"org": org, "contactId": {"$in": list(set(ids))}, **claims.unexpired_filter()}
    ).to_list()
    grouped: dict[str, list[Doc]] = defaultdict(list)
    for doc in sorted(docs, key=lambda d: (d["claimedAt"], d["key"])):
        grouped[doc["contactId"]].append(doc)
    return [grouped.get(i, []) for i in ids]


async def notes_by_members(
    store: Store, org: str, member_lists: Sequence[tuple[str, ...]]
) -> list[list[Doc]]:
    """Notes of every contact in each member list (a merge set), newest first."""
    all_ids = {i for members in member_lists for i in members}
    docs = await store.notes.find({"org": org, "contactId": {"$in": list(all_ids)}}).to_list()
    docs.sort(key=lambda d: (d["createdAt"], d["_id"]), reverse=True)
    by_contact: dict[str, list[Doc]] = defaultdict(list)
    for doc in docs:
        by_contact[doc["contactId"]].append(doc)
    result: list[list[Doc]] = []
    for members in member_lists:
        notes = [n for m in members for n in by_contact.get(m, [])]
        notes.sort(key=lambda d: (d["createdAt"], d["_id"]), reverse=True)
        result.append(notes)
    return result


async def merge_sets_by_id(store: Store, org: str, ids: Sequence[str]) -> list[Doc | None]:
    docs = await store.merge_sets.find({"org": org, "_id": {"$in": list(set(ids))}}).to_list()
    found = {d["_id"]: d for d in docs}
    return [found.get(i) for i in ids]
