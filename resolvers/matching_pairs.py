"""The pairs duplicateClusters reads: each contact's suggestions scoring at least
:data:`PAIR_FLOOR`, kept per write that changes its evidence.

``match_pairs`` holds one document per pair, ``{_id: "<org>|<a>|<b>", org, ids: [a, b],
score, reasons}`` (``a < b``), read by score (``{org, score}``) and replaced per contact
(``{org, ids}``). It is derived data, rebuilt from the contacts themselves: a pair whose
contact was merged, deleted or expired since is dropped when read (duplicateClusters checks
every member), so only a write that *adds* evidence needs to refresh its contact
(:func:`refresh`): createContact, updateContact, recordInteraction that creates or stitches,
claimIdentifier, a merge's new canonical contact and an unmerge's restored contacts.

A refresh costs the suggestion reads of one contact (a constant number of indexed
commands) plus one delete and one bulk write; a contact without evidence (a cookie-only
visitor: no values, no name, no address) costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection

from resolvers import blocked_identifiers, liveness, matching
from resolvers.blocked_identifiers import BlockList
from resolvers.documents import ContactDoc
from resolvers.store import Store

PAIR_FLOOR = 0.5  # weaker pairs (a similar name alone) are suggestions, never clusters
PAIRS_PER_CONTACT = 100
COLLECTION = "match_pairs"
CONCURRENT_REFRESHES = 8


def pairs_collection(store: Store) -> AsyncCollection[dict[str, Any]]:
    return store.db[COLLECTION]


def pair_id(org: str, a: str, b: str) -> str:
    low, high = sorted((a, b))
    return f"{org}|{low}|{high}"


# contact fields no pair depends on: scores and reasons come from the values (and the fields
# they are in), the names and the address; a contact's type and expiry only decide whether it
# is live, and an edited contact is live before and after
NOT_EVIDENCE = frozenset({"title", "surveyOptOut", "modifiedAt", "type", "expiresAt"})


def same_evidence(before: ContactDoc, after: ContactDoc) -> bool:
    """Whether an edit left every field a pair depends on as it was (a title or an opt-out
    changed, or an integration sending the values the contact already has): the contact's
    pairs are then still its pairs."""
    old: Mapping[str, Any] = before
    new: Mapping[str, Any] = after
    return all(old.get(f) == new.get(f) for f in (old.keys() | new.keys()) - NOT_EVIDENCE)


def has_evidence(contact: ContactDoc) -> bool:
    """Whether the contact can be half of a pair: values beyond cookies, or name/address keys
    (claims through interactions are values too: a contact that claims any is refreshed)."""
    return bool(contact.get("keys") or contact.get("matchKeys"))


async def refresh(
    store: Store,
    org: str,
    contact: ContactDoc,
    *,
    block_list: BlockList | None = None,
    claimed: bool = False,
    fresh: bool = False,
) -> list[matching.Suggestion]:
    """Replace the contact's pairs with its current suggestions (≥ PAIR_FLOOR); returns them.

    ``claimed``: the contact claims values through interactions (so it has evidence even
    without keys of its own). ``fresh``: a contact just created by an interaction, which no
    other contact shares a value with (resolution saw to it): only its name and address
    candidates are read, and it has no pairs to replace."""
    if not liveness.is_live(contact) or not (claimed or has_evidence(contact)):
        return []
    found = await matching.suggestions(
        store,
        org,
        contact,
        first=PAIRS_PER_CONTACT,
        min_score=PAIR_FLOOR,
        block_list=block_list,
        names_only=fresh,
    )
    pairs = pairs_collection(store)
    if not fresh:
        await pairs.delete_many({"org": org, "ids": contact["_id"]})
    if found:
        await pairs.bulk_write([replacement(org, contact["_id"], s) for s in found], ordered=False)
    return found


def replacement(org: str, subject_id: str, suggestion: matching.Suggestion) -> ReplaceOne[Any]:
    other = suggestion.contact["_id"]
    doc = {
        "_id": pair_id(org, subject_id, other),
        "org": org,
        "ids": sorted((subject_id, other)),
        "score": suggestion.score,
        "reasons": [r.as_doc() for r in suggestion.reasons],
    }
    return ReplaceOne({"_id": doc["_id"]}, doc, upsert=True)


async def refresh_all(store: Store, org: str, contacts: Iterable[ContactDoc]) -> None:
    """:func:`refresh` for each contact (an unmerge's restored contacts), the org's block
    list read once for all of them, up to :data:`CONCURRENT_REFRESHES` at a time (the
    gateway's Python of one overlaps the database's work for another). Each refresh deletes
    and writes only pairs naming its own contact, so a pair naming two of them ends as one
    of the two wrote it, as in a sequential run."""
    live = [c for c in contacts if liveness.is_live(c)]
    if not live:
        return
    block_list = await blocked_identifiers.load_block_list(store, org)
    for start in range(0, len(live), CONCURRENT_REFRESHES):
        group = live[start : start + CONCURRENT_REFRESHES]
        await asyncio.gather(
            *(refresh(store, org, c, block_list=block_list, claimed=True) for c in group)
        )
