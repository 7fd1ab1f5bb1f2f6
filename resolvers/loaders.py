"""Batch functions behind the per-request DataLoaders: one database command per batch.

The DataLoader objects themselves are made per request by the GraphQL layer; these functions
only know the store, the org and a list of keys, and return one result per key, in order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, cast

from resolvers import liveness
from resolvers.clock import now
from resolvers.documents import ClaimDoc, ContactDoc, MergeSetDoc, NoteDoc
from resolvers.store import Store


async def contacts_by_id(store: Store, org: str, ids: Sequence[str]) -> list[ContactDoc | None]:
    """Contacts by exact id (ancestors included); None for unknown or expired."""
    moment = now()
    docs = await store.contacts.find({"org": org, "_id": {"$in": list(set(ids))}}).to_list()
    found = {d["_id"]: d for d in docs if not liveness.is_expired(d, moment)}
    return [found.get(i) for i in ids]


async def claims_by_contact(store: Store, org: str, ids: Sequence[str]) -> list[list[ClaimDoc]]:
    """The identifiers each contact claims, oldest claim first."""
    moment = now()
    docs = await store.identifiers.find(
        {"org": org, "contactId": {"$in": list(set(ids))}}, batch_size=10_000
    ).to_list()
    docs = [d for d in docs if not liveness.is_expired(d, moment)]
    grouped: dict[str, list[ClaimDoc]] = defaultdict(list)
    for doc in sorted(docs, key=lambda d: (d["claimedAt"], d["key"])):
        grouped[doc["contactId"]].append(doc)
    return [grouped.get(i, []) for i in ids]


async def notes_by_members(
    store: Store, org: str, member_lists: Sequence[tuple[str, ...]]
) -> list[list[NoteDoc]]:
    """Notes of every contact in each member list (a merge set), newest first."""
    all_ids = {i for members in member_lists for i in members}
    docs = await store.notes.find({"org": org, "contactId": {"$in": list(all_ids)}}).to_list()
    docs.sort(key=lambda d: (d["createdAt"], d["_id"]), reverse=True)
    by_contact: dict[str, list[NoteDoc]] = defaultdict(list)
    for doc in docs:
        by_contact[doc["contactId"]].append(doc)
    result: list[list[NoteDoc]] = []
    for members in member_lists:
        notes = [n for m in members for n in by_contact.get(m, [])]
        notes.sort(key=lambda d: (d["createdAt"], d["_id"]), reverse=True)
        result.append(notes)
    return result


async def merge_sets_by_id(store: Store, org: str, ids: Sequence[str]) -> list[MergeSetDoc | None]:
    docs = await store.merge_sets.find({"org": org, "_id": {"$in": list(set(ids))}}).to_list()
    found = {d["_id"]: d for d in docs}
    return [found.get(i) for i in ids]


# --- contact links: a contact, its canonical contact and its merge set in one command ---------

MAX_LINK_ID = 200  # contact ids are 24-character ObjectId strings; longer keys are unknown


@dataclass(frozen=True)
class LinkedContact:
    """Exactly the contact asked for and the head of its merge set: what a conversation's
    ``contact`` and ``individual`` show."""

    contact: ContactDoc
    canonical: ContactDoc | None  # the contact itself when never merged; None when the head is gone


@dataclass(frozen=True)
class ContactLink(LinkedContact):
    """A :class:`LinkedContact` with its merge set (if merged)."""

    merge_set: MergeSetDoc | None

    @property
    def member_ids(self) -> list[str]:
        """Every contact id of the merge set, or the canonical's id alone when never merged."""
        if self.merge_set is not None:
            return list(self.merge_set["memberIds"])
        head = self.canonical if self.canonical is not None else self.contact
        return [head["_id"]]


class Joined(TypedDict, total=False):
    """The one reply of :func:`link_pipeline` / :func:`head_pipeline` (projected there)."""

    contacts: list[ContactDoc]
    heads: list[ContactDoc]
    sets: list[MergeSetDoc]


def _by_id(collection: str, alias: str) -> list[dict[str, Any]]:
    """Stages replacing each ``{_id}`` flowing in by the ``collection`` document with that id."""
    return [
        {"$lookup": {"from": collection, "localField": "_id", "foreignField": "_id", "as": alias}},
        {"$unwind": f"${alias}"},
        {"$replaceWith": f"${alias}"},
    ]


def link_pipeline(ids: Sequence[str], *, merge_sets: bool = True) -> list[dict[str, Any]]:
    """One database-level aggregate: ``$documents`` of the ids, each joined by ``_id``, then
    the distinct canonical contacts (of ancestors) and, with ``merge_sets``, the merge sets
    those contacts name.

    ``$in`` over many ids is quadratic on the embedded server (its matcher scans the list for
    every candidate) while ``$lookup`` on ``_id`` is a point lookup per id, so a page of 1,000
    conversations resolves its contacts, their canonicals and merge sets in one command that
    stays linear; a ``$facet`` looks each head and set up once, however many members link to
    it. The answer is one document; the org of everything in it is checked by the caller.
    """
    facets: dict[str, list[dict[str, Any]]] = {
        "contacts": [{"$match": {}}],
        "heads": [
            {"$match": {"$expr": {"$ne": ["$canonicalId", "$_id"]}}},
            {"$group": {"_id": "$canonicalId"}},
            *_by_id("contacts", "h"),
        ],
    }
    if merge_sets:
        facets["sets"] = [
            {"$match": {"mergeSetId": {"$ne": None}}},
            {"$group": {"_id": "$mergeSetId"}},
            *_by_id("merge_sets", "s"),
        ]
    return [{"$documents": [{"_id": i} for i in ids]}, *_by_id("contacts", "c"), {"$facet": facets}]


async def contact_links(store: Store, org: str, ids: Sequence[str]) -> list[ContactLink | None]:
    """The link of each contact id (ancestors included); None for unknown or expired."""
    joined = await _join(store, ids, merge_sets=True)
    sets = {s["_id"]: s for s in joined.get("sets", []) if s.get("org") == org}
    found: dict[str, ContactLink] = {}
    for doc, canonical in _live_contacts(joined, org):
        set_id = doc.get("mergeSetId")
        found[doc["_id"]] = ContactLink(doc, canonical, sets.get(set_id) if set_id else None)
    return [found.get(i) if isinstance(i, str) else None for i in ids]


async def linked_contacts(store: Store, org: str, ids: Sequence[str]) -> list[LinkedContact | None]:
    """Like :func:`contact_links` without the merge sets, for pages whose rows show a contact
    but nothing of its set: a set keeps its whole history, and looking the sets up was half
    the command's time (a page of 1,000 conversations linking 506 contacts: 107 → 55 ms)."""
    joined = await _join(store, ids, merge_sets=False)
    found = {
        doc["_id"]: LinkedContact(doc, canonical) for doc, canonical in _live_contacts(joined, org)
    }
    return [found.get(i) if isinstance(i, str) else None for i in ids]


async def _join(store: Store, ids: Sequence[str], *, merge_sets: bool) -> Joined:
    wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str) and len(i) <= MAX_LINK_ID))
    if not wanted:
        return Joined()
    pipeline = link_pipeline(wanted, merge_sets=merge_sets)
    replies = await (await store.db.aggregate(pipeline)).to_list()
    return cast(Joined, replies[0]) if replies else Joined()


def _live_contacts(joined: Joined, org: str) -> Iterator[tuple[ContactDoc, ContactDoc | None]]:
    """Each live contact of the org in ``joined`` with its live canonical (None when gone)."""
    moment = now()

    def live(doc: ContactDoc) -> bool:
        return doc.get("org") == org and not liveness.is_expired(doc, moment)

    heads = {h["_id"]: h for h in joined.get("heads", []) if live(h)}
    for doc in joined.get("contacts", []):
        if live(doc):
            yield doc, doc if doc["canonicalId"] == doc["_id"] else heads.get(doc["canonicalId"])


# --- merge heads: just the grouping of contacts, for bulk reads (the NDJSON export) -----------


def head_pipeline(ids: Sequence[str]) -> list[dict[str, Any]]:
    """Like :func:`link_pipeline`, keeping only what grouping needs: each contact's org,
    expiry, canonical id and merge set, and each distinct set's members."""
    return [
        {"$documents": [{"_id": i} for i in ids]},
        *_by_id("contacts", "c"),
        {"$project": {"org": 1, "canonicalId": 1, "mergeSetId": 1, "expiresAt": 1}},
        {
            "$facet": {
                "contacts": [{"$match": {}}],
                "sets": [
                    {"$match": {"mergeSetId": {"$ne": None}}},
                    {"$group": {"_id": "$mergeSetId"}},
                    *_by_id("merge_sets", "s"),
                    {"$project": {"org": 1, "memberIds": 1}},
                ],
            }
        },
    ]


async def merge_heads(
    store: Store, org: str, ids: Sequence[str]
) -> list[tuple[str, list[str]] | None]:
    """Per contact id: its canonical contact's id and its merge set's contact ids (``[id]``
    when never merged); None for unknown or expired. One command, like ``contact_links``.

    An ancestor's canonical is taken from ``canonicalId``: a merge set's head never expires
    and is only deleted with the whole set.
    """
    wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str) and len(i) <= MAX_LINK_ID))
    if not wanted:
        return [None for _ in ids]
    moment = now()
    replies = await (await store.db.aggregate(head_pipeline(wanted))).to_list()
    joined = cast(Joined, replies[0]) if replies else Joined()
    sets = {s["_id"]: s["memberIds"] for s in joined.get("sets", []) if s.get("org") == org}
    found: dict[str, tuple[str, list[str]]] = {}
    for doc in joined.get("contacts", []):
        if doc.get("org") != org or liveness.is_expired(doc, moment):
            continue
        set_id = doc.get("mergeSetId")
        members = sets.get(set_id) if set_id else None
        found[doc["_id"]] = (doc["canonicalId"], list(members) if members else [doc["_id"]])
    return [found.get(i) if isinstance(i, str) else None for i in ids]
